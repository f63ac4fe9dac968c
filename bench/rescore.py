"""How long a full rescore takes: 20 rules (10 fit, 10 engagement) over every contact and event.

Runs on the shared big data set (bench/bigdata.py: 1,000,000 contacts and 10,000,000 events by
default) in a copy of its own, and times :func:`embudo.scoring.actions.rescore_model` twice:
the first scoring (every row inserted) and a rescore after a rules change (rows updated).

    python3 bench/rescore.py                                    # 1,000,000 / 10,000,000
    python3 bench/rescore.py --contacts 100000 --events 1000000 # the quick preset

Target: under 60 s with a peak memory under 2 GB on SQLite.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _page(path: str) -> dict[str, object]:
    return {"type": "page_view", "where": [{"field": "url", "op": "contains", "value": path}]}


# Nine rules on top of the demo model's eleven: 20 in all, 10 fit and 10 engagement.
EXTRA_RULES = [
    ("fit", "Spain or Mexico",
     {"field": "company.country", "op": "in", "value": ["Spain", "Mexico"]}, 5, False, None),
    ("fit", "Paid search lead",
     {"field": "original_medium", "op": "eq", "value": "cpc"}, 3, False, None),
    ("fit", "Has a phone", {"field": "phone", "op": "is_set"}, 2, False, None),
    ("fit", "50-199 employees",
     {"field": "company.employees", "op": "between", "value": [50, 199]}, 5, False, None),
    ("engagement", "Email opens", {"type": "email_open"}, 1, True, 5),
    ("engagement", "Content views", {"type": "content_view"}, 2, True, 10),
    ("engagement", "Blog reading", _page("/blog/"), 1, True, 5),
    ("engagement", "Demo page", _page("/demo"), 10, False, None),
    ("engagement", "Product pages", _page("/product/"), 2, True, 8),
]  # fmt: skip


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    args = parser.parse_args()

    from bigdata import prepare

    path = prepare(f"score-{args.contacts}", contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from django.db import connection

    from embudo.crm.models import Contact
    from embudo.scoring import actions
    from embudo.scoring.demo import create_default_model
    from embudo.scoring.models import ContactScore, ScoreHistory, ScoreRule, ScoringModel
    from embudo.tracking.models import Event

    ScoreHistory.objects.all().delete()
    ContactScore.objects.all().delete()
    ScoringModel.objects.all().delete()
    model = create_default_model(key="bench", mql_fit=None, mql_engagement=None, mql_total=None)
    start = model.rules.count()
    ScoreRule.objects.bulk_create(
        ScoreRule(model=model, kind=k, name=n, condition=c, points=p, repeatable=r, max_points=m,
                  position=start + i)
        for i, (k, n, c, p, r, m) in enumerate(EXTRA_RULES)
    )  # fmt: skip
    rules = model.rules.count()
    contacts = Contact.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM tracking_event")
        events = cursor.fetchone()[0]
    print(f"database: {path} ({connection.vendor})")
    print(f"size: {contacts:,} contacts, {events:,} events, {rules} rules (MQL rule off)")
    del Event

    for label in ("first scoring (inserts)", "after a rules change (updates)"):
        if label.startswith("after"):
            ScoreRule.objects.filter(model=model, name="Target industry").update(points=12)
        started, cpu = time.perf_counter(), time.process_time()
        outcome = actions.rescore_model(model)
        seconds = time.perf_counter() - started
        assert outcome is not None
        print(
            f"{label}: {seconds:.1f} s wall, {time.process_time() - cpu:.1f} s CPU, "
            f"{contacts / seconds:,.0f} contacts/s, {outcome.changed:,} changed, "
            f"peak memory {peak_mb():,.0f} MB"
        )
    scores, history = ContactScore.objects.count(), ScoreHistory.objects.count()
    print(f"score rows: {scores:,}; history rows: {history:,}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
