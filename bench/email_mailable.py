"""How fast Embudo decides who may be mailed a subscription type (``mailability.mailable``), the
step that freezes a send's recipients, on the embedded default (SQLite) or on PostgreSQL.

It migrates a throwaway data folder (or, with EMBUDO_DATABASE_URL=postgres://…, that database,
whose contacts, subscriptions and suppressions it empties first) and fills it in SQL
(``INSERT … SELECT`` over a counter; this benchmark reads, it does not time the writes):
N contacts, 1 % of them without an address and 0.5 % with a broken one, a subscription type
with 60 % subscribed, 5 % unsubscribed and 3 % waiting for confirmation, and 2 % of the
addresses suppressed. Then it times ``mailable`` over a query of every contact and over a list
of every id, and prints the median of the runs, the rate, the CPU seconds (the fair figure on a
shared machine), and the peak memory the call allocated (tracemalloc, a separate run).

    python3 bench/email_mailable.py                        # 100,000 and 1,000,000 contacts
    python3 bench/email_mailable.py --contacts 100000 --runs 5
    EMBUDO_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench python3 bench/email_mailable.py
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def fill(contacts: int) -> int:
    """Write the data set; the subscription type's id."""
    from django.db import connection, transaction
    from django.utils import timezone

    from embudo.automation.models import SubscriptionType

    now = timezone.now().isoformat(sep=" ")
    kind = SubscriptionType.objects.create(key="newsletter", name="Newsletter")
    from embudo.crm.models import Contact

    given = {
        "email": (
            "CASE WHEN i % 100 = 0 THEN NULL WHEN i % 200 = 1 THEN 'broken ' || i "
            "ELSE 'person' || i || '@example.com' END"
        ),
        "first_name": "'Person'",
        "last_name": "'Number' || i",
    }
    names, values = [], []
    for field in Contact._meta.concrete_fields:
        if field.primary_key:
            continue
        kind_of = field.get_internal_type()
        if field.column in given:
            expression = given[field.column]
        elif field.null:
            continue
        elif kind_of == "DateTimeField":
            expression = f"'{now}'"
        elif kind_of == "BooleanField":
            expression = "FALSE"
        elif "Integer" in kind_of or kind_of in ("FloatField", "DecimalField"):
            expression = "0"
        elif kind_of == "JSONField":
            expression = "'{}'"
        elif field.column == "lifecycle_stage":
            expression = "'lead'"
        else:
            expression = "''"
        names.append(f'"{field.column}"')
        values.append(expression)
    counter = (
        f"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {contacts})"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO crm_contact ({', '.join(names)}) {counter} "
            f"SELECT {', '.join(values)} FROM n"
        )
        cursor.execute(
            "INSERT INTO automation_subscription (contact_id, subscription_type_id, status, "
            "changed_at) SELECT id, %s, CASE WHEN id %% 100 < 60 THEN 'subscribed' "
            "WHEN id %% 100 < 65 THEN 'unsubscribed' ELSE 'pending' END, %s "
            "FROM crm_contact WHERE id %% 100 < 68",
            [kind.pk, now],
        )
        cursor.execute(
            "INSERT INTO automation_suppression (email, reason, detail, created_at) "
            "SELECT email, 'hard_bounce', '', %s FROM crm_contact "
            "WHERE email IS NOT NULL AND id %% 50 = 7",
            [now],
        )
        cursor.execute("ANALYZE")
    return kind.pk


def timed(label: str, run: object, runs: int, contacts: int) -> None:
    times, cpu = [], []
    result = None
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    tracemalloc.start()
    run()  # type: ignore[operator]
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    median = statistics.median(times)
    counts = result.counts()  # type: ignore[attr-defined]
    # CPU seconds too: on a shared machine the wall clock also counts the others' work.
    print(
        f"  {label:<22} {median:7.3f} s median (min {min(times):.3f}, max {max(times):.3f}), "
        f"{statistics.median(cpu):.3f} s CPU  {contacts / median:>11,.0f} contacts/s  "
        f"peak {peak / 2**20:6.1f} MiB allocated"
    )
    print(f"  {'':<22} {counts}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--contacts", type=int, action="append", help="contacts (repeatable; default 100k and 1M)"
    )
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sizes = args.contacts or [100_000, 1_000_000]
    sys.path.insert(0, str(REPO))
    for size in sizes:
        folder = Path(tempfile.mkdtemp(prefix="embudo-bench-mailable-"))
        os.environ["EMBUDO_DATA_DIR"] = str(folder)
        postgres = os.environ.get("EMBUDO_DATABASE_URL", "").startswith("postgres")
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
        try:
            import django
            from django.core.management import call_command
            from django.db import connections

            django.setup()
            connections.close_all()
            # Each size gets its own database file: point the connection at the new folder.
            from django.conf import settings

            if not postgres:
                settings.DATABASES["default"]["NAME"] = str(folder / "embudo.sqlite3")
            call_command("migrate", verbosity=0)
            if postgres:
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.execute(
                        "TRUNCATE crm_contact, automation_subscription, automation_suppression, "
                        "automation_subscriptiontype RESTART IDENTITY CASCADE"
                    )
            start = time.perf_counter()
            kind_id = fill(size)
            engine = "PostgreSQL" if postgres else "SQLite"
            print(f"{size:,} contacts on {engine} (filled in {time.perf_counter() - start:.1f} s)")

            from embudo.automation.mailability import mailable
            from embudo.automation.models import SubscriptionType
            from embudo.crm.models import Contact

            kind = SubscriptionType.objects.get(pk=kind_id)
            ids = list(Contact.objects.values_list("pk", flat=True))
            everyone = partial(mailable, Contact.objects.all(), kind)
            timed("query of all contacts", everyone, args.runs, size)
            timed("list of every id", partial(mailable, ids, kind), args.runs, size)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  process peak RSS so far: {rss:,.0f} MiB")
        finally:
            connections.close_all()
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
