"""How long a contact's scores take to catch up with one new event (the "always current" path).

On the shared big data set (bench/bigdata.py; 1,000,000 contacts, 10,000,000 events by default),
with the 20-rule model of bench/rescore.py, it records one event at a time through the capture
action (:func:`embudo.tracking.actions.record_events`) for random contacts; once the event is
committed, scoring's hook rescores that contact under every enabled model. It prints the
percentiles of the scoring hook alone and of the whole call (which also runs the other apps'
hooks: segments, predictive…).

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {at(0.50):.1f} ms, p95 {at(0.95):.1f} ms, p99 {at(0.99):.1f} ms, "
        f"max {ordered[-1] * 1000:.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--samples", type=int, default=500)
    args = parser.parse_args()

    from bigdata import prepare

    path = prepare(f"score-{args.contacts}", contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone
    from rescore import EXTRA_RULES

    from embudo.crm.models import Contact
    from embudo.scoring import actions
    from embudo.scoring.demo import create_default_model
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

    hook_times: list[float] = []

    def timed_hook(contact_ids: list[int]) -> None:
        started = time.perf_counter()
        actions.after_events(contact_ids)
        hook_times.append(time.perf_counter() - started)

    tracking.AFTER_EVENTS[:] = [
        timed_hook if hook is actions.after_events else hook for hook in tracking.AFTER_EVENTS
    ]
    top = Contact.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    rng = random.Random(7)
    ids = list(
        Contact.objects.filter(
            pk__in=[rng.randint(1, top) for _ in range(args.samples * 2)]
        ).values_list("pk", flat=True)[: args.samples]
    )
    print(f"database: {path} ({connection.vendor})")
    print(
        f"size: {Contact.objects.count():,} contacts, {args.events:,} events (preset), "
        f"{rules} rules; {len(ids)} single events"
    )

    def send(contact_ids: list[int]) -> list[float]:
        """One event per contact, one at a time; the seconds each whole call took."""
        whole = []
        for contact_id in contact_ids:
            event = {
                "type": "page_view",
                "contact_id": contact_id,
                "url": "https://embudo.example/pricing",
                "event_id": str(uuid.uuid4()),
            }
            started = time.perf_counter()
            result = tracking.record_events([event], source="api", now=timezone.now())
            whole.append(time.perf_counter() - started)
            assert result.accepted == 1, result.errors
        return whole

    # Cold: random contacts, whose events are rarely in the page cache of a 5 GB database.
    # Warm: the same contacts again, as when someone active keeps clicking.
    for label in ("cold (random contacts)", "warm (the same contacts again)"):
        hook_times.clear()
        whole = send(ids)
        assert len(hook_times) == len(ids), "the scoring hook did not run for every event"
        print(f"{label}: scoring update after one event: {percentiles(hook_times)}")
        print(f"{label}: whole call (store + every app's hooks): {percentiles(whole)}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak memory {peak:,.0f} MB; load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


if __name__ == "__main__":
    main()
