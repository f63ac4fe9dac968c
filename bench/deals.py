"""How fast the forecast, the sales metrics and the plan answer on big data (SQLite by default).

It migrates a throwaway data folder and fills it with bulk inserts (a fast path: nothing here
times the writes): 100,000 deals with their stage history, over 40 reps in 5 teams, 5,000
companies and 4 product lines; and 1,000,000 contacts with a lifecycle history shaped like a
real funnel over three years (leads, MQLs, SQLs, opportunities, customers, some recycled).
Then it times the real code path each outlet calls -- :func:`embudo.deals.reports.forecast`,
:func:`~embudo.deals.reports.sales_metrics` and :func:`embudo.deals.planner.make_plan` with
rates measured by cohort -- and prints the median, fastest and slowest of several runs.

    python3 bench/deals.py                                  # 100,000 deals, 1,000,000 contacts
    python3 bench/deals.py --deals 20000 --contacts 100000  # a quick look
    python3 bench/deals.py --database-url postgres://postgres@127.0.0.1:5432/embudo_bench
    python3 bench/deals.py --keep                           # keep the data folder

Targets: forecast and sales metrics under 500 ms each; the plan under 1 s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DAY = 86_400.0
CHUNK = 50_000


def insert_rows(table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Plain multi-row INSERTs through the Django connection, a chunk per statement batch."""
    from django.db import connection, transaction

    quoted = ", ".join(connection.ops.quote_name(c) for c in columns)
    sql = (
        f"INSERT INTO {connection.ops.quote_name(table)} ({quoted}) "
        f"VALUES ({', '.join(['%s'] * len(columns))})"
    )
    count = 0
    batch: list[Sequence[Any]] = []
    with transaction.atomic(), connection.cursor() as cursor:
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


def reset_sequences(*models: Any) -> None:
    """After inserting explicit ids, PostgreSQL's sequences must move past them."""
    from django.core.management.color import no_style
    from django.db import connection

    statements = connection.ops.sequence_reset_sql(no_style(), list(models))
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)


# -- data ---------------------------------------------------------------------------------------


def build_people(rng: np.random.Generator) -> tuple[list[int], list[int], list[int]]:
    """40 reps in 5 teams, 5,000 companies in 12 countries, 4 product lines."""
    from embudo.accounts.actions import create_user
    from embudo.crm.models import Company
    from embudo.deals import actions

    reps = [create_user(f"rep{n}", role="sales", first_name=f"Rep {n}") for n in range(40)]
    teams = [actions.create_team(f"Team {n}") for n in range(5)]
    for n, rep in enumerate(reps):
        actions.set_team(rep, teams[n % 5])
    countries = ["Spain", "Mexico", "Argentina", "Chile", "Colombia", "Peru", "USA", "UK",
                 "Germany", "France", "Portugal", "Italy"]  # fmt: skip
    Company.objects.bulk_create(
        Company(name=f"Company {n}", domain=f"c{n}.example", country=countries[n % 12])
        for n in range(5000)
    )
    products = [actions.create_product_line(name).pk for name in ("Core", "Cloud", "AI", "Support")]
    company_ids = list(Company.objects.values_list("pk", flat=True))
    return [r.pk for r in reps], company_ids, products


