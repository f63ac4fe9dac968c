"""How fast attribution runs over 1,000,000 journeys (SQLite), and the Markov model against the
`ChannelAttribution` package (C++ core) on the same paths, in the same run.

A child process migrates a throwaway data folder and fills it with bulk inserts (not timed):
1,000,000 contacts, one journey each of 1 to 10 touchpoints over 10 channels and 50 campaigns
(about 2.9 per journey), a lead transition for everyone and, for about a fifth, an opportunity,
a customer transition and a won deal. This process then times the report as the CLI and the API
run it (:func:`embudo.analytics.attribution.attribution`: the reads, the journeys, all seven
models), its parts, and Markov alone beside ``ChannelAttribution.markov_model`` (order 1) on
the same paths; peak memory is this process's (the data building ran in the child).

    python3 bench/attribution.py                      # 1,000,000 journeys
    python3 bench/attribution.py --journeys 100000    # a quick look
    python3 bench/attribution.py --keep               # keep the data folder (then --reuse DIR)

ChannelAttribution is not an Embudo dependency. To compare, run the bench with a Python that
has it (a virtualenv that also sees Embudo):

    python3 -m venv --system-site-packages /tmp/ca-venv
    /tmp/ca-venv/bin/pip install ChannelAttribution matplotlib   # it imports matplotlib
    /tmp/ca-venv/bin/python bench/attribution.py

Targets: the whole report (all models) under 10 s; Markov faster than ChannelAttribution;
peak memory under 2 GB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DAY_MS = 86_400_000
CHUNK = 50_000
PERIOD_DAYS = 180
CHANNELS = (
    "direct", "organic_search", "paid_search", "organic_social", "paid_social", "email",
    "referral", "display", "affiliate", "other",
)  # fmt: skip
POPULARITY = np.array([18, 22, 16, 8, 8, 12, 6, 5, 3, 2], dtype=float)
# How much a touch on each channel raises the odds that the journey converts.
LIFT = np.array([0.8, 1.0, 1.4, 0.6, 0.9, 1.5, 1.2, 0.5, 0.7, 0.3])


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    from django.db import connection, transaction

    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    count = 0
    with transaction.atomic(), connection.cursor() as cursor:
        batch: list[Sequence[Any]] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= CHUNK:
                cursor.executemany(sql, batch)
                count += len(batch)
                batch = []
        if batch:
            cursor.executemany(sql, batch)
            count += len(batch)
    return count


def stamps(ms: np.ndarray) -> list[str]:
    """Milliseconds since 1970 as the text Django's SQLite backend stores (UTC, naive)."""
    text = np.datetime_as_string(ms.astype("datetime64[ms]").astype("datetime64[us]"), unit="us")
    return [s.replace("T", " ") for s in text.tolist()]


