"""How fast the contact search answers on PostgreSQL with the shared big database's contacts,
without and with the prefix indexes of crm migration 0003.

It creates a throwaway PostgreSQL database, migrates it, copies the users, companies and contacts
of the shared big database (bench/bigdata.py) into it with COPY, then times each search through
the queries the contact list and the API run -- the first 50 rows (``contact_rows``), the capped
count of the list page (``count_up_to``) and the API's full count -- first with crm migrated back
to the migration before 0003, then with 0003 applied. Prints the median and slowest of several
runs in milliseconds.

    python3 bench/contact_search.py                                   # 1,000,000 contacts
    python3 bench/contact_search.py --contacts 100000 --events 1000000
    python3 bench/contact_search.py --postgres postgres://postgres@127.0.0.1:5432 --runs 9
"""

from __future__ import annotations

import argparse
import os
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from bigdata import ensure_base  # noqa: E402 -- found through the line above

# (table, columns) copied from the big database, in foreign-key order.
TABLES = (
    (
        "auth_user",
        ("id", "password", "last_login", "is_superuser", "username", "first_name", "last_name",
         "email", "is_staff", "is_active", "date_joined"),
    ),
    (
        "crm_company",
        ("id", "name", "domain", "external_id", "industry", "employees", "country", "city",
         "owner_id", "properties", "created_at", "updated_at"),
    ),
    (
        "crm_contact",
        ("id", "email", "external_id", "first_name", "last_name", "phone", "job_title",
         "company_id", "owner_id", "lifecycle_stage", "lifecycle_stage_changed_at",
         "lead_status", "original_source", "original_medium", "original_campaign", "properties",
         "created_at", "updated_at"),
    ),
)  # fmt: skip
SEARCH_MIGRATION = "0003_contact_search_prefix_indexes"
BOOLEANS = {"is_superuser", "is_staff", "is_active"}
# A term per kind of search: nothing matches, a common name prefix, a surname, a full name, an
# address, an external id.
TERMS = ("zzz", "mar", "garcía", "ana lópez", "ana.lopez@", "ext-4242")


def copy_tables(base: Path) -> float:
    from django.db import connection

    started = time.perf_counter()
    source = sqlite3.connect(f"file:{base}?mode=ro", uri=True)
    with connection.cursor() as cursor:
        raw = cursor.cursor
        for table, columns in TABLES:
            flags = [c in BOOLEANS for c in columns]
            names = ", ".join(columns)
            rows = source.execute(f"SELECT {names} FROM {table}")
            with raw.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(
                        [bool(v) if flag else v for v, flag in zip(row, flags, strict=True)]
                    )
        cursor.execute("ANALYZE")
    source.close()
    return time.perf_counter() - started


def timed(run: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    answer = run()  # warm the caches, as a second search would
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings), max(timings), answer


def time_searches(label: str, runs: int) -> dict[tuple[str, str], float]:
    from embudo.crm import queries

    system = queries.SYSTEM
    print(f"\n{label}")
    print(f"{'search':<14} {'what':<26} {'median ms':>10} {'max':>8} {'answer':>8}")
    medians = {}
    for term in TERMS:
        filters = queries.ContactFilter(search=term)

        def first_rows(f: Any = filters) -> int:
            return len(queries.contact_rows(system, f, limit=51))

        def capped_count(f: Any = filters) -> int:
            return queries.count_up_to(queries.contact_list(system, f), 10_000)

        def full_count(f: Any = filters) -> int:
            return queries.contact_list(system, f).count()

        checks: list[tuple[str, Callable[[], Any]]] = [
            ("first 50 rows", first_rows),
            ("count up to 10,000 (page)", capped_count),
            ("full count (API)", full_count),
        ]
        for what, run in checks:
            median, slowest, answer = timed(run, runs)
            medians[(term, what)] = median
            print(f"{term:<14} {what:<26} {median:>10.1f} {slowest:>8.1f} {answer:>8,}")
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, help="which big database (default: 10 per contact)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per search (median)")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args()
    base = ensure_base(args.contacts, args.events or args.contacts * 10)

    import psycopg

    server = args.postgres.rstrip("/")
    database = f"embudo_bench_search_{os.getpid()}"
    with psycopg.connect(f"{server}/postgres", autocommit=True) as pg:
        pg.execute(f'CREATE DATABASE "{database}"')
    os.environ["EMBUDO_DATABASE_URL"] = f"{server}/{database}"
    os.environ["DJANGO_SETTINGS_MODULE"] = "embudo.settings"
    sys.path.insert(0, str(REPO))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        previous = import_module(f"embudo.crm.migrations.{SEARCH_MIGRATION}").Migration
        call_command("migrate", "crm", previous.dependencies[0][1], verbosity=0)
        seconds = copy_tables(base)
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM crm_contact")
            contacts = cursor.fetchone()[0]
            cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
            size = cursor.fetchone()[0]
        print(
            f"{connection.display_name}: copied {contacts:,} contacts from {base.name} "
            f"in {seconds:.0f} s ({contacts / seconds:,.0f} rows/s); database {size}"
        )
        before = time_searches("without the search indexes:", args.runs)
        started = time.perf_counter()
        call_command("migrate", "crm", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE crm_contact")
        print(f"\napplied {SEARCH_MIGRATION} in {time.perf_counter() - started:.1f} s")
        after = time_searches("with the prefix indexes:", args.runs)
        print(f"\n{'search':<14} {'what':<26} {'before ms':>10} {'after ms':>9}")
        for key, was in before.items():
            print(f"{key[0]:<14} {key[1]:<26} {was:>10.1f} {after[key]:>9.1f}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\npeak memory (RSS) {peak_mb:.0f} MB; load average {os.getloadavg()[0]:.1f}")
    finally:
        from django.db import connections

        connections.close_all()
        if args.keep:
            print(f"kept database {database}")
        else:
            with psycopg.connect(f"{server}/postgres", autocommit=True) as pg:
                pg.execute(f'DROP DATABASE IF EXISTS "{database}"')


if __name__ == "__main__":
    main()