def build_deals(
    n: int, rng: np.random.Generator, reps: list[int], companies: list[int], products: list[int]
) -> tuple[int, int]:
    """``n`` deals over the last two years and their stage history; returns (deals, moves)."""
    from django.db import connection
    from django.utils import timezone

    from embudo.deals import actions
    from embudo.deals.models import Deal, DealStageChange, LostReason, Stage

    pipeline = actions.default_pipeline()
    actions.set_exchange_rate("USD", "0.9")
    stages = list(Stage.objects.filter(pipeline=pipeline).order_by("position"))
    open_stages = [s for s in stages if s.kind == "open"]
    won = next(s for s in stages if s.kind == "won")
    lost = next(s for s in stages if s.kind == "lost")
    reasons = list(LostReason.objects.values_list("pk", flat=True))
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    adapt_date = connection.ops.adapt_datefield_value

    created = np.sort(now.timestamp() - rng.uniform(1, 730, n) * DAY)
    outcome = rng.choice(3, n, p=[0.35, 0.25, 0.40])  # open, won, lost
    closed = np.minimum(created + rng.uniform(5, 120, n) * DAY, now.timestamp() - 60)
    amount = np.round(np.exp(rng.normal(8.5, 0.8, n)), 2)
    usd = rng.random(n) < 0.1
    open_pos = rng.integers(0, len(open_stages), n)
    owner = rng.choice(reps, n)
    company = rng.choice(companies, n)
    product = rng.choice(products, n)
    reason = rng.choice(reasons, n)
    close_in = rng.uniform(-30, 180, n)

    deal_columns = [
        "id", "name", "external_id", "pipeline_id", "stage_id", "status", "forecast_category",
        "amount", "currency", "exchange_rate", "amount_reporting", "expected_close_date",
        "owner_id", "company_id", "product_line_id", "lost_reason_id", "lost_note", "created_at",
        "engaged_at", "closed_at", "stage_changed_at", "updated_at",
    ]  # fmt: skip
    move_columns = ["deal_id", "from_stage_id", "to_stage_id", "changed_at", "actor_id"]
    moves: list[tuple[Any, ...]] = []

    def deal_rows() -> Iterable[tuple[Any, ...]]:
        for i in range(n):
            made = dt.datetime.fromtimestamp(created[i], dt.UTC)
            status = ("open", "won", "lost")[outcome[i]]
            if status == "open":
                stage, shut = open_stages[open_pos[i]], None
                expected = (now + dt.timedelta(days=float(close_in[i]))).date()
            else:
                stage = won if status == "won" else lost
                shut = dt.datetime.fromtimestamp(closed[i], dt.UTC)
                expected = shut.date()
            rate = 0.9 if usd[i] else 1.0
            value = float(amount[i])
            # The stage history: through the open stages, then the close.
            path = open_stages[: open_pos[i] + 1] if status == "open" else open_stages[:2]
            when = made
            step = (shut - made) / (len(path) + 1) if shut else dt.timedelta(days=3)
            previous = None
            for position in path:
                moves.append((i + 1, previous, position.pk, adapt(when), None))
                previous, when = position.pk, when + step
            if shut:
                moves.append((i + 1, previous, stage.pk, adapt(shut), None))
            yield (
                i + 1, f"Deal {i + 1}", None, pipeline.pk, stage.pk, status,
                stage.forecast_category, f"{value:.2f}", "USD" if usd[i] else "EUR",
                f"{rate:.8f}", f"{value * rate:.2f}", adapt_date(expected), int(owner[i]),
                int(company[i]), int(product[i]),
                int(reason[i]) if status == "lost" else None, "", adapt(made), adapt(made),
                adapt(shut) if shut else None, adapt(shut or when), adapt(now),
            )  # fmt: skip

    deals = insert_rows(Deal._meta.db_table, deal_columns, deal_rows())
    moves.sort(key=lambda move: move[3])
    count = insert_rows(DealStageChange._meta.db_table, move_columns, moves)
    reset_sequences(Deal, DealStageChange)
    return deals, count


FUNNEL = ("lead", "mql", "sql", "opportunity", "customer")
# Chance to move on from each stage, and the days it takes.
ADVANCE = {"lead": 0.4, "mql": 0.5, "sql": 0.5, "opportunity": 0.3}
DELAY = {"lead": (1, 30), "mql": (1, 20), "sql": (1, 20), "opportunity": (10, 60)}


