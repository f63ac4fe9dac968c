"""Speed of the analytics reports and the shared dashboard on the big benchmark database
(1,000,000 contacts with lifecycle history and 10,000,000 events by default; see bench/bigdata.py).

    python3 bench/dashboard.py                 # 1M contacts / 10M events (builds the base once)
    python3 bench/dashboard.py --quick         # 100k contacts / 1M events
    python3 bench/dashboard.py --repeat 7 --period 2026-09-01:2026-11-30
    python3 bench/dashboard.py --filters source=google    # the dashboard's filters (team, persona…)

Each report the dashboard shows is run through the registry (as the page, the CLI and the API
run it) once cold and ``--repeat`` times warm; then the whole page is rendered through Django's
full request path (middleware, session, access checks, template) as a logged-in admin. Goals:
each report under 1 s warm, the page under 2 s. Prints sizes, medians, peak memory and load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k contacts, 1M events")
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--name", default="", help="the database copy's name (default: funnel)")
    parser.add_argument(
        "--period", default="", help="FROM:TO (YYYY-MM-DD); default: the dashboard's default"
    )
    parser.add_argument(
        "--filters",
        default="",
        help="NAME=VALUE,… given to every report (those it takes) and to the page: team, source, "
        "persona",
    )
    args = parser.parse_args()
    filters = dict(pair.split("=", 1) for pair in args.filters.split(",") if pair)
    if args.quick:
        args.contacts, args.events = 100_000, 1_000_000

    from bigdata import PASSWORD, prepare

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    name = args.name or ("funnel" if args.contacts == 1_000_000 else f"funnel-{args.contacts}")
    path = prepare(name, contacts=args.contacts, events=args.events)
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from embudo.analytics import stamps
    from embudo.analytics.funnel import default_range
    from embudo.crm.models import Contact, LifecycleTransition
    from embudo.reports import run_report
    from embudo.tracking.models import Event

    if args.period:
        start, end = args.period.split(":")
    else:
        first, last = default_range()
        start, end = first.isoformat(), last.isoformat()
    print(f"database: {path}")
    print(
        f"contacts: {Contact.objects.count():,}  transitions: "
        f"{LifecycleTransition.objects.count():,}  events: {Event.objects.count():,}"
    )
    entered = LifecycleTransition.objects.filter(
        changed_at__date__gte=start, changed_at__date__lte=end, to_stage="lead"
    ).count()
    print(f"period {start} to {end}: {entered:,} lead entries; filters: {filters or 'none'}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    cases = [
        ("funnel", {}),
        ("funnel", {"breakdown": "period"}),
        ("funnel", {"mode": "period"}),
        ("funnel", {"breakdown": "source"}),
        ("funnel", {"breakdown": "channel"}),
        ("funnel", {"breakdown": "owner"}),
        ("funnel", {"breakdown": "company.industry"}),
        ("velocity", {}),
        ("velocity", {"breakdown": "period"}),
        ("kpis", {"breakdown": "source"}),
        ("kpis", {"breakdown": "period"}),
        ("attribution", {}),
        ("roi", {}),
    ]
    # Two warm figures: "kept" runs again with nothing written in between, so the reads kept
    # in memory (embudo.analytics.stamps) are used; "fresh" forgets them first, as after any
    # write to the tables they come from (the database's own pages stay in memory). Wall time
    # on a shared machine counts other people's work too: CPU time (this process, SQLite
    # included, as it runs in-process) is printed beside it.
    print(f"\n{'report':<36} {'cold ms':>8} {'fresh ms':>9} {'CPU':>6} {'kept ms':>8} {'CPU':>6}")
    worst = worst_cpu = 0.0

    def measure(run: Callable[[], Any], forget: bool) -> tuple[list[float], list[float]]:
        timings, cpu = [], []
        for _ in range(args.repeat):
            if forget:
                stamps.forget()
            started, cpu_started = time.perf_counter(), time.process_time()
            run()
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - cpu_started) * 1000)
        return timings, cpu

    for name, options in cases:
        label = name + (" " + " ".join(f"{k}={v}" for k, v in options.items()) if options else "")

        def run(name: str = name, options: dict[str, str] = options) -> Any:
            return run_report(name, date_from=start, date_to=end, options={**filters, **options})

        stamps.forget()
        started = time.perf_counter()
        run()
        cold = (time.perf_counter() - started) * 1000
        fresh, fresh_cpu = measure(run, forget=True)
        run()
        kept, kept_cpu = measure(run, forget=False)
        median, median_cpu = statistics.median(fresh), statistics.median(fresh_cpu)
        worst, worst_cpu = max(worst, median), max(worst_cpu, median_cpu)
        print(
            f"{label:<36} {cold:>8.0f} {median:>9.0f} {median_cpu:>6.0f} "
            f"{statistics.median(kept):>8.0f} {statistics.median(kept_cpu):>6.0f}"
        )
    print(
        f"slowest report, fresh median: {worst:.0f} ms wall, {worst_cpu:.0f} ms CPU "
        "(goal: under 1,000 ms)"
    )

    client = Client(HTTP_HOST="localhost")
    assert client.login(username="admin", password=PASSWORD)
    url = f"/analytics/?from={start}&to={end}" + "".join(f"&{k}={v}" for k, v in filters.items())
    stamps.forget()
    started, cpu_started = time.perf_counter(), time.process_time()
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    print(
        f"\ndashboard page {url}, first request: "
        f"{(time.perf_counter() - started) * 1000:.0f} ms wall, "
        f"{(time.process_time() - cpu_started) * 1000:.0f} ms CPU"
    )
    for forget in (True, False):
        timings, cpu = [], []
        for _ in range(args.repeat):
            if forget:
                stamps.forget()
            with CaptureQueriesContext(connection) as captured:
                started, cpu_started = time.perf_counter(), time.process_time()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                cpu.append((time.process_time() - cpu_started) * 1000)
        print(
            f"dashboard page, {'fresh (nothing kept)' if forget else 'kept reads'}: median "
            f"{statistics.median(timings):.0f} ms wall, {statistics.median(cpu):.0f} ms CPU, "
            f"max {max(timings):.0f} ms, {len(captured.captured_queries)} queries, "
            f"{len(response.content):,} bytes (goal: under 2,000 ms)"
        )
        slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:5]
        for query in slowest:
            print(f"  {float(query['time']) * 1000:>7.0f} ms  {query['sql'][:110]}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS): {peak_mb:.0f} MB")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
