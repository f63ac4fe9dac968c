"""Benchmark `embudo import contacts`: a realistic CSV of N contacts (10 columns, 3 of them new
custom properties, a stage-date column) into a fresh SQLite database, then two re-imports of
the same contacts: one unchanged, one where every row changes.

    python3 bench/import_contacts.py              # 100,000 rows
    python3 bench/import_contacts.py --rows 5000  # a quick run
    python3 bench/import_contacts.py --rows 480000 --first-only   # a ~50 MB file

Prints rows, seconds, rows per second, file size and peak RSS for each run. The data folder is a
throwaway temporary directory, never ./embudo-data.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

FIRST = ["Ana", "Bruno", "Carla", "Diego", "Elena", "Fabio", "Gala", "Hugo", "Irene", "Jon"]
LAST = ["García", "Smith", "Müller", "Rossi", "Dubois", "Silva", "Kowalski", "Peña", "O'Neil"]
TITLES = ["CMO", "Head of Growth", "Marketing Manager", "SDR", "CEO", "VP Sales", "Analyst", ""]
STAGES = ["Subscriber", "Lead", "Lead", "MQL", "SQL", "Opportunity", "Customer"]


def generate(path: Path, rows: int, *, variant: int = 0) -> None:
    """A contacts CSV as a CRM would export it; ``variant`` changes every row's job title and
    budget while keeping the same people."""
    rng = random.Random(42)
    companies = [
        f"Company {n} {rng.choice(['SL', 'Ltd', 'GmbH', 'Inc', 'SA'])}" for n in range(5000)
    ]
    start = dt.datetime(2023, 1, 1, tzinfo=dt.UTC)
    with open(path, "w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "Email",
                "First Name",
                "Last Name",
                "Company",
                "Job Title",
                "Lifecycle Stage",
                "Became a Lead Date",
                "Annual Budget",
                "Newsletter",
                "Last Webinar",
            ]
        )
        for n in range(rows):
            became_lead = start + dt.timedelta(minutes=rng.randrange(0, 700 * 24 * 60))
            writer.writerow(
                [
                    f"person{n}@example{n % 97}.com",
                    rng.choice(FIRST),
                    rng.choice(LAST),
                    rng.choice(companies),
                    TITLES[(n + variant) % len(TITLES)] or "Consultant",
                    rng.choice(STAGES),
                    became_lead.strftime("%Y-%m-%d %H:%M"),
                    f"{rng.randrange(1, 500) * 100 + variant}",
                    rng.choice(["yes", "no", ""]),
                    (start + dt.timedelta(days=rng.randrange(0, 700))).date().isoformat(),
                ]
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed_import(path: Path, rows: int, label: str) -> None:
    """One real `embudo import contacts` run. CPU seconds are printed beside wall-clock seconds
    because on a shared machine the wall clock also measures the neighbours (SQLite runs in
    this process, so its work is in the CPU figure)."""
    from django.core.management import call_command

    out = io.StringIO()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    call_command("import", "contacts", str(path), "--quiet", stdout=out, stderr=sys.stderr)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    summary = out.getvalue().strip().splitlines()[0]
    print(
        f"{label:<18} rows={rows:,}  seconds={seconds:.1f}  rows/s={rows / seconds:,.0f}  "
        f"cpu_seconds={cpu:.1f}  peak_rss={peak_rss_mb():.0f} MB\n{'':<18} {summary}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--first-only", action="store_true", help="skip the two re-imports")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="embudo-bench-import-") as tmp:
        os.environ["EMBUDO_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("EMBUDO_DATABASE_URL", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        first, changed = Path(tmp) / "contacts.csv", Path(tmp) / "contacts-changed.csv"
        started = time.perf_counter()
        generate(first, args.rows)
        if not args.first_only:
            generate(changed, args.rows, variant=1)
        print(
            f"generated {args.rows:,} rows ({first.stat().st_size / 1e6:.1f} MB) in "
            f"{time.perf_counter() - started:.1f} s; SQLite in {tmp}; "
            f"peak_rss before import={peak_rss_mb():.0f} MB"
        )
        timed_import(first, args.rows, "first import")
        if not args.first_only:
            timed_import(first, args.rows, "same file again")
            timed_import(changed, args.rows, "every row changed")

        from embudo.crm.models import Company, Contact, LifecycleTransition

        print(
            f"stored: {Contact.objects.count():,} contacts, {Company.objects.count():,} companies, "
            f"{LifecycleTransition.objects.count():,} lifecycle transitions"
        )


if __name__ == "__main__":
    main()
