"""Benchmark loading the demo company (`embudo demo --seed-only`'s work) into an empty database.

    python3 bench/demo_seed.py                      # SQLite in a throwaway folder
    EMBUDO_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_demo python3 bench/demo_seed.py

With EMBUDO_DATABASE_URL, that database must exist and be empty (the demo refuses other data).
Prints the rows per table, the seconds for the migrate and the load, rows per second and peak
RSS. Without it, the data folder is a temporary directory, never ./embudo-data.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import tempfile
import time


def main() -> None:
    if not os.environ.get("EMBUDO_DATABASE_URL"):
        os.environ["EMBUDO_DATA_DIR"] = tempfile.mkdtemp(prefix="embudo-bench-demo-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from embudo.demo.seed import seed

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    migrated = time.perf_counter() - started

    report = seed(as_of=dt.date(2025, 6, 2))
    rows = sum(report.counts.values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"database: {connection.vendor}")
    for name, count in report.counts.items():
        print(f"  {name:<12} {count:>8,}")
    print(f"migrate: {migrated:.1f} s")
    print(f"seed:    {rows:,} rows in {report.seconds:.1f} s = {rows / report.seconds:,.0f} rows/s")
    print(f"peak RSS: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
