"""Speed of the contact pages with a large CRM: the contacts list (first page, a deep page,
search, filters), a contact page and the companies list, rendered in-process through Django's
full request path (middleware, session, access checks, templates).

The data goes in through Embudo's own CSV import (`embudo import contacts`), into a throwaway
SQLite folder, or a throwaway PostgreSQL database with --postgres. Prints per page the median
and 95th-percentile time, the SQL queries it ran, and the peak memory of the process; and what a
full COUNT(*) would cost next to the capped count the list shows.

    python3 bench/list_pages.py                         # 100,000 contacts on SQLite
    python3 bench/list_pages.py --contacts 20000 --repeat 10
    python3 bench/list_pages.py --postgres postgres://postgres@127.0.0.1:5432
    python3 bench/list_pages.py --bigdata               # the shared 1M-contact database
    python3 bench/list_pages.py --bigdata --contacts 100000 --events 1000000

With --bigdata the pages are timed on a copy of the shared big database (bench/bigdata.py)
instead of an import: its users marketing1, manager and rep01 stand in for marketer, manager
and rep1.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

FIRST = [
    "Ana",
    "Javier",
    "Lucía",
    "Carlos",
    "María",
    "Pablo",
    "Valentina",
    "Mateo",
    "Camila",
    "Andrés",
    "Isabel",
    "Tomás",
    "Julia",
    "Nicolás",
    "Paula",
    "Hugo",
    "Martina",
    "Sergio",
    "Emma",
    "Raúl",
    "Olivia",
    "James",
    "Chloe",
    "Daniel",
    "Irene",
    "Óscar",
    "Noelia",
    "Adrián",
    "Clara",
    "Gabriel",
]
LAST = [
    "García",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Romero",
    "Torres",
    "Ruiz",
    "Vargas",
    "Castro",
    "Morales",
    "Jiménez",
    "Navarro",
    "Gil",
    "Serrano",
    "Blanco",
    "Molina",
    "Delgado",
    "Smith",
    "Walker",
    "Iglesias",
    "Rivas",
    "Ortega",
    "Herrera",
    "Méndez",
    "Puig",
]
STAGES = ["subscriber", "lead", "lead", "lead", "mql", "mql", "sql", "opportunity", "customer"]
REPS = [f"rep{n}" for n in range(1, 9)]
PASSWORD = "bench-password-123"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--companies", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per page")
    parser.add_argument(
        "--bigdata", action="store_true", help="time a copy of the shared big database"
    )
    parser.add_argument("--events", type=int, help="with --bigdata (default: 10 per contact)")
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="server URL without a database name; a throwaway database is created and dropped",
    )
    return parser.parse_args()


def write_csv(path: Path, contacts: int, companies: int) -> None:
    rng = random.Random(42)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            ["Email", "First name", "Last name", "Company", "Job title", "Lifecycle stage", "Owner"]
        )
        for n in range(contacts):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            owner = rng.choice(REPS) if rng.random() < 0.7 else ""
            writer.writerow(
                [
                    f"contact{n}@example{n % companies}.com",
                    first,
                    last,
                    f"Company {n % companies}",
                    rng.choice(["CEO", "CFO", "Head of Marketing", "IT Director", "COO"]),
                    rng.choice(STAGES),
                    owner,
                ]
            )


def main() -> None:
    args = parse_args()
    # Who plays each part, and an email to search for: the import's, or the big database's.
    args.logins = {"marketer": "marketer", "manager": "manager", "rep1": "rep1"}
    args.password = PASSWORD
    args.email_probe = "contact4242@"
    if args.bigdata:
        run_bigdata(args)
        return
    workdir = Path(tempfile.mkdtemp(prefix="embudo-bench-pages-"))
    os.environ["EMBUDO_DATA_DIR"] = str(workdir / "data")
    os.environ.pop("EMBUDO_DATABASE_URL", None)
    # The in-process client calls itself "testserver". (Django's test-environment hook would
    # allow it too, but it also instruments every template render, which would skew the times.)
    os.environ["EMBUDO_ALLOWED_HOSTS"] = "testserver"
    database = ""
    if args.postgres:
        import psycopg

        database = f"embudo_bench_pages_{os.getpid()}"
        with psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True) as pg:
            pg.execute(f'CREATE DATABASE "{database}"')
        os.environ["EMBUDO_DATABASE_URL"] = f"{args.postgres.rstrip('/')}/{database}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "embudo.settings")
    try:
        run(args, workdir)
    finally:
        if database:
            from django.db import connections

            connections.close_all()
            with psycopg.connect(f"{args.postgres.rstrip('/')}/postgres", autocommit=True) as pg:
                pg.execute(f'DROP DATABASE IF EXISTS "{database}"')
        shutil.rmtree(workdir, ignore_errors=True)


def run_bigdata(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from bigdata import PASSWORD as BIG_PASSWORD
    from bigdata import prepare

    events = args.events or args.contacts * 10
    path = prepare("list_pages", contacts=args.contacts, events=events)
    os.environ["EMBUDO_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from embudo.crm.models import Contact

    args.logins = {"marketer": "marketing1", "manager": "manager", "rep1": "rep01"}
    args.password = BIG_PASSWORD
    email = Contact.objects.filter(pk=4242).values_list("email", flat=True).first() or "x@"
    args.email_probe = email.split("@")[0] + "@"
    print(f"database: {path} ({args.contacts:,} contacts, {events:,} events)")
    time_pages(args)
    count_costs(args)


def run(args: argparse.Namespace, workdir: Path) -> None:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from embudo.accounts.actions import create_user
    from embudo.crm.models import Contact

    print(
        f"database: {connection.vendor}; contacts: {args.contacts:,}; companies: {args.companies:,}"
    )
    call_command("migrate", verbosity=0)
    for name in REPS:
        create_user(name, role="sales", password=PASSWORD, first_name="Rep", last_name=name)
    create_user("marketer", role="marketing", password=PASSWORD)
    create_user("manager", role="sales_manager", password=PASSWORD)

    csv_path = workdir / "contacts.csv"
    write_csv(csv_path, args.contacts, args.companies)
    started = time.perf_counter()
    call_command("import", "contacts", str(csv_path), verbosity=0)
    took = time.perf_counter() - started
    total = Contact.objects.count()
    print(f"built through `embudo import contacts`: {total:,} contacts in {took:.1f} s")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")

    time_pages(args)
    if connection.vendor == "sqlite":
        # A fresh import leaves SQLite without planner statistics; ANALYZE (or PRAGMA optimize)
        # gives it the numbers to choose a plan. Show both.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        print("\nafter ANALYZE:")
        time_pages(args)
    count_costs(args)


def count_costs(args: argparse.Namespace) -> None:
    from django.contrib.auth import get_user_model

    from embudo.crm import queries

    print("\nwhat the count in the list header costs:")
    marketer = get_user_model().objects.get(username=args.logins["marketer"])
    for label, filters in (
        ("all contacts", queries.ContactFilter()),
        ("search 'gar'", queries.ContactFilter(search="gar")),
    ):
        query = queries.contact_list(marketer, filters)
        for name, count in (
            ("full COUNT(*)", lambda q=query: q.order_by().count()),
            ("capped at 10,000", lambda q=query: queries.count_up_to(q, 10_000)),
        ):
            started = time.perf_counter()
            for _ in range(5):
                value = count()
            ms = (time.perf_counter() - started) * 1000 / 5
            print(f"  {label:<14} {name:<18} {ms:>7.1f} ms  -> {value:,}")

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (max RSS of this process): {peak_mb:.0f} MB")


def time_pages(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from embudo.crm.models import Contact

    oldest = Contact.objects.order_by("id").values_list("id", flat=True)[50]
    contact_id = Contact.objects.filter(owner__username=args.logins["rep1"]).values_list(
        "id", flat=True
    )[0]
    company_id = Contact.objects.exclude(company=None).values_list("company_id", flat=True)[0]
    cases: list[tuple[str, str, str]] = [
        ("marketer", "/contacts/", "contacts list, first page"),
        ("marketer", f"/contacts/?after={oldest}", "contacts list, last pages (keyset)"),
        ("marketer", "/contacts/?q=gar", "search 'gar' (name prefix)"),
        ("marketer", f"/contacts/?q={args.email_probe}", "search by email"),
        ("marketer", "/contacts/?q=zzz", "search with no match"),
        ("marketer", "/contacts/?stage=mql", "filter stage=mql"),
        ("manager", "/contacts/?owner=none&stage=sql", "filter unassigned + sql"),
        ("rep1", "/contacts/", "sales rep: own + unassigned"),
        ("rep1", "/contacts/?owner=me", "sales rep: mine"),
        ("rep1", f"/contacts/{contact_id}/", "contact page"),
        ("marketer", "/companies/", "companies list"),
        ("marketer", f"/companies/{company_id}/", "company page"),
    ]
    clients: dict[str, Client] = {}
    print(f"\n{'page':<38} {'median ms':>10} {'p95 ms':>8} {'queries':>8}  status")
    worst = 0.0
    for username, url, label in cases:
        client = clients.get(username)
        if client is None:
            client = clients[username] = Client()
            assert client.login(username=args.logins[username], password=args.password)
        client.get(url)  # warm the caches, as a second visit would
        timings = []
        for _ in range(args.repeat):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
        timings.sort()
        median = statistics.median(timings)
        p95 = timings[min(len(timings) - 1, int(len(timings) * 0.95))]
        if url.startswith("/contacts/?") or url == "/contacts/":
            worst = max(worst, p95)
        print(
            f"{label:<38} {median:>10.1f} {p95:>8.1f} {len(captured.captured_queries):>8}"
            f"  {response.status_code}"
        )

    print(f"worst contacts-list p95: {worst:.1f} ms (goal: under 200 ms)")


if __name__ == "__main__":
    main()
