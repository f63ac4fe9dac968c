"""How fast the contact list answers with 100,000 contacts on the embedded default (SQLite).

It migrates a throwaway data folder, fills it with companies, sales reps and contacts through a
fast path (``bulk_create`` of rows: fine for a read benchmark, nothing here tests the writes),
then times each target -- an HTTP request through Django's test client, so the whole stack runs
(middleware, auth, query, JSON) without a network -- and prints the median, the fastest and the
slowest of several runs, in milliseconds, with the rows answered.

    python3 bench/list_contacts.py                      # 100,000 contacts, 9 runs per target
    python3 bench/list_contacts.py --contacts 20000 --runs 5
    python3 bench/list_contacts.py --keep               # keep the data folder for a look
    python3 bench/list_contacts.py --bigdata            # a copy of the shared 1M-contact database
    python3 bench/list_contacts.py --bigdata --contacts 100000 --events 1000000

To time another list (a page, another endpoint), add a ``Target`` in ``page_targets`` below.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent

FIRST = ["Ana", "Luis", "Marta", "Jorge", "Lucía", "Pablo", "Sofía", "Diego", "Elena", "Carlos"]
LAST = ["García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno"]
# Roughly how a real funnel is shaped: wide at the top, narrow at the bottom.
STAGES = [
    ("subscriber", 40),
    ("lead", 30),
    ("mql", 12),
    ("sql", 7),
    ("opportunity", 5),
    ("customer", 4),
    ("evangelist", 1),
    ("disqualified", 1),
]


@dataclass
class Context:
    """What targets need: clients already authenticated, and facts about the data."""

    key_client: Any  # API key with the read scope
    admin_client: Any  # session of an admin
    rep_client: Any  # session of a sales rep (sees own and unassigned contacts)
    contacts: int
    email_probe: str = "person4242"  # part of an email address to search for


@dataclass
class Target:
    name: str
    url: str
    client: Any
    # Reads the answer: how many rows it shows (for the printout) and raises if it is wrong.
    check: Callable[[Any], int]


def api_rows(response: Any) -> int:
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    return len(response.json()["items"])


def api_targets(ctx: Context) -> list[Target]:
    deep = ctx.contacts // 2
    # A real `next` link from the middle of the list: keyset paging's deep page.
    middle = ctx.key_client.get(f"/api/v1/contacts?offset={deep - 50}")
    cursor_url = middle.json()["next"]
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    key = ctx.key_client
    return [
        Target("API first page (50)", "/api/v1/contacts", key, api_rows),
        Target(f"API deep page, offset={deep}", f"/api/v1/contacts?offset={deep}", key, api_rows),
        Target(f"API deep page, cursor at ~{deep}", cursor_url, key, api_rows),
        Target("API 500 per page", "/api/v1/contacts?limit=500", key, api_rows),
        Target("API stage=mql", "/api/v1/contacts?stage=mql", key, api_rows),
        Target("API stage=customer, deep cursor", _stage_cursor(key), key, api_rows),
        Target("API search=mar (name prefix)", "/api/v1/contacts?search=mar", key, api_rows),
        Target(
            f"API search={ctx.email_probe} (email)",
            f"/api/v1/contacts?search={ctx.email_probe}",
            key,
            api_rows,
        ),
        Target(
            "API updated_since 7 days", f"/api/v1/contacts?updated_since={since}", key, api_rows
        ),
        Target("API admin session, first page", "/api/v1/contacts", ctx.admin_client, api_rows),
        Target("API sales rep session, first page", "/api/v1/contacts", ctx.rep_client, api_rows),
        Target("API sales rep, owner=me", "/api/v1/contacts?owner=me", ctx.rep_client, api_rows),
    ]


def _stage_cursor(client: Any) -> str:
    url = "/api/v1/contacts?stage=customer&limit=500"
    for _ in range(3):
        url = client.get(url).json()["next"] or url
    return url.replace("limit=500", "limit=50")


def html_rows(response: Any) -> int:
    """Contacts listed on an HTML page (each row links its name to the contact page)."""
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    return response.content.count(b'<td><a class="strong" href="/contacts/')


def html_page(response: Any) -> int:
    if response.status_code != 200:
        raise SystemExit(f"{response.status_code}: {response.content[:300]!r}")
    return 1


def page_targets(ctx: Context) -> list[Target]:
    """The contacts list page (HTML, 25 a page, keyset-paged) and a contact page."""
    from embudo.crm.models import Contact

    middle = Contact.objects.order_by("-id").values_list("id", flat=True)[ctx.contacts // 2]
    contact = Contact.objects.exclude(owner=None).order_by("-id").values_list("id", flat=True)[0]
    admin, rep = ctx.admin_client, ctx.rep_client
    return [
        Target("page first (25)", "/contacts/", admin, html_rows),
        Target(
            f"page deep, after ~{ctx.contacts // 2}", f"/contacts/?after={middle}", admin, html_rows
        ),
        Target("page search=mar (name prefix)", "/contacts/?q=mar", admin, html_rows),
        Target(
            f"page search={ctx.email_probe} (email)",
            f"/contacts/?q={ctx.email_probe}",
            admin,
            html_rows,
        ),
        Target("page stage=mql", "/contacts/?stage=mql", admin, html_rows),
        Target("page unassigned + sql", "/contacts/?owner=none&stage=sql", admin, html_rows),
        Target("page sales rep, first page", "/contacts/", rep, html_rows),
        Target("page sales rep, owner=me", "/contacts/?owner=me", rep, html_rows),
        Target("page contact (admin)", f"/contacts/{contact}/", admin, html_page),
    ]


def targets(ctx: Context) -> list[Target]:
    return api_targets(ctx) + page_targets(ctx)


# -- data ---------------------------------------------------------------------------------------


def build(contacts: int, seed: int = 7) -> tuple[Any, Any, float]:
    """Companies, 20 reps and ``contacts`` contacts; returns (admin, a rep, seconds)."""
    from django.db import transaction
    from django.utils import timezone

    from embudo.accounts.actions import create_user
    from embudo.crm.models import Company, Contact

    rng = random.Random(seed)
    started = time.perf_counter()
    admin = create_user("bench-admin", role="admin")
    reps = [create_user(f"rep{n}", role="sales") for n in range(20)]
    now = timezone.now()
    with transaction.atomic():
        Company.objects.bulk_create(
            Company(name=f"Company {n}", domain=f"company{n}.example") for n in range(2000)
        )
    company_ids = list(Company.objects.values_list("id", flat=True))
    stages = [s for s, _ in STAGES]
    weights = [w for _, w in STAGES]
    batch = 5000
    for start in range(0, contacts, batch):
        rows = []
        for n in range(start, min(start + batch, contacts)):
            changed = now - dt.timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
            rows.append(
                Contact(
                    email=f"person{n}@bench.example",
                    first_name=rng.choice(FIRST),
                    last_name=rng.choice(LAST),
                    company_id=rng.choice(company_ids) if rng.random() < 0.8 else None,
                    owner_id=rng.choice(reps).pk if rng.random() < 0.7 else None,
                    lifecycle_stage=rng.choices(stages, weights)[0],
                    lifecycle_stage_changed_at=changed,
                    properties={"plan": rng.choice(["free", "pro", "team"])},
                    created_at=changed,
                    updated_at=changed,
                )
            )
        with transaction.atomic():
            Contact.objects.bulk_create(rows)
    return admin, reps[0], time.perf_counter() - started


# -- timing -------------------------------------------------------------------------------------


def time_target(target: Target, runs: int) -> tuple[list[float], int]:
    rows = target.check(target.client.get(target.url))  # warm caches, check the answer
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = target.client.get(target.url)
        timings.append((time.perf_counter() - started) * 1000)
        target.check(response)
    return timings, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=9, help="timed runs per target (median)")
    parser.add_argument("--keep", action="store_true", help="keep the throwaway data folder")
    parser.add_argument(
        "--bigdata", action="store_true", help="time a copy of the shared big database"
    )
    parser.add_argument("--events", type=int, help="with --bigdata (default: 10 per contact)")
    args = parser.parse_args()
    if args.bigdata:
        run_bigdata(args)
        return

    data_dir = Path(tempfile.mkdtemp(prefix="embudo-bench-list-"))
    os.environ["EMBUDO_DATA_DIR"] = str(data_dir)
    os.environ.pop("EMBUDO_DATABASE_URL", None)  # the embedded default is what is measured
    os.environ["DJANGO_SETTINGS_MODULE"] = "embudo.settings"
    os.environ["EMBUDO_ALLOWED_HOSTS"] = "testserver"
    sys.path.insert(0, str(REPO))
    try:
        import django

        django.setup()
        from django.core.management import call_command
        from django.test import Client

        from embudo.accounts.actions import create_api_key

        call_command("migrate", verbosity=0)
        admin, rep, seconds = build(args.contacts)
        size_mb = sum(f.stat().st_size for f in data_dir.glob("embudo.sqlite3*")) / 1e6
        print(
            f"built {args.contacts:,} contacts in {seconds:.1f} s "
            f"({args.contacts / seconds:,.0f} rows/s); SQLite database {size_mb:.0f} MB"
        )
        secret = create_api_key("bench", ["read"], created_by=admin).secret
        key_client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        admin_client, rep_client = Client(), Client()
        admin_client.force_login(admin)
        rep_client.force_login(rep)
        ctx = Context(key_client, admin_client, rep_client, args.contacts)
        time_targets(ctx, args.runs)
    finally:
        if args.keep:
            print(f"data kept in {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def time_targets(ctx: Context, runs: int) -> None:
    print(f"\n{'target':<40} {'median ms':>10} {'min':>8} {'max':>8} {'rows':>6}")
    for target in targets(ctx):
        timings, rows = time_target(target, runs)
        print(
            f"{target.name:<40} {statistics.median(timings):>10.1f} "
            f"{min(timings):>8.1f} {max(timings):>8.1f} {rows:>6}"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak memory (RSS) {peak_mb:.0f} MB; {runs} timed runs per target")
    print(f"load average {os.getloadavg()[0]:.1f}")


def run_bigdata(args: argparse.Namespace) -> None:
    """The same targets on a copy of the shared big database (bench/bigdata.py)."""
    sys.path.insert(0, str(REPO / "bench"))
    from bigdata import prepare

    events = args.events or args.contacts * 10
    path = prepare("list_contacts", contacts=args.contacts, events=events)
    os.environ["EMBUDO_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    from embudo.accounts.actions import create_api_key
    from embudo.crm.models import Contact

    users = get_user_model().objects
    admin, rep = users.get(username="admin"), users.get(username="rep01")
    contacts = Contact.objects.count()
    email = Contact.objects.filter(pk=4242).values_list("email", flat=True).first() or "x@"
    print(f"database: {path} ({contacts:,} contacts, {events:,} events)")
    secret = create_api_key("bench", ["read"], created_by=admin).secret
    key_client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    admin_client, rep_client = Client(), Client()
    admin_client.force_login(admin)
    rep_client.force_login(rep)
    # The local part of a real address, as a user would type it.
    ctx = Context(key_client, admin_client, rep_client, contacts, email.split("@")[0])
    time_targets(ctx, args.runs)


if __name__ == "__main__":
    main()
