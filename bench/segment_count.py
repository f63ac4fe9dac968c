"""How fast a three-condition segment (one behavioural) counts on the embedded default (SQLite).

The segment: open leads (stage in lead, mql) at companies of 50+ people who viewed /pricing at
least 3 times in the last 14 days — the condition language compiled to one SQL query with an
events subquery. It runs on a copy of the shared big database (bench/bigdata.py) and prints, per
variant, the median, fastest and slowest of several counts, the count, the rate (contacts
considered per second), peak memory and the load average (the machine is shared).

    python3 bench/segment_count.py                                # 1,000,000 contacts, 10M events
    python3 bench/segment_count.py --contacts 100000 --events 1000000 --runs 5
    python3 bench/segment_count.py --plan                         # also print SQLite's plan
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

# The data's "today" (bench/bigdata.py): relative windows are measured from it.
TODAY = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)

STAGES = {"field": "lifecycle_stage", "op": "in", "value": ["lead", "mql"]}
SIZE = {"field": "company.employees", "op": "gte", "value": 50}
PRICING = {
    "event": {
        "type": "page_view",
        "where": [{"field": "url", "op": "contains", "value": "/pricing"}],
    },
    "count": {"op": "gte", "value": 3},
    "within_days": 14,
}
NO_OPEN = {"event": {"type": "email_open"}, "count": {"op": "eq", "value": 0}, "within_days": 90}
SEATS = {"field": "property.seats", "op": "gte", "value": 10}

# What "did X (where url …) N times in D days" needs to read only an index: the proposed
# replacement of events' (type, occurred_at) index.
COVERING_INDEX = (
    "CREATE INDEX IF NOT EXISTS bench_event_type_time_contact_url "
    "ON tracking_event (type, occurred_at, contact_id, url)"
)

VARIANTS: dict[str, Any] = {
    "stage + company size + pricing 3x/14d": {"all": [STAGES, SIZE, PRICING]},
    "stage + seats property + no email open/90d": {"all": [STAGES, SEATS, NO_OPEN]},
    "pricing 3x/14d alone": PRICING,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--plan", action="store_true", help="print SQLite's query plan")
    parser.add_argument(
        "--covering-index",
        action="store_true",
        help="first add (on this bench's copy only) the events index proposed in docs/segments.md",
    )
    args = parser.parse_args()

    from bigdata import prepare

    path = prepare(f"segments-{args.contacts}", contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from django.db import connection

    from embudo.crm.models import Contact
    from embudo.segments.conditions import compile_condition, describe_condition
    from embudo.tracking.models import Event

    if args.covering_index:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(COVERING_INDEX)
            cursor.execute("ANALYZE bench_event_type_time_contact_url")
        print(f"covering events index ready in {time.perf_counter() - started:.0f} s")
    contacts = Contact.objects.count()
    events = Event.objects.count()
    print(f"database {path}: {contacts:,} contacts, {events:,} events")
    for name, condition in VARIANTS.items():
        query = Contact.objects.filter(compile_condition(condition, now=TODAY))
        if args.plan:
            with connection.cursor() as cursor:
                sql, params = query.only("pk").query.sql_with_params()
                cursor.execute(f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM ({sql})", params)
                for row in cursor.fetchall():
                    print("   plan:", row[-1])
        times, count = [], 0
        for _run in range(args.runs):
            started = time.perf_counter()
            count = Contact.objects.filter(compile_condition(condition, now=TODAY)).count()
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(
            f"{name}: count {count:,}  median {median * 1000:.0f} ms  "
            f"fastest {min(times) * 1000:.0f} ms  slowest {max(times) * 1000:.0f} ms  "
            f"({contacts / median:,.0f} contacts/s)"
        )
        print(f"   {describe_condition(condition)}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"peak memory {peak_mb:,.0f} MB; load average {load}")


if __name__ == "__main__":
    main()