def build(n: int, seed: int) -> None:
    """Fill the database (runs in the child process)."""
    from django.utils import timezone

    from embudo.crm.models import Contact, LifecycleTransition
    from embudo.deals.actions import default_pipeline
    from embudo.deals.models import Deal, Stage
    from embudo.tracking.models import Campaign, Touchpoint

    rng = np.random.default_rng(seed)
    now_ms = int(timezone.now().timestamp() * 1000)
    started = time.perf_counter()
    campaigns = [Campaign(name=f"campaign-{i:02d}") for i in range(1, 51)]
    Campaign.objects.bulk_create(campaigns)
    campaign_ids = np.array(sorted(Campaign.objects.values_list("pk", flat=True)))

    lengths = np.minimum(rng.geometric(0.35, n), 10)
    touches = int(lengths.sum())
    journey = np.repeat(np.arange(n), lengths)
    channel = rng.choice(len(CHANNELS), touches, p=POPULARITY / POPULARITY.sum())
    score = np.bincount(journey, weights=np.log(LIFT[channel]), minlength=n) + 0.15 * lengths
    converts = rng.random(n) < 1 / (1 + np.exp(-(score - 2.0)))
    end = now_ms - rng.uniform(0, PERIOD_DAYS, n) * DAY_MS
    gaps = rng.exponential(3.0, touches) * DAY_MS
    # Touch times run backwards from the journey's end by the gaps, the last a few hours before.
    offsets = np.cumsum(gaps[::-1])[::-1]
    first_of = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends_at = np.cumsum(lengths) - 1
    after = offsets - np.repeat(offsets[ends_at] if touches else offsets, lengths)
    touch_time = np.repeat(end, lengths) - after - 3_600_000
    campaign = np.where(
        rng.random(touches) < 0.6, campaign_ids[rng.integers(0, len(campaign_ids), touches)], 0
    )
    order = np.argsort(touch_time, kind="stable")  # written in the order they happen

    contact_ids = np.arange(1, n + 1)
    first_time = touch_time[first_of]
    lead_time = first_time + rng.uniform(0.1, 1.0, n) * (end - first_time)
    made = stamps(first_time)
    lead_text = stamps(lead_time)
    insert_rows(
        Contact._meta.db_table,
        ["id", "email", "first_name", "last_name", "phone", "job_title", "lifecycle_stage",
         "lifecycle_stage_changed_at", "lead_status", "original_source", "original_medium",
         "original_campaign", "properties", "created_at", "updated_at"],
        (
            (int(contact_ids[i]), f"p{i + 1}@bench.example", "", "", "", "",
             "customer" if converts[i] else "lead", lead_text[i], "", "", "", "", "{}",
             made[i], made[i])
            for i in range(n)
        ),
    )  # fmt: skip
    times = stamps(touch_time)
    insert_rows(
        Touchpoint._meta.db_table,
        ["contact_id", "visitor_id", "channel", "source", "medium", "campaign_id", "term",
         "content", "landing_url", "occurred_at"],
        (
            (int(journey[i]) + 1, "", CHANNELS[channel[i]], "", "",
             int(campaign[i]) or None, "", "", "", times[i])
            for i in order.tolist()
        ),
    )  # fmt: skip
    won = np.flatnonzero(converts)
    opportunity_time = lead_time[won] + 0.5 * (end[won] - lead_time[won])
    moves = [(contact_ids, lead_time, "", "lead")]
    moves += [(contact_ids[won], opportunity_time, "lead", "opportunity")]
    moves += [(contact_ids[won], end[won], "opportunity", "customer")]
    ids = np.concatenate([m[0] for m in moves])
    at = np.concatenate([m[1] for m in moves])
    sources = np.concatenate([np.full(m[0].size, m[2], dtype=object) for m in moves])
    targets = np.concatenate([np.full(m[0].size, m[3], dtype=object) for m in moves])
    order = np.argsort(at, kind="stable")
    at_text = stamps(at)
    insert_rows(
        LifecycleTransition._meta.db_table,
        ["contact_id", "from_stage", "to_stage", "changed_at", "cause", "note"],
        ((int(ids[i]), sources[i], targets[i], at_text[i], "import", "") for i in order.tolist()),
    )
    pipeline = default_pipeline()
    stage = Stage.objects.get(pipeline=pipeline, kind="won")
    amounts = np.round(rng.lognormal(8, 0.6, won.size), 2)
    closed = stamps(end[won])
    insert_rows(
        Deal._meta.db_table,
        ["id", "name", "pipeline_id", "stage_id", "status", "forecast_category", "amount",
         "currency", "exchange_rate", "amount_reporting", "expected_close_date", "lost_note",
         "created_at", "engaged_at", "closed_at", "stage_changed_at", "updated_at"],
        (
            (k + 1, "Deal", pipeline.pk, stage.pk, "won", "closed_won", float(amounts[k]), "EUR",
             1, float(amounts[k]), closed[k][:10], "", closed[k], closed[k], closed[k],
             closed[k], closed[k])
            for k in range(won.size)
        ),
    )  # fmt: skip
    insert_rows(
        Deal.contacts.through._meta.db_table,
        ["deal_id", "contact_id"],
        ((k + 1, int(contact_ids[won[k]])) for k in range(won.size)),
    )
    print(
        f"built {n:,} journeys: {touches:,} touchpoints, {won.size:,} customers with won deals, "
        f"{ids.size:,} lifecycle transitions in {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def setup(data_dir: Path) -> None:
    os.environ["EMBUDO_DATA_DIR"] = str(data_dir)
    os.environ.pop("EMBUDO_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "embudo.settings"
    sys.path.insert(0, str(REPO))
    import django

    django.setup()


def timed(name: str, runs: int, fn: Callable[[], Any], describe: Callable[[Any], str]) -> float:
    """Median wall-clock seconds of ``runs`` calls after a warm-up, CPU seconds beside it.

    Nothing read is kept from one run to the next (embudo.analytics.stamps would otherwise
    answer the second run from memory): each run reads the database again."""
    from embudo.analytics import stamps

    stamps.forget()
    result = fn()
    timings, cpu = [], []
    for _ in range(runs):
        stamps.forget()
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        timings.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    median = statistics.median(timings)
    print(
        f"{name:<50} {median:>8.2f} {min(timings):>7.2f} {max(timings):>7.2f} "
        f"{statistics.median(cpu):>7.2f}  {describe(result)}",
        flush=True,
    )
    return median


def channel_attribution_frame(journeys: Any, labels: list[str]) -> Any:
    """The same paths as ChannelAttribution takes them: one row per distinct path, with its
    conversions, revenue and non-conversions."""
    import pandas as pd

    lengths = journeys.lengths
    converted = np.zeros(journeys.journeys, dtype=bool)
    converted[: journeys.converting] = True
    value = np.zeros(journeys.journeys)
    value[: journeys.converting] = journeys.revenue
    names = np.array(labels, dtype=object)[journeys.touch_key]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    keep = lengths > 0
    paths = [" > ".join(names[bounds[j] : bounds[j + 1]]) for j in np.flatnonzero(keep).tolist()]
    frame = pd.DataFrame({"path": paths, "conv": converted[keep].astype(int), "value": value[keep]})
    frame["null"] = 1 - frame["conv"]
    return frame.groupby("path", as_index=False)[["conv", "value", "null"]].sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--journeys", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs per target (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the throwaway data folder")
    parser.add_argument("--reuse", metavar="DIR", help="time again on a kept data folder")
    parser.add_argument("--build-only", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.build_only:
        setup(Path(args.build_only))
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        build(args.journeys, args.seed)
        return

    data_dir = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="embudo-bench-"))
    try:
        if not args.reuse:
            subprocess.run(
                [sys.executable, __file__, "--build-only", str(data_dir),
                 "--journeys", str(args.journeys), "--seed", str(args.seed)],
                check=True,
            )  # fmt: skip
        setup(data_dir)
        from django.db import connection
        from django.utils import timezone

        from embudo.analytics import attribution as attr
        from embudo.analytics.markov import count_transitions, removal_effects

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        size = sum(f.stat().st_size for f in data_dir.glob("embudo.sqlite3*")) / 1e6
        print(f"database: SQLite, {size:.0f} MB")
        today = timezone.localdate()
        request = attr.AttributionRequest(
            date_from=today - dt.timedelta(days=PERIOD_DAYS + 1), date_to=today
        )
        print(f"\n{'target':<50} {'median s':>8} {'min':>7} {'max':>7} {'cpu s':>7}  answer")

        def whole(result: Any) -> str:
            return (
                f"{result.conversions:,} conversions, {result.journeys:,} journeys "
                f"({result.non_converting_journeys:,} not converting), {len(result.rows)} rows"
            )

        report = timed(
            "attribution report, all 7 models (SQL + numpy)",
            args.runs,
            lambda: attr.attribution(request),
            whole,
        )
        loaded: dict[str, Any] = {}

        def load() -> Any:
            loaded["j"], loaded["labels"] = attr.load_journeys(request)
            return loaded["j"]

        timed(
            "  reading and assembling the journeys",
            args.runs,
            load,
            lambda j: f"{j.touch_journey.size:,} touchpoints in {j.journeys:,} journeys",
        )
        journeys, labels = loaded["j"], loaded["labels"]
        timed(
            "  the 7 models on assembled journeys",
            args.runs,
            lambda: attr.attribute(request, journeys, labels),
            lambda r: f"{len(r.rows)} rows",
        )
        dense, used = attr.compact(journeys)
        k = used.size
        converted = np.zeros(dense.journeys, dtype=bool)
        converted[: dense.converting] = True
        value = np.zeros(dense.journeys)
        value[: dense.converting] = dense.revenue

        def ours() -> Any:
            chain = count_transitions(dense.touch_journey, dense.touch_key, converted, value, k)
            return removal_effects(chain)

        markov_seconds = timed(
            "Markov alone, Embudo (exact, from journey arrays)",
            args.runs,
            ours,
            lambda e: f"P(conversion) {e.conversion_probability:.4f}",
        )
        effects = ours()
        names = [labels[int(code)][0] for code in used]
        theirs_seconds: float | None = None
        try:
            import ChannelAttribution as ca
        except ImportError as error:
            print(f"ChannelAttribution not importable here ({error}); see this file's docstring")
        else:
            started = time.perf_counter()
            frame = channel_attribution_frame(dense, names)
            print(
                f"  (building ChannelAttribution's input, not timed: {len(frame):,} distinct "
                f"paths in {time.perf_counter() - started:.1f} s)"
            )

            def theirs() -> Any:
                return ca.markov_model(
                    frame, "path", "conv", var_value="value", var_null="null", order=1,
                    out_more=True, verbose=False, flg_pro=False,
                )  # fmt: skip

            theirs_seconds = timed(
                "Markov alone, ChannelAttribution 2.x (simulated)",
                args.runs,
                theirs,
                lambda r: f"{len(r['result'])} channels",
            )
            result = theirs()
            re_theirs = dict(
                zip(
                    result["removal_effects"]["channel_name"],
                    result["removal_effects"]["removal_effects_conversion"],
                    strict=True,
                )
            )
            share_ours = effects.conversion / effects.conversion.sum()
            total_theirs = sum(re_theirs.values())
            worst = max(
                abs(share_ours[i] - re_theirs.get(name, 0.0) / total_theirs)
                for i, name in enumerate(names)
            )
            print(f"  largest difference in a channel's credit share, ours vs theirs: {worst:.4f}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        versus = (
            f"{theirs_seconds / markov_seconds:.1f}x faster than ChannelAttribution"
            if theirs_seconds
            else "ChannelAttribution not measured"
        )
        print(
            f"\nwhole report {report:.2f} s for {journeys.journeys:,} journeys "
            f"({journeys.journeys / report:,.0f} journeys/s; target 10 s); Markov "
            f"{markov_seconds:.3f} s, {versus}; peak memory (RSS) {peak_mb:.0f} MB "
            f"(target 2,048); load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        if args.keep or args.reuse:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
