"""How long a contact's scores take to catch up with one new event (the "always current" path).

What "one event" covers: one call of the capture action
(:func:`embudo.tracking.actions.record_events`, as the events API and the snippet make it) with one
``page_view`` of /pricing for a known contact. It validates the event, stores it (with its
touchpoint) and commits; then the reaction pipeline (embudo/pipeline.py) runs in the same call:
the rescore reaction recomputes the contact under every enabled model (fit rules, engagement
rules over its events, the stored score, a history row when it changed, the MQL rule) and
commits that; then personas, predictions and, for a new MQL, the handoff (owner, SLA clocks).
The call returns once all of that is done.

- "score stored": from the start of the rescore reaction to the commit of the new score;
- "scoring update": the whole rescore reaction (a new MQL's handoff is a reaction of its own,
  timed apart);
- "whole call": the capture call from start to end, every reaction included.

On the shared big data set (bench/bigdata.py; 1,000,000 contacts, 10,000,000 events by default),
with the 20-rule model of bench/rescore.py (MQL rule on), everyone scored once first (as after
the rules were set up; stages left as they were), then one event at a time:

- random contacts, drawn uniformly (so as busy as contacts are: a few have hundreds of events);
- the heaviest contacts (the most events), on their own;

each first cold (the bench's copy of the database evicted from the page cache and the connection
closed, so SQLite's cache is empty) and then warm (the same contacts again). For the slowest 1 %
of the scoring updates it prints where the time went, phase by phase.

    python3 bench/score_event.py                                    # 1,000,000 / 10,000,000
    python3 bench/score_event.py --contacts 100000 --events 1000000 # the quick preset

Target: p99 of the scoring update under 20 ms on SQLite.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def at(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"p50 {at(ordered, 0.50):.1f}, p95 {at(ordered, 0.95):.1f}, "
        f"p99 {at(ordered, 0.99):.1f}, max {ordered[-1] * 1000:.1f} ms"
    )


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


class Phases:
    """Wall time per named phase of the call being measured, each phase counted without the
    phases nested in it."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.stack: list[list[Any]] = []
        self.rows = 0
        self.stored_at: float | None = None  # when the first commit since the last take ended

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        now = time.perf_counter()
        if self.stack:
            parent = self.stack[-1]
            self.current[parent[0]] += now - parent[1]
        self.stack.append([name, now])
        try:
            yield
        finally:
            end = time.perf_counter()
            self.current[name] += end - self.stack.pop()[1]
            if self.stack:
                self.stack[-1][1] = end

    def wrap(self, owner: Any, attribute: str, name: str) -> None:
        if not hasattr(owner, attribute):
            return
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            with self.phase(name):
                return original(*args, **kwargs)

        setattr(owner, attribute, timed)

    def take(self) -> dict[str, float]:
        taken, self.current = dict(self.current), defaultdict(float)
        return taken