def build_contacts(n: int, rng: np.random.Generator, years: float = 3) -> tuple[int, int]:
    """``n`` contacts, each walked down the funnel from a random start in the last ``years``;
    a fifth of the MQLs that stall are recycled to lead. Returns (contacts, transitions)."""
    from django.db import connection
    from django.utils import timezone

    from embudo.crm.models import Contact, LifecycleTransition

    now = timezone.now().timestamp()
    adapt = connection.ops.adapt_datetimefield_value
    # Ids follow creation time, and the history is written in the order it happened: as a
    # running Embudo writes it, which is what the database's layout on disk reflects.
    start = np.sort(now - rng.uniform(1, 365 * years, n) * DAY)
    times = {"lead": start}
    reached = {"lead": np.ones(n, dtype=bool)}
    for stage, following in itertools.pairwise(FUNNEL):
        low, high = DELAY[stage]
        times[following] = times[stage] + rng.uniform(low, high, n) * DAY
        reached[following] = reached[stage] & (rng.random(n) < ADVANCE[stage])
        reached[following] &= times[following] < now
    stalled = reached["mql"] & ~reached["sql"]
    recycle = stalled & (rng.random(n) < 0.2)
    recycled_at = times["mql"] + rng.uniform(20, 60, n) * DAY
    recycle &= recycled_at < now

    transitions: list[tuple[Any, ...]] = []
    current: list[str] = []
    current_at: list[float] = []
    for i in range(n):
        previous = ""
        last_at = start[i]
        for stage in FUNNEL:
            if not reached[stage][i]:
                break
            last_at = times[stage][i]
            transitions.append((i + 1, previous, stage, last_at))
            previous = stage
        if recycle[i]:
            transitions.append((i + 1, "mql", "lead", recycled_at[i]))
            previous, last_at = "lead", recycled_at[i]
        current.append(previous)
        current_at.append(last_at)

    def contact_rows() -> Iterable[tuple[Any, ...]]:
        for i in range(n):
            made = adapt(dt.datetime.fromtimestamp(start[i], dt.UTC))
            changed = adapt(dt.datetime.fromtimestamp(current_at[i], dt.UTC))
            yield (
                i + 1, f"person{i + 1}@bench.example", "Person", f"Number {i + 1}", "", "",
                current[i], changed, "", "", "", "", "{}", made, changed,
            )  # fmt: skip

    contact_columns = [
        "id", "email", "first_name", "last_name", "phone", "job_title", "lifecycle_stage",
        "lifecycle_stage_changed_at", "lead_status", "original_source", "original_medium",
        "original_campaign", "properties", "created_at", "updated_at",
    ]  # fmt: skip
    contacts = insert_rows(Contact._meta.db_table, contact_columns, contact_rows())
    transitions.sort(key=lambda move: move[3])
    rows = (
        (cid, source, target, adapt(dt.datetime.fromtimestamp(at, dt.UTC)), "import", "")
        for cid, source, target, at in transitions
    )
    moves = insert_rows(
        LifecycleTransition._meta.db_table,
        ["contact_id", "from_stage", "to_stage", "changed_at", "cause", "note"],
        rows,
    )
    reset_sequences(Contact, LifecycleTransition)
    return contacts, moves


# -- timing -------------------------------------------------------------------------------------