@dataclass
class Sample:
    contact_id: int
    hook: float = 0.0
    hook_cpu: float = 0.0
    whole: float = 0.0
    whole_cpu: float = 0.0
    hooks: dict[str, float] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)
    events: int = 0
    promoted: bool = False
    stored: float = 0.0  # from the hook's start to its score's commit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=2000, help="random contacts")
    parser.add_argument("--heavy", type=int, default=200, help="heaviest contacts")
    args = parser.parse_args()

    from bigdata import prepare

    path = prepare(f"score-{args.contacts}", contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone
    from rescore import EXTRA_RULES

    from embudo import pipeline
    from embudo.crm.models import Contact
    from embudo.scoring import engine
    from embudo.scoring.demo import create_default_model
    from embudo.scoring.engine import compute, write
    from embudo.scoring.models import ScoreRule, ScoringModel
    from embudo.tracking import actions as tracking

    ScoringModel.objects.exclude(key="bench").update(enabled=False)
    model = ScoringModel.objects.filter(key="bench").first()
    if model is None:
        model = create_default_model(key="bench")
        ScoreRule.objects.bulk_create(
            ScoreRule(model=model, kind=k, name=n, condition=c, points=p, repeatable=r,
                      max_points=m, position=20 + i)
            for i, (k, n, c, p, r, m) in enumerate(EXTRA_RULES)
        )  # fmt: skip
    rules = model.rules.count()
    if model.rescored_at is None:
        # The steady state an event meets: everyone scored (as after the rules were set), the
        # stages left as they were, as the demo seed does.
        started = time.perf_counter()
        outcome = engine.rescore_model(model, cause="rules", promote=False)
        ScoringModel.objects.filter(pk=model.pk).update(rescored_at=timezone.now())
        print(
            f"first full rescore of the bench model: {outcome.changed:,} contacts scored "
            f"in {time.perf_counter() - started:.0f} s"
        )

    # Phases of the scoring hook (whichever of these the engine has).
    phases = Phases()
    for owner, attribute, name in (
        (engine, "enabled_plans", "models and rules"),
        (engine, "compute_some", "compute"),
        (engine, "_fetch", "fit query"),
        (compute, "_event_rows", "events query"),
        (write, "_old_scores", "old score"),
        (write, "_write_scores", "write score"),
        (write, "_write_history", "write history"),
        (write, "_promote", "MQL rule"),
    ):
        phases.wrap(owner, attribute, name)
    event_rows, promote = compute._event_rows, write._promote

    def counted_promotions(*a: Any, **k: Any) -> Any:
        moved = promote(*a, **k)
        if moved and sample is not None:
            sample.promoted = True
        return moved

    write._promote = counted_promotions  # type: ignore[assignment]

    def counted_rows(*a: Any, **k: Any) -> Any:
        result = event_rows(*a, **k)
        phases.rows += len(result[0])
        return result

    compute._event_rows = counted_rows  # type: ignore[assignment]

    def commit_timed(wrapper: Any) -> None:
        original = wrapper._commit

        def timed() -> Any:
            with phases.phase("commit"):
                done = original()
            if phases.stored_at is None:
                phases.stored_at = time.perf_counter()
            return done

        wrapper._commit = timed

    commit_timed(connection)
    sample: Sample | None = None

    def timing(reaction: pipeline.Reaction) -> pipeline.Reaction:
        scoring = reaction.name == "rescore"

        def timed(moments: pipeline.Moments) -> None:
            started, cpu = time.perf_counter(), time.process_time()
            if scoring:
                phases.take()
                phases.rows, phases.stored_at = 0, None
            reaction.react(moments)
            seconds = time.perf_counter() - started
            assert sample is not None
            sample.hooks[reaction.name] = sample.hooks.get(reaction.name, 0.0) + seconds
            if scoring and not sample.hook:
                sample.hook, sample.hook_cpu = seconds, time.process_time() - cpu
                sample.phases, sample.events = phases.take(), phases.rows
                sample.stored = (phases.stored_at or started + seconds) - started

        return pipeline.Reaction(reaction.name, timed)

    pipeline.REACTIONS = tuple(timing(reaction) for reaction in pipeline.REACTIONS)
    top = Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rng = random.Random(7)
    ids = list(
        Contact.objects.filter(
            pk__in=[rng.randint(1, top) for _ in range(args.samples * 2)]
        ).values_list("pk", flat=True)[: args.samples]
    )
    rng.shuffle(ids)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT contact_id FROM tracking_event WHERE contact_id IS NOT NULL "
            "GROUP BY contact_id ORDER BY COUNT(*) DESC LIMIT %s",
            [args.heavy],
        )
        heavy = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT COUNT(*) FROM tracking_event")
        events = cursor.fetchone()[0]
    print(f"database: {path} ({connection.vendor})")
    print(
        f"size: {Contact.objects.count():,} contacts, {events:,} events, {rules} rules; "
        f"{len(ids)} random contacts and the {len(heavy)} heaviest, one event each, cold then warm"
    )

    def evict() -> None:
        """Empty SQLite's cache and the kernel's page cache of this copy of the database."""
        connection.close()
        for name in (str(path), f"{path}-wal"):
            if os.path.exists(name):
                fd = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)

    def send(contact_ids: list[int]) -> list[Sample]:
        nonlocal sample
        done = []
        for contact_id in contact_ids:
            sample = Sample(contact_id)
            event = {
                "type": "page_view",
                "contact_id": contact_id,
                "url": "https://embudo.example/pricing",
                "event_id": str(uuid.uuid4()),
            }
            started, cpu = time.perf_counter(), time.process_time()
            result = tracking.record_events([event], source="api", now=timezone.now())
            sample.whole, sample.whole_cpu = (
                time.perf_counter() - started,
                time.process_time() - cpu,
            )
            assert result.accepted == 1, result.errors
            assert sample.hook, "the rescore reaction did not run"
            done.append(sample)
        return done

    def report(label: str, done: list[Sample]) -> None:
        hook = [s.hook for s in done]
        cpu = sum(s.hook_cpu for s in done)
        print(f"{label}, {len(done)} events:")
        print(f"  score stored:    {percentiles([s.stored for s in done])}")
        print(
            f"  scoring update:  {percentiles(hook)}; CPU {cpu / len(done) * 1000:.2f} ms a call "
            f"(p99 {at(sorted(s.hook_cpu for s in done), 0.99):.1f} ms)"
        )
        quiet = [s for s in done if not s.promoted]
        quiet_cpu = sorted(s.hook_cpu for s in quiet)
        print(
            f"    of which the {len(quiet)} that promoted nobody: "
            f"{percentiles([s.hook for s in quiet])}; CPU p50 {at(quiet_cpu, 0.5):.1f}, "
            f"p99 {at(quiet_cpu, 0.99):.1f} ms"
        )
        print(
            f"  whole call:      {percentiles([s.whole for s in done])}; CPU "
            f"{sum(s.whole_cpu for s in done) / len(done) * 1000:.2f} ms a call"
        )
        for name in dict.fromkeys(n for s in done for n in s.hooks):
            print(f"    {name:<14} {percentiles([s.hooks.get(name, 0.0) for s in done])}")
        rows = sorted(s.events for s in done)
        print(
            f"  events read per update: median {rows[len(rows) // 2]}, "
            f"p99 {rows[int(0.99 * len(rows))]}, max {rows[-1]}"
        )
        promoted = [s for s in done if s.promoted]
        if promoted:
            print(
                f"  {len(promoted)} of the events made the contact an MQL (the MQL rule, then "
                f"the handoff reaction): scoring update {percentiles([s.hook for s in promoted])}"
            )
        slowest = sorted(done, key=lambda s: s.hook)[-max(1, len(done) // 100) :]
        names = sorted({n for s in slowest for n in s.phases})
        mean = {n: sum(s.phases.get(n, 0.0) for s in slowest) / len(slowest) for n in names}
        other = sum(s.hook for s in slowest) / len(slowest) - sum(mean.values())
        print(
            f"  slowest 1 % ({len(slowest)}), mean ms by phase: "
            + ", ".join(f"{n} {mean[n] * 1000:.1f}" for n in names)
            + f", other {other * 1000:.1f}; CPU "
            f"{sum(s.hook_cpu for s in slowest) / len(slowest) * 1000:.1f} ms; events read "
            f"{sorted(s.events for s in slowest)}; promoted {sum(s.promoted for s in slowest)}"
        )

    for group, contact_ids in (("random contacts", ids), ("heaviest contacts", heavy)):
        for temperature in ("cold", "warm"):
            if temperature == "cold":
                evict()
            before = load()
            done = send(contact_ids)
            report(f"{group}, {temperature} (load {before} before, {load()} after)", done)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory {peak:,.0f} MB; CPU {time.process_time():.1f} s; load average {load()}")


if __name__ == "__main__":
    main()