def timed(name: str, runs: int, fn: Callable[[], Any], describe: Callable[[Any], str]) -> float:
    """Median wall-clock milliseconds of ``runs`` calls after a warm-up; the CPU time this
    process spent is printed beside it, since the machine may be shared."""
    result = fn()  # warm caches, and check the answer below
    timings, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        timings.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    median = statistics.median(timings)
    print(
        f"{name:<52} {median:>9.1f} {min(timings):>8.1f} {max(timings):>8.1f} "
        f"{statistics.median(cpu):>8.1f}  {describe(result)}"
    )
    return median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per target (median)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--database-url", help="a throwaway PostgreSQL database instead of SQLite (it is emptied)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the throwaway data folder")
    parser.add_argument(
        "--reuse", metavar="DIR", help="time again on a data folder an earlier --keep run built"
    )
    args = parser.parse_args()

    data_dir = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="embudo-bench-"))
    os.environ["EMBUDO_DATA_DIR"] = str(data_dir)
    if args.database_url:
        os.environ["EMBUDO_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("EMBUDO_DATABASE_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "embudo.settings"
    sys.path.insert(0, str(REPO))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection
        from django.utils import timezone

        from embudo.deals.periods import current
        from embudo.deals.planner import PlanRequest, make_plan
        from embudo.deals.reports import ForecastRequest, SalesRequest, forecast, sales_metrics

        if args.reuse:
            call_command("migrate", verbosity=0)
            print(f"reusing {data_dir}")
        else:
            if args.database_url:
                call_command("flush", interactive=False, verbosity=0)
            call_command("migrate", verbosity=0)
            rng = np.random.default_rng(args.seed)
            started = time.perf_counter()
            reps, companies, products = build_people(rng)
            deals, moves = build_deals(args.deals, rng, reps, companies, products)
            deal_seconds = time.perf_counter() - started
            started = time.perf_counter()
            contacts, transitions = build_contacts(args.contacts, rng)
            contact_seconds = time.perf_counter() - started
            print(
                f"built {deals:,} deals with {moves:,} stage moves in {deal_seconds:.1f} s; "
                f"{contacts:,} contacts with {transitions:,} lifecycle transitions in "
                f"{contact_seconds:.1f} s ({transitions / contact_seconds:,.0f} rows/s)"
            )
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        where = f"PostgreSQL {args.database_url}" if args.database_url else "SQLite"
        if not args.database_url:
            size = sum(f.stat().st_size for f in data_dir.glob("embudo.sqlite3*")) / 1e6
            where += f", {size:.0f} MB"
        print(f"database: {where}")

        today = timezone.localdate()
        year_ahead = (today - dt.timedelta(days=182), today + dt.timedelta(days=182))
        last_year = (today - dt.timedelta(days=365), today)
        two_years = (today - dt.timedelta(days=730), today)

        def fc(by: str, span: tuple[dt.date, dt.date] = year_ahead) -> Any:
            return forecast(ForecastRequest(date_from=span[0], date_to=span[1], by=by))

        def sm(by: str, span: tuple[dt.date, dt.date] = last_year) -> Any:
            return sales_metrics(SalesRequest(date_from=span[0], date_to=span[1], by=by))

        def deals_in(result: Any) -> str:
            total = result.total
            rows = len(result.rows)
            return f"{total.open_deals:,} open + {total.won_deals:,} won deals, {rows} rows"

        def sold(result: Any) -> str:
            return f"{result.total.deals:,} deals, {len(result.rows)} rows"

        def planned(result: Any) -> str:
            lead = result.step("lead")
            return (
                f"{result.deals_needed} deals, {lead.needed} leads, {result.mqls_needed} MQLs; "
                f"lead cohort n={lead.sample:,}"
            )

        def plan(window: int) -> Any:
            return make_plan(
                PlanRequest(period=current("month"), revenue=Decimal(500_000), window_days=window)
            )

        print(f"\n{'target':<52} {'median ms':>9} {'min':>8} {'max':>8} {'cpu ms':>8}  answer")
        results = {
            "forecast by month, 12 months": timed(
                "forecast by month, 12 months", args.runs, lambda: fc("period"), deals_in
            ),
            "forecast by owner": timed(
                "forecast by owner, 12 months", args.runs, lambda: fc("owner"), deals_in
            ),
            "forecast by team": timed(
                "forecast by team, 12 months", args.runs, lambda: fc("team"), deals_in
            ),
            "sales total": timed(
                "sales metrics, deals created in 12 months", args.runs, lambda: sm("none"), sold
            ),
            "sales owner": timed("sales metrics by owner", args.runs, lambda: sm("owner"), sold),
            "sales period": timed(
                "sales metrics by month, 24 months",
                args.runs,
                lambda: sm("period", two_years),
                sold,
            ),
            "sales region": timed("sales metrics by region", args.runs, lambda: sm("region"), sold),
            "sales product": timed(
                "sales metrics by product line", args.runs, lambda: sm("product"), sold
            ),
            "plan default": timed(
                "plan, rates measured over 180 days (the default)",
                args.runs,
                lambda: plan(180),
                planned,
            ),
            "plan 365": timed(
                "plan, rates measured over 365 days", args.runs, lambda: plan(365), planned
            ),
            "plan all": timed(
                "plan, rates measured over all history (3 yrs)",
                args.runs,
                lambda: plan(1200),
                planned,
            ),
        }
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        slowest_report = max(v for k, v in results.items() if not k.startswith("plan"))
        print(
            f"\nslowest forecast/sales report {slowest_report:.0f} ms (target 500); plan with "
            f"the default window {results['plan default']:.0f} ms (target 1,000); peak memory "
            f"(RSS) {peak_mb:.0f} MB (most of it is building the data); load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
    finally:
        if args.keep or args.reuse:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
