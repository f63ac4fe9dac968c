"""The shared big Embudo database for benchmarks: one deterministic SQLite file with a funnel-shaped
company (1,000,000 contacts and 10,000,000 events by default) that every bench copies and reads.

    python3 bench/bigdata.py build                                    # 1M contacts, 10M events
    python3 bench/bigdata.py build --contacts 100000 --events 1000000 # the quick preset
    python3 bench/bigdata.py build --path /tmp/x.sqlite3 --force      # rebuild elsewhere
    python3 bench/bigdata.py info [--path P]                          # what a file holds

The schema comes from Embudo's own migrations (``embudo migrate``); the small setup rows (users and
roles, teams, the default pipeline, lost reasons, product lines, exchange rates, property
definitions, goals) go through Embudo's actions; the millions of rows are generated with seeded
numpy and written with ``sqlite3`` ``executemany`` in big transactions, with the heavy indexes
dropped during the load and rebuilt after it, then ANALYZE. The file is built as ``P.partial`` and
renamed when complete (a ``bigdata_build`` table records how it was made), so a build that stops
half-way is never mistaken for a finished one. Same arguments and ``--as-of`` day → same rows.

A bench uses it through :func:`prepare`, which builds the base file once, gives the bench its own
copy (a bench may write), migrates the copy (apps add tables during the day) and points Embudo at
it; ``django.setup()`` afterwards uses the copy::

    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bigdata import prepare

    path = prepare("segments", contacts=100_000, events=1_000_000)  # or the 1M/10M default
    import django

    django.setup()
    from embudo.crm.models import Contact

    print(path, Contact.objects.filter(lifecycle_stage="mql").count())

Logins in the data: ``admin``, marketers ``marketing1..3``, reps ``rep01..rep20`` in the teams
Iberia, LATAM and English-speaking, manager ``manager``; every password is ``embudo-bench``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
BENCH_DATA = Path(os.environ.get("EMBUDO_BENCH_DATA") or "/work/bench-data")
SEED = 20_261_127
VERSION = 1  # bump when the generated data changes shape: older files are rebuilt
PASSWORD = "embudo-bench"
MARKER = "bigdata_build"
DAY = 86_400
HISTORY_DAYS = 730
CHUNK = 50_000  # contacts per generation chunk (about 500,000 events)
SITE = "https://www.embudo-bench.example"

# The tables filled in bulk; their non-unique indexes are dropped during the load.
BULK_TABLES = (
    "crm_company",
    "crm_contact",
    "crm_lifecycletransition",
    "tracking_event",
    "tracking_touchpoint",
    "tracking_visitor",
    "tracking_campaign",
    "deals_deal",
    "deals_deal_contacts",
    "deals_dealstagechange",
)

# The apps whose tables the data fills or stands on. The newer apps' tables are dropped from the
# base file and left to each bench's own `embudo migrate` on its copy, so a migration still being
# written in the shared checkout never sticks in the base.
CORE_APPS = (
    "admin",
    "auth",
    "contenttypes",
    "sessions",
    "django_tasks_database",
    "accounts",
    "crm",
    "tracking",
    "deals",
)

SUB, LEAD, MQL, SQL, OPP, CUST, EVAN, DISQ = range(8)
STAGES = (
    "subscriber",
    "lead",
    "mql",
    "sql",
    "opportunity",
    "customer",
    "evangelist",
    "disqualified",
)
# From each stage: (to, probability, median days, scaled by). The rest stay where they are.
# A few skip a stage (a sales-sourced lead goes straight to SQL, a hot subscriber to MQL).
MOVES: dict[int, list[tuple[int, float, float, str]]] = {
    SUB: [(LEAD, 0.60, 16, ""), (MQL, 0.03, 20, "quality"), (DISQ, 0.02, 30, "")],
    LEAD: [(MQL, 0.36, 9, "quality"), (SQL, 0.03, 6, "fit"), (DISQ, 0.06, 25, "")],
    MQL: [(SQL, 0.53, 2, ""), (LEAD, 0.16, 12, ""), (DISQ, 0.06, 6, ""), (OPP, 0.02, 9, "fit")],
    SQL: [(OPP, 0.44, 8, "fit"), (LEAD, 0.14, 20, ""), (DISQ, 0.08, 15, "")],
    OPP: [(CUST, 0.27, 30, "fit"), (LEAD, 0.30, 35, ""), (DISQ, 0.04, 30, "")],
    CUST: [(EVAN, 0.15, 75, "")],
}
CAUSES = ("import", "manual", "api", "rule", "workflow", "feedback", "merge")
C_IMPORT, C_MANUAL, C_API, C_RULE, _C_WORKFLOW, C_FEEDBACK, _C_MERGE = range(7)
LEAD_STATUSES = ("", "new", "attempting", "connected", "qualified", "unqualified", "recycled")

# (source, medium, channel, campaign bases, weight, quality, how it arrives, campaign period)
# arrives: "utm" tagged link, "ref" an external referrer, "direct" neither.
SOURCES: list[tuple[str, str, str, tuple[str, ...], int, float, str, str]] = [
    ("google", "cpc", "paid_search",
     ("brand-search", "generic-search-crm", "competitor-search"), 18, 1.0, "utm", "quarter"),
    ("google", "organic", "organic_search", (), 20, 1.05, "ref", ""),
    ("bing", "cpc", "paid_search", ("bing-generic-search",), 3, 0.95, "utm", "quarter"),
    ("linkedin", "paid_social", "paid_social",
     ("abm-enterprise", "lead-gen-ebook", "webinar-promo"), 12, 0.8, "utm", "month"),
    ("linkedin", "social", "organic_social", (), 6, 0.9, "ref", ""),
    ("newsletter", "email", "email", ("monthly-newsletter", "product-updates"), 10, 0.85, "utm",
     "quarter"),
    ("(direct)", "(none)", "direct", (), 10, 1.0, "direct", ""),
    ("partner", "referral", "referral", ("partner-program",), 6, 1.55, "utm", "quarter"),
    ("webinar", "event", "other",
     ("webinar-smarketing-101", "webinar-sla-playbook", "webinar-revops"), 8, 1.3, "utm", "month"),
    ("g2.com", "referral", "referral", (), 4, 1.35, "ref", ""),
    ("facebook", "paid_social", "paid_social", ("retargeting",), 4, 0.6, "utm", "quarter"),
    ("events", "offline", "other", ("saas-summit-madrid", "revops-day-mexico"), 2, 1.2, "utm",
     "quarter"),
    ("programmatic", "display", "display", ("brand-awareness",), 3, 0.5, "utm", "quarter"),
    ("capterra", "affiliate", "affiliate", (), 2, 1.1, "utm", ""),
]  # fmt: skip
REFERRERS = {
    "google": "https://www.google.com/",
    "linkedin": "https://www.linkedin.com/",
    "g2.com": "https://www.g2.com/products/embudo/reviews",
}

# (path, title, weight): the site's pages, /pricing and the blog the most read.
PAGES: list[tuple[str, str, int]] = [
    ("/", "Embudo: one funnel for marketing and sales", 14),
    ("/pricing", "Pricing", 12),
    ("/product/lead-scoring", "Lead scoring", 6),
    ("/product/handoff-sla", "Handoff and SLA", 5),
    ("/product/attribution", "Attribution", 4),
    ("/product/forecast", "Forecast and goals", 3),
    ("/customers", "Customers", 4),
    ("/demo", "Book a demo", 3),
    ("/integrations", "Integrations", 3),
    ("/about", "About us", 1),
    *[
        (f"/blog/{slug}", title, weight)
        for slug, title, weight in (
            ("smarketing-sla-playbook", "The smarketing SLA playbook", 6),
            ("mql-vs-sql", "MQL vs SQL: where to draw the line", 7),
            ("lead-scoring-101", "Lead scoring 101", 5),
            ("reverse-funnel-planning", "Reverse-funnel planning", 3),
            ("attribution-models-compared", "Attribution models compared", 4),
            ("b2b-buyer-journey", "The B2B buyer journey", 3),
            ("revops-metrics", "10 RevOps metrics", 4),
            ("lead-handoff-mistakes", "Five lead handoff mistakes", 2),
            ("email-nurture-that-works", "E-mail nurture that works", 2),
            ("pipeline-review-template", "A pipeline review template", 2),
            ("funnel-benchmarks-2026", "Funnel benchmarks 2026", 3),
            ("spanish-market-crm", "CRM en el mercado hispano", 2),
        )
    ],
]
CONTENT: list[tuple[str, str]] = [
    ("ebook-smarketing", "Ebook: Smarketing from zero"),
    ("ebook-sla", "Ebook: the marketing-sales SLA"),
    ("guide-lead-scoring", "Guide: lead scoring"),
    ("case-study-fintech", "Case study: a fintech doubles accepted MQLs"),
    ("case-study-logistics", "Case study: logistics pipeline visibility"),
    ("webinar-replay-revops", "Webinar replay: RevOps"),
    ("template-funnel-plan", "Template: funnel plan"),
    ("checklist-handoff", "Checklist: the handoff"),
]
FORMS = ("newsletter-signup", "ebook-download", "webinar-registration", "contact-sales")
EMAILS = (
    "monthly-newsletter",
    "product-updates",
    "webinar-invitation",
    "nurture-1-welcome",
    "nurture-2-case-study",
    "nurture-3-demo",
)
# Event types beyond the landings, sign-ups and meetings: (type, share, capture source).
EVENT_MIX: list[tuple[str, float, str]] = [
    ("page_view", 0.56, "snippet"),
    ("email_open", 0.18, "pixel"),
    ("email_click", 0.07, "pixel"),
    ("content_view", 0.14, "snippet"),
    ("form_submit", 0.05, "form"),
]
CRM_IN_USE = ("Salesforce", "HubSpot", "Pipedrive", "Zoho", "Spreadsheets", "Dynamics", "None")
TECH = ("AWS", "Azure", "GCP", "On-premise", "Mixed")
CURRENCY_OF_COUNTRY = {"United States": "USD", "United Kingdom": "GBP"}
RATES = {"EUR": 1.0, "USD": 0.92, "GBP": 1.17}
PRODUCTS = ("Embudo Cloud", "Embudo Enterprise", "Onboarding services")
DEAL_WORDS = ("Cloud rollout", "Pilot", "Annual plan", "Expansion", "Renewal")
REGIONS = ("iberia", "latam", "english")
TEAMS = {"iberia": "Iberia", "latam": "LATAM", "english": "English-speaking"}
REPS_PER_REGION = {"iberia": 7, "latam": 7, "english": 6}


# -- paths, copies and the environment ---------------------------------------------------------


def default_path(contacts: int, events: int) -> Path:
    return BENCH_DATA / f"embudo-{contacts}-{events}.sqlite3"


def is_complete(path: Path) -> bool:
    """The file exists and its build finished (the marker is written last, at this VERSION)."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            row = db.execute(f"SELECT value FROM {MARKER} WHERE key = 'version'").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == str(VERSION)


def use_database(path: Path) -> None:
    """Point Embudo (this process and the commands it starts) at the SQLite file ``path``."""
    os.environ["EMBUDO_DATABASE_URL"] = f"sqlite:///{path}"
    os.environ.setdefault("EMBUDO_DATA_DIR", str(BENCH_DATA))  # where the secret key is kept
    os.environ["DJANGO_SETTINGS_MODULE"] = "embudo.settings"
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


def migrate(path: Path) -> None:
    env = dict(os.environ, EMBUDO_DATABASE_URL=f"sqlite:///{path}")
    env.setdefault("EMBUDO_DATA_DIR", str(BENCH_DATA))
    subprocess.run(
        [sys.executable, "-m", "embudo", "migrate", "--verbosity", "0", "--skip-checks"],
        env=env,
        cwd=REPO,
        check=True,
    )


def ensure_base(contacts: int = 1_000_000, events: int = 10_000_000) -> Path:
    """The base file of that size, built first (in another process) if missing; read only."""
    base = default_path(contacts, events)
    if not is_complete(base):
        command = [sys.executable, __file__, "build", "--contacts", str(contacts)]
        subprocess.run([*command, "--events", str(events)], check=True)
    return base


def prepare(
    name: str,
    contacts: int = 1_000_000,
    events: int = 10_000_000,
    *,
    fresh: bool = False,
) -> Path:
    """The bench ``name``'s own migrated copy of the big database, with Embudo pointed at it.

    Builds the base file first if it is missing (minutes at the default size). The copy is made
    again when missing, made from another base (or an older build of it), or with
    ``fresh=True``; call before ``django.setup()``.
    """
    base = ensure_base(contacts, events)
    copy = BENCH_DATA / f"{name}.sqlite3"
    # The copy remembers which base (and which build of it) it came from.
    source = Path(f"{copy}.source")
    origin = f"{base} {base.stat().st_mtime_ns}"
    stale = not copy.exists() or not source.exists() or source.read_text() != origin
    if fresh or stale:
        for old in (copy, Path(f"{copy}-wal"), Path(f"{copy}-shm")):
            old.unlink(missing_ok=True)
        partial = Path(f"{copy}.copying")
        shutil.copyfile(base, partial)
        partial.rename(copy)
        source.write_text(origin)
    migrate(copy)
    use_database(copy)
    return copy


def strip_new_apps(db: sqlite3.Connection) -> list[str]:
    """Drop the tables, triggers and migration records of the apps outside CORE_APPS (an app's
    triggers may sit on a core table and write to its own; its migrate puts them back)."""
    applied = [row[0] for row in db.execute("SELECT DISTINCT app FROM django_migrations")]
    stripped = [app for app in applied if app not in CORE_APPS]
    for app in stripped:
        pattern = app.replace("_", "\\_") + "\\_%"
        for kind in ("trigger", "table"):
            names = db.execute(
                "SELECT name FROM sqlite_master WHERE type = ? AND name LIKE ? ESCAPE '\\'",
                (kind, pattern),
            ).fetchall()
            for (name,) in names:
                db.execute(f'DROP {kind.upper()} "{name}"')
        db.execute("DELETE FROM django_migrations WHERE app = ?", (app,))
    return stripped


# -- formatting helpers -----------------------------------------------------------------------


def stamps(seconds: np.ndarray) -> list[str]:
    """Epoch seconds as Django stores an aware datetime on SQLite: 'YYYY-MM-DD HH:MM:SS' (UTC)."""
    text = np.asarray(seconds, dtype="int64").astype("datetime64[s]").astype("U19")
    text.view(np.uint32).reshape(-1, 19)[:, 10] = ord(" ")
    return text.tolist()


def dates(seconds: np.ndarray) -> list[str]:
    return (
        np.asarray(seconds, dtype="int64")
        .astype("datetime64[s]")
        .astype("datetime64[D]")
        .astype("U10")
        .tolist()
    )


def uuids(rng: np.random.Generator, n: int) -> list[str]:
    """Random version-4 UUIDs as Django stores them on SQLite (32 hex digits, no dashes)."""
    raw = np.frombuffer(rng.bytes(16 * n), dtype=np.uint8).reshape(n, 16).copy()
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    text = raw.tobytes().hex()
    return [text[i : i + 32] for i in range(0, 32 * n, 32)]


def office_hours(rng: np.random.Generator, seconds: np.ndarray) -> np.ndarray:
    """The same day, at a random second between 08:00 and 19:00 UTC."""
    day = seconds // DAY * DAY
    return day + rng.integers(8 * 3600, 19 * 3600, size=len(seconds))


def slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def rank_within(keys: np.ndarray) -> np.ndarray:
    """For each element, how many equal keys came before it (0 for the first)."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.r_[0, np.flatnonzero(sorted_keys[1:] != sorted_keys[:-1]) + 1]
    group_start = np.repeat(starts, np.diff(np.r_[starts, len(keys)]))
    ranks = np.empty(len(keys), dtype=np.int64)
    ranks[order] = np.arange(len(keys)) - group_start
    return ranks


def pick(rng: np.random.Generator, weights: Sequence[float], size: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    return rng.choice(len(p), size=size, p=p / p.sum())


def take(values: Sequence[Any], index: np.ndarray) -> list[Any]:
    return np.asarray(values, dtype=object)[index].tolist()


# -- the build --------------------------------------------------------------------------------


@dataclass
class Setup:
    """Ids of the rows Embudo's actions made before the bulk load."""

    admin: int
    marketers: list[int]
    manager: int
    reps: dict[str, list[int]]  # region → user ids
    pipeline: int
    stages: list[int]  # open stages in order, then won, then lost
    forecast: list[str]  # each stage's forecast category
    lost_reasons: list[int]
    products: list[int]


@dataclass
class Built:
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Generator:
    """Makes the rows in numpy, table by table, and writes them through ``db``."""

    def __init__(self, db: sqlite3.Connection, setup: Setup, contacts: int, events: int, now: int):
        self.db, self.setup, self.n, self.e, self.now = db, setup, contacts, events, now
        self.built = Built()
        self.started = time.perf_counter()

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([SEED, stream, self.n, self.e])

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        sql = (
            f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'
        )
        before = self.db.total_changes
        self.db.executemany(sql, rows)
        added = self.db.total_changes - before
        self.built.counts[table] = self.built.counts.get(table, 0) + added
        return added

    def lap(self, name: str, since: float) -> float:
        now = time.perf_counter()
        self.built.seconds[name] = self.built.seconds.get(name, 0.0) + now - since
        print(f"  {name}: {now - since:.1f} s (total {now - self.started:.0f} s)", flush=True)
        return now

    # -- companies and contacts

    def companies(self) -> None:
        from embudo.demo import vocabulary as words

        t = time.perf_counter()
        rng = self.rng(1)
        m = self.m = max(10, self.n // 10)
        countries = words.COUNTRIES
        country = pick(rng, [c[1] for c in countries], m)
        lang = np.array([0 if c[2] == "es" else 1 for c in countries])[country]
        industry = pick(rng, [i[1] for i in words.INDUSTRIES], m)
        bands = np.array([(5, 20), (21, 50), (51, 200), (201, 1000), (1001, 5000)])
        band = pick(rng, [25, 22, 25, 18, 10], m)
        low, high = np.log(bands[band, 0]), np.log(bands[band, 1])
        employees = np.round(np.exp(low + (high - low) * rng.random(m))).astype(np.int64)
        root_u, sector_u, city_u, flip = rng.random(m), rng.random(m), rng.random(m), rng.random(m)
        region_of = [words.REGION_OF_COUNTRY[c[0]] for c in countries]
        names, bases, cities = [], [], []
        for i in range(m):
            spec = countries[country[i]]
            language = spec[2]
            roots = words.NAME_ROOTS[language]
            sectors = words.SECTOR_WORDS[language][words.INDUSTRIES[industry[i]][0]]
            root = roots[int(root_u[i] * len(roots))]
            sector = sectors[int(sector_u[i] * len(sectors))]
            base = f"{sector} {root}" if language == "es" and flip[i] < 0.5 else f"{root} {sector}"
            bases.append(base)
            cities.append(spec[4][int(city_u[i] * len(spec[4]))])
        rank = rank_within(np.unique(np.array(bases), return_inverse=True)[1])
        domains = []
        for i, base in enumerate(bases):
            suffix = rank[i] + 1
            names.append(base if suffix == 1 else f"{base} {suffix}")
            domains.append(
                slug(base) + (str(suffix) if suffix > 1 else "") + countries[country[i]][3]
            )
        # Territory ownership: each region's accounts dealt round-robin to its reps.
        region = np.array([REGIONS.index(region_of[c]) for c in country])
        owner = np.zeros(m, dtype=np.int64)
        for r, name in enumerate(REGIONS):
            mask = region == r
            reps = np.array(self.setup.reps[name])
            owner[mask] = reps[np.arange(mask.sum()) % len(reps)]
        fit_industry = np.array([i[2] for i in words.INDUSTRIES])[industry]
        size_fit = np.select(
            [employees < 20, employees <= 50, employees <= 1000], [0.7, 0.9, 1.25], 1.0
        )
        tier = np.where(employees > 1000, "A", np.where(employees > 200, "B", "C"))
        founded = rng.integers(1950, 2025, size=m)
        tech = rng.integers(0, len(TECH), size=m)
        properties = [
            json.dumps({"tier": str(tier[i]), "founded_year": int(founded[i]),
                        "tech_stack": TECH[tech[i]]})
            for i in range(m)
        ]  # fmt: skip
        self.company = {
            "country": country,
            "lang": lang,
            "region": region,
            "employees": employees,
            "owner": owner,
            "fit": fit_industry * size_fit,
            "names": names,
            "domains": domains,
        }
        self.company_rows = (
            names,
            domains,
            industry,
            employees,
            country,
            cities,
            owner,
            properties,
        )
        self.lap("companies (generate)", t)

    def write_companies(self, created: np.ndarray) -> None:
        from embudo.demo import vocabulary as words

        t = time.perf_counter()
        names, domains, industry, employees, country, cities, owner, properties = self.company_rows
        created_s = stamps(created)
        industries = take([i[0] for i in words.INDUSTRIES], industry)
        country_names = take([c[0] for c in words.COUNTRIES], country)
        rows = zip(
            range(1, self.m + 1),
            names,
            domains,
            industries,
            employees.tolist(),
            country_names,
            cities,
            owner.tolist(),
            properties,
            created_s,
            created_s,
            strict=True,
        )
        self.insert(
            "crm_company",
            ("id", "name", "domain", "industry", "employees", "country", "city", "owner_id",
             "properties", "created_at", "updated_at"),
            rows,
        )  # fmt: skip
        self.lap("companies (write)", t)

    def contacts(self) -> None:
        """People, their company, origin and a lifecycle history shaped like a real funnel."""
        from embudo.demo import vocabulary as words

        t = time.perf_counter()
        rng, n, now = self.rng(2), self.n, self.now
        # Each company gets a contact, bigger ones more; 3 % use free mail and no company.
        weights = self.company["employees"].astype(float) ** 0.45
        company = rng.choice(self.m, size=n, p=weights / weights.sum())
        company[: min(self.m, n)] = np.arange(min(self.m, n))
        company = rng.permutation(company)
        company[rng.random(n) < 0.03] = -1
        has_company = company >= 0
        country = np.where(
            has_company,
            self.company["country"][company],
            pick(rng, [c[1] for c in words.COUNTRIES], n),
        )
        lang = np.array([0 if c[2] == "es" else 1 for c in words.COUNTRIES])[country]
        region = np.array([REGIONS.index(words.REGION_OF_COUNTRY[c[0]]) for c in words.COUNTRIES])[
            country
        ]
        # Names: one list of both languages, picked within the contact's language.
        firsts = words.FIRST_NAMES["es"] + words.FIRST_NAMES["en"]
        lasts = words.LAST_NAMES["es"] + words.LAST_NAMES["en"]
        nfe, nle = len(words.FIRST_NAMES["es"]), len(words.LAST_NAMES["es"])
        nfn, nln = len(words.FIRST_NAMES["en"]), len(words.LAST_NAMES["en"])
        first = np.where(lang == 0, (rng.random(n) * nfe), nfe + rng.random(n) * nfn).astype(int)
        last = np.where(lang == 0, (rng.random(n) * nle), nle + rng.random(n) * nln).astype(int)
        second = np.where(
            (lang == 0) & (rng.random(n) < 0.5), (rng.random(n) * nle).astype(int), -1
        )
        free = rng.integers(0, len(words.FREE_MAIL), size=n)
        # Emails first.last@company-domain; the second of a name gets a number (lower case).
        # Keyed on the address's parts as written (two names may share a slug, two companies a
        # domain), so the numbering makes every address unique.
        first_slugs = [slug(x) for x in firsts]
        last_slugs = [slug(x.split(" ")[0]) for x in lasts]
        domains = self.company["domains"]
        first_key = np.unique(first_slugs, return_inverse=True)[1][first]
        last_key = np.unique(last_slugs, return_inverse=True)[1][last]
        domain_id = np.unique(domains, return_inverse=True)[1]
        domain_key = np.where(has_company, domain_id[np.maximum(company, 0)], -1 - free)
        key = (first_key.astype(np.int64) * 1000 + last_key) * 10_000_000 + domain_key + 1000
        rank = rank_within(key)
        emails = [
            f"{first_slugs[f]}.{last_slugs[la]}{'' if r == 0 else r + 1}@"
            f"{domains[c] if c >= 0 else words.FREE_MAIL[fm]}"
            for f, la, r, c, fm in zip(
                first.tolist(), last.tolist(), rank.tolist(), company.tolist(), free.tolist(),
                strict=True,
            )
        ]  # fmt: skip
        last_names = [
            lasts[la] if s < 0 else f"{lasts[la]} {lasts[s]}"
            for la, s in zip(last.tolist(), second.tolist(), strict=True)
        ]
        titles = np.empty(n, dtype=np.int64)
        title_names: list[str] = []
        for code, language in enumerate(("es", "en")):
            options = words.JOB_TITLES[language]
            mask = lang == code
            titles[mask] = len(title_names) + pick(rng, [w for _, w in options], int(mask.sum()))
            title_names += [name for name, _ in options]
        prefixes = np.array([c[5] for c in words.COUNTRIES], dtype=object)[country]
        digits = rng.integers(100, 1000, size=(n, 3))
        digits[:, 0] = rng.integers(600, 1000, size=n)
        phones = [
            f"{p} {a} {b} {c}" for p, (a, b, c) in zip(prefixes, digits.tolist(), strict=True)
        ]
        source = pick(rng, [s[4] for s in SOURCES], n)
        quality = np.array([s[5] for s in SOURCES])[source] * rng.lognormal(0, 0.15, n)
        fit = np.where(has_company, self.company["fit"][np.maximum(company, 0)], 0.6)
        # Inbound grows over the two years: part uniform, part leaning to recent months.
        u = rng.random(n)
        days_ago = HISTORY_DAYS * np.where(rng.random(n) < 0.6, u, 1 - np.sqrt(u))
        created = office_hours(rng, now - (np.floor(days_ago).astype(np.int64) + 1) * DAY)
        owner = np.where(has_company, self.company["owner"][np.maximum(company, 0)], 0).astype(
            np.int64
        )
        for r, name in enumerate(REGIONS):
            mask = (~has_company) & (region == r)
            owner[mask] = rng.choice(self.setup.reps[name], size=int(mask.sum()))
        self.people = {
            "company": company,
            "region": region,
            "source": source,
            "quality": quality,
            "fit": fit,
            "created": created,
            "owner": owner,
            "lang": lang,
        }
        self.person_rows = (emails, firsts, first, last_names, phones, title_names, titles)
        t = self.lap("contacts (people)", t)
        self.lifecycle(rng)
        self.lap("contacts (lifecycle)", t)

    def lifecycle(self, rng: np.random.Generator) -> None:
        """Walk every contact through the funnel at once, a move per round."""
        n, now = self.n, self.now
        p = self.people
        created = p["created"]
        entry = np.where(rng.random(n) < 0.5, SUB, LEAD)
        stage = entry.copy()
        at = created.copy()
        prev = np.full(n, -1)
        owned = np.zeros(n, dtype=bool)
        recycled = np.zeros(n, dtype=np.int64)
        moves = np.zeros(n, dtype=np.int64)
        active = np.ones(n, dtype=bool)
        marketer = rng.choice(self.setup.marketers, size=n)
        rows: list[dict[str, np.ndarray]] = [
            {
                "contact": np.arange(n),
                "step": np.zeros(n, dtype=np.int64),
                "from": np.full(n, -1),
                "to": entry,
                "at": created,
                "cause": np.where(rng.random(n) < 0.75, C_API, C_IMPORT),
                "actor": np.zeros(n, dtype=np.int64),
                "note": np.full(n, -1),
            }
        ]
        for step in range(1, 16):
            idx = np.flatnonzero(active)
            if not idx.size:
                break
            st, u = stage[idx], rng.random(idx.size)
            chosen = np.full(idx.size, -1)
            median = np.zeros(idx.size)
            cum = np.zeros(idx.size)
            for source, options in MOVES.items():
                here = st == source
                for target, probability, days, scaled in options:
                    prob = np.full(idx.size, probability)
                    if scaled == "quality":
                        prob = prob * p["quality"][idx]
                    elif scaled == "fit":
                        prob = prob * p["fit"][idx]
                    if source == LEAD and target == MQL:
                        prob = np.where(recycled[idx] > 0, 0.22, prob)  # recycled come back less
                    if source == MQL and target == LEAD:
                        prob = np.where(recycled[idx] > 0, 0.0, prob)  # recycled once at most
                    prob = np.minimum(prob, 0.9)
                    hit = here & (chosen < 0) & (u < cum + prob)
                    chosen[hit], median[hit] = target, days
                    cum = np.where(here, cum + prob, cum)
            when = at[idx] + (median * rng.lognormal(0, 0.7, idx.size) * DAY).astype(np.int64)
            when = np.where(when < now, office_hours(rng, when), when)
            # Office hours may pull it before the previous move: keep the order.
            when = np.where(when <= at[idx], at[idx] + rng.integers(5, 91, idx.size) * 60, when)
            happened = (chosen >= 0) & (when < now)
            active[idx[~happened]] = False
            idx, to, when = idx[happened], chosen[happened], when[happened]
            source_stage = stage[idx]
            owned[idx] |= np.isin(to, (MQL, SQL, OPP))
            is_owned = owned[idx]
            owner = np.where(is_owned, p["owner"][idx], 0)
            cause = np.select(
                [to == LEAD, np.isin(to, (MQL,)), to == SQL, to == DISQ],
                [np.where(source_stage == SUB, C_RULE, C_FEEDBACK), C_RULE, C_FEEDBACK, C_MANUAL],
                C_MANUAL,
            )
            actor = np.select(
                [
                    (to == LEAD) & (source_stage == SUB),
                    to == MQL,
                    to == EVAN,
                    (to == DISQ) & ~is_owned,
                ],
                [0, 0, marketer[idx], marketer[idx]],
                owner,
            )
            # Notes: why a contact was recycled (0-8 by stage) or disqualified (10-13).
            note_draw = rng.integers(0, 3, idx.size)
            note = np.select(
                [(to == LEAD) & (source_stage >= MQL), to == DISQ],
                [
                    np.clip(source_stage - MQL, 0, 2) * 3 + note_draw,
                    10 + rng.integers(0, 4, idx.size),
                ],
                -1,
            )
            rows.append(
                {
                    "contact": idx,
                    "step": np.full(idx.size, step),
                    "from": source_stage,
                    "to": to,
                    "at": when,
                    "cause": cause,
                    "actor": actor,
                    "note": note,
                }
            )
            recycled[idx] += (to == LEAD).astype(np.int64)
            prev[idx] = source_stage
            stage[idx], at[idx] = to, when
            moves[idx] += 1
            active[idx] = ~np.isin(to, (EVAN, DISQ))
        tr = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
        order = np.lexsort((tr["step"], tr["contact"]))
        self.transitions = {k: v[order] for k, v in tr.items()}
        p["stage"], p["changed"], p["prev"], p["moves"], p["owned"] = stage, at, prev, moves, owned
        # Lead status as sales would have left it.
        fresh = now - at < 2 * DAY
        p["lead_status"] = np.select(
            [
                stage == MQL,
                stage == SQL,
                np.isin(stage, (OPP, CUST, EVAN)),
                (stage == LEAD) & (moves > 0) & (prev != SUB),
                (stage == DISQ) & owned,
            ],
            [
                np.where(fresh, 1, rng.integers(2, 4, n)),
                rng.integers(3, 5, n),
                4,
                6,
                5,
            ],
            0,
        )

    def write_contacts(self) -> None:
        from embudo.demo import vocabulary as words

        t = time.perf_counter()
        rng, n, p = self.rng(3), self.n, self.people
        emails, firsts, first, last_names, phones, title_names, titles = self.person_rows
        stage, owned, company = p["stage"], p["owned"], p["company"]
        # The origin is the first touchpoint's (written by touchpoints() from the same arrays).
        source = p["source"]
        campaign = self.first_campaign_names
        reached = np.zeros((n, 8), dtype=bool)
        reached[self.transitions["contact"], self.transitions["to"]] = True
        size = np.where(company >= 0, self.company["employees"][np.maximum(company, 0)], 10)
        plan = np.where(size < 50, 0, np.where(size <= 500, 1, 2))
        plan = np.where(rng.random(n) < 0.2, rng.integers(0, 3, n), plan)
        has_plan = reached[:, LEAD:].any(axis=1) & (rng.random(n) < 0.8)
        newsletter = rng.random(n) < np.where(stage == SUB, 0.85, 0.45)
        has_newsletter = rng.random(n) < 0.9
        seats = np.clip((size * rng.uniform(0.03, 0.15, n)).astype(int), 3, 400)
        has_seats = np.asarray(reached[:, SQL : CUST + 1].any(axis=1))
        crm = rng.integers(0, len(CRM_IN_USE), n)
        has_crm = rng.random(n) < 0.35
        webinar = np.minimum(p["created"] + rng.integers(0, 200, n) * DAY, self.now - DAY)
        has_webinar = (source == 8) | (rng.random(n) < 0.1)
        webinar_day = dates(webinar)
        plans = ("starter", "growth", "enterprise")
        properties = []
        for i in range(n):
            props: dict[str, Any] = {}
            if has_newsletter[i]:
                props["newsletter"] = bool(newsletter[i])
            if has_plan[i]:
                props["plan_interest"] = plans[plan[i]]
            if has_seats[i]:
                props["seats"] = int(seats[i])
            if has_crm[i]:
                props["crm_in_use"] = CRM_IN_USE[crm[i]]
            if has_webinar[i]:
                props["last_webinar"] = webinar_day[i]
            properties.append(json.dumps(props))
        created_s = stamps(p["created"])
        changed_s = stamps(p["changed"])
        owner = np.where(owned, p["owner"], 0)
        rows = zip(
            range(1, n + 1),
            emails,
            take(firsts, first),
            last_names,
            phones,
            take(title_names, titles),
            [None if c < 0 else c + 1 for c in company.tolist()],
            [o or None for o in owner.tolist()],
            take(STAGES, stage),
            changed_s,
            take(LEAD_STATUSES, p["lead_status"]),
            take([s[0] for s in SOURCES], source),
            take([s[1] for s in SOURCES], source),
            campaign,
            properties,
            created_s,
            changed_s,
            strict=True,
        )
        self.insert(
            "crm_contact",
            ("id", "email", "first_name", "last_name", "phone", "job_title", "company_id",
             "owner_id", "lifecycle_stage", "lifecycle_stage_changed_at", "lead_status",
             "original_source", "original_medium", "original_campaign", "properties",
             "created_at", "updated_at"),
            rows,
        )  # fmt: skip
        # A company entered the CRM with its first contact.
        first_seen = np.full(self.m, self.now, dtype=np.int64)
        np.minimum.at(first_seen, company[company >= 0], p["created"][company >= 0])
        lonely = first_seen == self.now
        first_seen[lonely] = office_hours(
            rng, self.now - rng.integers(1, HISTORY_DAYS, int(lonely.sum())) * DAY
        )
        del self.person_rows
        t = self.lap("contacts (write)", t)
        self.write_companies(first_seen)
        self.write_transitions(words)

    def write_transitions(self, words: Any) -> None:
        t = time.perf_counter()
        tr = self.transitions
        notes = [
            *words.RECYCLE_NOTES["mql"],
            *words.RECYCLE_NOTES["sql"],
            *words.RECYCLE_NOTES["opportunity"],
            "",
            *words.DISQUALIFY_NOTES,
        ]
        note_index = np.where(tr["note"] < 0, 9, tr["note"])
        rows = zip(
            (tr["contact"] + 1).tolist(),
            take(("", *STAGES), tr["from"] + 1),
            take(STAGES, tr["to"]),
            stamps(tr["at"]),
            take(CAUSES, tr["cause"]),
            [a or None for a in tr["actor"].tolist()],
            take(notes, note_index),
            strict=True,
        )
        self.insert(
            "crm_lifecycletransition",
            ("contact_id", "from_stage", "to_stage", "changed_at", "cause", "actor_id", "note"),
            rows,
        )
        self.lap("lifecycle transitions (write)", t)

    # -- campaigns, touchpoints, events, visitors

    def campaigns(self) -> None:
        """Each campaign base runs per month or per quarter over the history: ~250 campaigns."""
        t = time.perf_counter()
        months = np.arange(
            _month(self.now - (HISTORY_DAYS + 62) * DAY), _month(self.now) + 1, dtype=np.int64
        )
        self.month0 = int(months[0])
        # Every (base, month) maps to its campaign: the month's, or the quarter's it falls in.
        found: dict[str, tuple[str, str, int]] = {}  # name → (source, medium, created)
        per_month: list[str] = []
        self.campaign_base: dict[tuple[int, int], int] = {}  # (source, base) → offset
        for s, (source, medium, _ch, bases, *_rest, period) in enumerate(SOURCES):
            for b, base in enumerate(bases):
                self.campaign_base[(s, b)] = len(per_month)
                for month in months.tolist():
                    year, mon = divmod(month, 12)
                    if period == "month":
                        label, began = f"{1970 + year}-{mon + 1:02d}", month
                    else:
                        label, began = f"{1970 + year}q{mon // 3 + 1}", month - mon % 3
                    name = f"{base}-{label}"
                    per_month.append(name)
                    found.setdefault(name, (source, medium, _month_start(began)))
        unique = list(found)
        number = {name: i + 1 for i, name in enumerate(unique)}
        self.campaign_id = np.array([number[x] for x in per_month], dtype=np.int64)
        self.campaign_names = unique
        self.insert(
            "tracking_campaign",
            ("id", "name", "first_source", "first_medium", "created_at"),
            zip(range(1, len(unique) + 1), unique, [found[x][0] for x in unique],
                [found[x][1] for x in unique], stamps(np.array([found[x][2] for x in unique])),
                strict=True),
        )  # fmt: skip
        self.lap("campaigns", t)

    def campaign_of(
        self, rng: np.random.Generator, source: np.ndarray, when: np.ndarray
    ) -> np.ndarray:
        """A campaign id (0 for none) for touches from ``source`` at ``when``."""
        result = np.zeros(len(source), dtype=np.int64)
        month = np.clip(_months(when) - self.month0, 0, None)
        for s, spec in enumerate(SOURCES):
            bases = spec[3]
            mask = source == s
            if not bases or not mask.any():
                continue
            base = rng.integers(0, len(bases), int(mask.sum()))
            offset = np.array([self.campaign_base[(s, b)] for b in range(len(bases))])[base]
            result[mask] = self.campaign_id[offset + month[mask]]
        return result

    def journeys(self) -> None:
        """How many touchpoints and events each contact gets; the first touch is the origin."""
        rng, n, p = self.rng(4), self.n, self.people
        stage = p["stage"]
        tr = self.transitions
        reached = np.zeros((n, 8), dtype=bool)
        reached[tr["contact"], tr["to"]] = True
        top = np.max(np.where(reached[:, :EVAN], np.arange(EVAN), 0), axis=1)
        # Several touches before conversion (becoming a customer), or up to a month after the
        # last move for those who did not.
        customer_at = np.full(n, self.now, dtype=np.int64)
        is_cust = tr["to"] == CUST
        np.minimum.at(customer_at, tr["contact"][is_cust], tr["at"][is_cust])
        journey_end = np.where(
            reached[:, CUST], customer_at, np.minimum(self.now - 60, p["changed"] + 30 * DAY)
        )
        first_visit = p["created"] - np.exp(rng.uniform(np.log(600), np.log(30 * DAY), n)).astype(
            np.int64
        )
        touches = 1 + np.minimum(rng.poisson(0.9 + 0.45 * top), 9)
        # Activity after sign-up: very skewed (a few contacts are very busy), busier further down.
        busy = rng.lognormal(0, 1.1, n) * (1 + 0.5 * top)
        busy = np.where(stage == DISQ, busy * 0.3, busy)
        activity_end = np.where(
            stage == DISQ, np.minimum(self.now - 60, p["changed"] + 60 * DAY), self.now - 60
        )
        sql_moves = int((tr["to"] == SQL).sum())
        anonymous_events = int(self.e * 0.08)
        fixed = int(touches.sum()) + n + sql_moves + anonymous_events
        rest = max(0, self.e - fixed)
        if self.e < fixed:  # a small --events: fewer anonymous visitors, then fewer touches
            anonymous_events = max(0, self.e - (fixed - anonymous_events))
        self.anonymous_events = anonymous_events
        counts = rng.multinomial(rest, busy / busy.sum())
        p.update(
            first_visit=first_visit,
            touches=touches,
            journey_end=journey_end,
            activity_end=activity_end,
            event_counts=counts,
        )
        # The first touch of each contact: its source is the contact's original source.
        first_campaign = self.campaign_of(rng, p["source"], first_visit)
        p["first_campaign"] = first_campaign
        names = ["", *self.campaign_names]
        self.first_campaign_names = take(names, first_campaign)

    def events(self) -> None:
        """Touchpoints with their landing page views, sign-ups, meetings and the rest of each
        contact's behaviour, written a chunk of contacts at a time; then anonymous visitors."""
        t = time.perf_counter()
        p = self.people
        sql_mask = self.transitions["to"] == SQL
        sql_contact, sql_at = (
            self.transitions["contact"][sql_mask],
            self.transitions["at"][sql_mask],
        )
        last_seen = p["created"].copy()
        for start in range(0, self.n, CHUNK):
            stop = min(start + CHUNK, self.n)
            rng = self.rng(100 + start // CHUNK)
            ids = np.arange(start, stop)
            cols: list[dict[str, Any]] = []
            # 1. Touchpoints and their landing page views.
            k = p["touches"][ids]
            owner = np.repeat(ids, k)
            first = np.r_[0, np.cumsum(k)[:-1]]
            is_first = np.zeros(len(owner), dtype=bool)
            is_first[first] = True
            fv, end = p["first_visit"][owner], p["journey_end"][owner]
            when = np.where(
                is_first, fv, fv + ((end - fv) * rng.random(len(owner))).astype(np.int64)
            )
            source = np.where(
                is_first, p["source"][owner], pick(rng, [s[4] for s in SOURCES], len(owner))
            )
            campaign = self.campaign_of(rng, source, when)
            campaign[is_first] = p["first_campaign"][ids]
            landing = self.landing(rng, source, campaign, when, owner)
            cols.append(landing)
            # 2. The sign-up form that made them a contact.
            n = len(ids)
            form = rng.integers(0, len(FORMS), n)
            cols.append(
                self.event_columns(
                    rng, "form_submit", ids, p["created"][ids], "form",
                    url=take([f"{SITE}/{f}" for f in FORMS], form),
                    properties=take([json.dumps({"form": f, "consent": True}) for f in FORMS],
                                    form),
                )
            )  # fmt: skip
            # 3. A meeting booked with each acceptance as SQL.
            lo, hi = np.searchsorted(sql_contact, [start, stop])
            cols.append(
                self.event_columns(
                    rng, "meeting_booked", sql_contact[lo:hi], sql_at[lo:hi], "api",
                    properties=['{"meeting": "discovery"}'] * (hi - lo),
                )
            )  # fmt: skip
            # 4. The rest: page views, e-mail opens and clicks, content, other forms.
            counts = p["event_counts"][ids]
            who = np.repeat(ids, counts)
            begin, finish = p["created"][who], p["activity_end"][who]
            # Skewed to recent: later in each contact's life more often.
            moment = begin + ((finish - begin) * rng.random(len(who)) ** 0.6).astype(np.int64)
            cols.append(self.behaviour(rng, who, moment))
            np.maximum.at(last_seen, who, moment)
            self.write_events(rng, cols)
            self.write_touchpoints(landing, source, campaign)
            del cols, landing
            print(f"    events for contacts {stop:,}/{self.n:,}", flush=True)
        p["last_seen"] = last_seen
        t = self.lap("events and touchpoints (contacts)", t)
        self.anonymous()
        t = self.lap("events and touchpoints (anonymous)", t)
        self.visitors()
        self.lap("visitors", t)

    def landing(
        self,
        rng: np.random.Generator,
        source: np.ndarray,
        campaign: np.ndarray,
        when: np.ndarray,
        owner: np.ndarray | None,
        visitor: list[str] | None = None,
    ) -> dict[str, Any]:
        pages = PAGES[:10] + PAGES[10:16]  # landings: home, product pages, pricing, top posts
        page = pick(rng, [w for *_x, w in pages], len(source))
        urls = np.array([SITE + path for path, *_ in pages], dtype=object)[page]
        titles = take([json.dumps({"title": title}) for _p, title, _w in pages], page)
        spec = SOURCES
        arrives = np.array([s[6] for s in spec])[source]
        src = np.array([s[0] for s in spec], dtype=object)[source]
        med = np.array([s[1] for s in spec], dtype=object)[source]
        names = np.array(["", *self.campaign_names], dtype=object)[campaign]
        utm = arrives == "utm"
        query = np.where(
            campaign > 0,
            "?utm_source=" + src + "&utm_medium=" + med + "&utm_campaign=" + names,
            "?utm_source=" + src + "&utm_medium=" + med,
        )
        url = np.where(utm, urls + query, urls)
        referrer = np.array(
            [REFERRERS.get(s[0], "") if s[6] == "ref" else "" for s in spec], dtype=object
        )[source]
        columns = self.event_columns(
            rng, "page_view", owner, when, "snippet",
            url=url.tolist(), properties=titles, referrer=referrer.tolist(),
            utm_source=np.where(utm, src, "").tolist(), utm_medium=np.where(utm, med, "").tolist(),
            utm_campaign=np.where(utm, names, "").tolist(), visitor=visitor,
        )  # fmt: skip
        return columns

    def event_columns(
        self,
        rng: np.random.Generator,
        type_: str | list[str],
        contact: np.ndarray | None,
        when: np.ndarray,
        source: str | list[str],
        *,
        url: list[str] | None = None,
        properties: list[str] | None = None,
        referrer: list[str] | None = None,
        utm_source: list[str] | None = None,
        utm_medium: list[str] | None = None,
        utm_campaign: list[str] | None = None,
        visitor: list[str] | None = None,
    ) -> dict[str, Any]:
        n = len(when)
        blank = [""] * n
        if contact is not None:
            contact_ids: list[int | None] = (contact + 1).tolist()
            visitor = visitor or [f"v{c}" for c in contact_ids]
        else:
            contact_ids = [None] * n
        occurred = stamps(when)
        return {
            "id": uuids(rng, n),
            "type": type_ if isinstance(type_, list) else [type_] * n,
            "contact_id": contact_ids,
            "visitor_id": visitor or blank,
            "properties": properties or ["{}"] * n,
            "url": url or blank,
            "referrer": referrer or blank,
            "utm_source": utm_source or blank,
            "utm_medium": utm_medium or blank,
            "utm_campaign": utm_campaign or blank,
            "utm_term": blank,
            "utm_content": blank,
            "occurred_at": occurred,
            "received_at": occurred,
            "source": source if isinstance(source, list) else [source] * n,
            "_when": when,
        }

    def behaviour(
        self, rng: np.random.Generator, who: np.ndarray, when: np.ndarray
    ) -> dict[str, Any]:
        n = len(who)
        kind = pick(rng, [m[1] for m in EVENT_MIX], n)
        page = pick(rng, [w for *_x, w in PAGES], n)
        content = rng.integers(0, len(CONTENT), n)
        email = rng.integers(0, len(EMAILS), n)
        form = rng.integers(0, len(FORMS), n)
        page_url = np.array([SITE + path for path, *_ in PAGES], dtype=object)[page]
        page_props = np.array([json.dumps({"title": t}) for _p, t, _w in PAGES], dtype=object)[page]
        content_url = np.array([f"{SITE}/resources/{c}" for c, _ in CONTENT], dtype=object)[content]
        content_props = np.array(
            [json.dumps({"content": c, "title": t}) for c, t in CONTENT], dtype=object
        )[content]
        email_props = np.array([json.dumps({"email": e}) for e in EMAILS], dtype=object)[email]
        form_url = np.array([f"{SITE}/{f}" for f in FORMS], dtype=object)[form]
        form_props = np.array([json.dumps({"form": f}) for f in FORMS], dtype=object)[form]
        # 0 page_view, 1 email_open, 2 email_click, 3 content_view, 4 form_submit
        url = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3],
            [page_url, "", page_url, content_url],
            form_url,
        )
        props = np.select(
            [kind == 0, kind == 1, kind == 2, kind == 3],
            [page_props, email_props, email_props, content_props],
            form_props,
        )
        return self.event_columns(
            rng, take([m[0] for m in EVENT_MIX], kind), who, when,
            take([m[2] for m in EVENT_MIX], kind), url=url.tolist(), properties=props.tolist(),
        )  # fmt: skip

    def write_events(self, rng: np.random.Generator, cols: list[dict[str, Any]]) -> None:
        names = (
            "id", "type", "contact_id", "visitor_id", "properties", "url", "referrer",
            "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content",
            "occurred_at", "received_at", "source",
        )  # fmt: skip
        for part in cols:
            self.insert("tracking_event", names, zip(*(part[c] for c in names), strict=True))

    def write_touchpoints(
        self, landing: dict[str, Any], source: np.ndarray, campaign: np.ndarray
    ) -> None:
        n = len(source)
        channel = take([s[2] for s in SOURCES], source)
        rows = zip(
            landing["contact_id"],
            landing["visitor_id"],
            channel,
            take([s[0] for s in SOURCES], source),
            take([s[1] for s in SOURCES], source),
            [c or None for c in campaign.tolist()],
            [""] * n,
            [""] * n,
            landing["url"],
            landing["occurred_at"],
            landing["id"],
            strict=True,
        )
        self.insert(
            "tracking_touchpoint",
            ("contact_id", "visitor_id", "channel", "source", "medium", "campaign_id", "term",
             "content", "landing_url", "occurred_at", "event_id"),
            rows,
        )  # fmt: skip

    def anonymous(self) -> None:
        """Visitors who never gave an email: a landing (a touchpoint) and a few page views."""
        rng = self.rng(5)
        total = self.anonymous_events
        visitors = max(1, total // 3) if total else 0
        self.anonymous_visitors = visitors
        if not total:
            return
        u = rng.random(visitors)
        days = HISTORY_DAYS * np.where(rng.random(visitors) < 0.5, u, 1 - np.sqrt(u))
        first = self.now - (days * DAY).astype(np.int64) - 60
        extra = rng.multinomial(total - visitors, np.full(visitors, 1 / visitors))
        names = [f"a{i}" for i in range(1, visitors + 1)]
        source = pick(rng, [s[4] for s in SOURCES], visitors)
        campaign = self.campaign_of(rng, source, first)
        landing = self.landing(rng, source, campaign, first, None, visitor=names)
        who = np.repeat(np.arange(visitors), extra)
        when = np.minimum(first[who] + rng.integers(30, 3 * 3600, len(who)), self.now - 1)
        page = pick(rng, [w for *_x, w in PAGES], len(who))
        rest = self.event_columns(
            rng, "page_view", None, when, "snippet",
            url=take([SITE + path for path, *_ in PAGES], page),
            properties=take([json.dumps({"title": t}) for _p, t, _w in PAGES], page),
            visitor=take(names, who),
        )  # fmt: skip
        self.write_events(rng, [landing, rest])
        self.write_touchpoints(landing, source, campaign)
        last = first.copy()
        np.maximum.at(last, who, when)
        self.anonymous_span = (first, last)

    def visitors(self) -> None:
        p = self.people
        first_s, last_s = stamps(p["first_visit"]), stamps(p["last_seen"])
        created_s = stamps(p["created"])
        ids = range(1, self.n + 1)
        self.insert(
            "tracking_visitor",
            ("id", "contact_id", "first_seen_at", "last_seen_at", "identified_at"),
            zip([f"v{i}" for i in ids], ids, first_s, last_s, created_s, strict=True),
        )
        if self.anonymous_visitors and self.anonymous_events:
            first, last = self.anonymous_span
            self.insert(
                "tracking_visitor",
                ("id", "contact_id", "first_seen_at", "last_seen_at", "identified_at"),
                zip(
                    [f"a{i}" for i in range(1, len(first) + 1)],
                    [None] * len(first),
                    stamps(first),
                    stamps(last),
                    [None] * len(first),
                    strict=True,
                ),
            )

    # -- deals

    def deals(self) -> None:
        """A deal for every move to opportunity: won when the contact became a customer, lost
        when it fell back, open while it is still an opportunity."""
        t = time.perf_counter()
        rng, p, tr, s = self.rng(6), self.people, self.transitions, self.setup
        contact, to, at = tr["contact"], tr["to"], tr["at"]
        opp = np.flatnonzero(to == OPP)
        nxt = opp + 1
        has_next = nxt < len(to)
        has_next[has_next] = contact[nxt[has_next]] == contact[opp[has_next]]
        after = np.where(has_next, to[np.minimum(nxt, len(to) - 1)], -1)
        closed_at = np.where(has_next, at[np.minimum(nxt, len(to) - 1)], 0)
        who, opened = contact[opp], at[opp]
        # Engagement began at the latest SQL before the opportunity (or at the opportunity).
        big = np.int64(1) << 34
        marks = np.where(to == SQL, contact * big + at, contact * big - 1)
        last_sql = np.maximum.accumulate(marks)[opp] - who * big
        engaged = np.where(last_sql >= 0, np.minimum(last_sql, opened), opened)
        d = len(opp)
        status = np.where(after == CUST, 1, np.where(after >= 0, 2, 0))  # 0 open 1 won 2 lost
        company = p["company"][who]
        employees = np.where(company >= 0, self.company["employees"][np.maximum(company, 0)], 20)
        amount = np.maximum(500, np.round(900 * employees**0.42 * rng.lognormal(0, 0.35, d), -2))
        country = np.where(company >= 0, self.company["country"][np.maximum(company, 0)], 0)
        from embudo.demo import vocabulary as words

        currency_of = [CURRENCY_OF_COUNTRY.get(c[0], "EUR") for c in words.COUNTRIES]
        currency = np.array(currency_of, dtype=object)[country]
        rate = np.array([RATES[c] for c in currency_of])[country]
        reporting = np.round(amount * rate, 2)
        # Open deals move along the pipeline with age; closed ones went through the middle.
        open_stages = s.stages[:-2]
        age_days = (self.now - opened) // DAY
        reached = np.minimum(len(open_stages) - 1, age_days // 12 + rng.integers(0, 2, d))
        final_stage = np.where(
            status == 0,
            np.array(open_stages)[reached],
            np.where(status == 1, s.stages[-2], s.stages[-1]),
        )
        expected = np.where(status == 0, self.now + rng.integers(5, 76, d) * DAY, closed_at)
        # Stage history: open deals step evenly through the stages reached; closed deals go
        # first stage → middle stage → won/lost.
        steps = np.where(status == 0, reached + 1, 3)
        deal_of = np.repeat(np.arange(d), steps)
        k = np.arange(len(deal_of)) - np.repeat(np.cumsum(steps) - steps, steps)
        st = status[deal_of]
        o, c = opened[deal_of], closed_at[deal_of]
        open_to = np.array(open_stages)[np.minimum(k, len(open_stages) - 1)]
        open_from = np.where(k > 0, np.array(open_stages)[np.maximum(k - 1, 0)], 0)
        open_when = o + (self.now - o) * k // (reached[deal_of] + 1)
        middle = np.array(open_stages)[min(2, len(open_stages) - 1)]
        closed_to = np.select([k == 0, k == 1], [open_stages[0], middle], final_stage[deal_of])
        closed_from = np.select([k == 0, k == 1], [0, open_stages[0]], middle)
        closed_when = np.select([k == 0, k == 1], [o, o + (c - o) // 2], c)
        change_to = np.where(st == 0, open_to, closed_to)
        change_from = np.where(st == 0, open_from, closed_from)
        change_when = np.where(st == 0, open_when, closed_when)
        last_change = change_when[np.cumsum(steps) - 1]  # each deal's latest change
        owner = p["owner"][who]
        forecast = dict(zip(s.stages, s.forecast, strict=True))
        names = [
            f"{self.company['names'][c] if c >= 0 else 'Contact ' + str(w + 1)} — {DEAL_WORDS[x]}"
            for c, w, x in zip(company.tolist(), who.tolist(), rng.integers(0, 5, d).tolist(),
                               strict=True)
        ]  # fmt: skip
        product = np.array(s.products)[pick(rng, [6, 2, 2], d)]
        reason = np.array(s.lost_reasons)[pick(rng, [5, 4, 3, 3, 2], d)]
        statuses = ("open", "won", "lost")
        rows = zip(
            range(1, d + 1),
            names,
            [s.pipeline] * d,
            final_stage.tolist(),
            take(statuses, status),
            [forecast[x] for x in final_stage.tolist()],
            amount.tolist(),
            currency.tolist(),
            rate.tolist(),
            reporting.tolist(),
            dates(expected),
            owner.tolist(),
            [None if c < 0 else c + 1 for c in company.tolist()],
            product.tolist(),
            [r if x == 2 else None for r, x in zip(reason.tolist(), status.tolist(), strict=True)],
            [""] * d,
            stamps(opened),
            stamps(engaged),
            [
                None if x == 0 else y
                for x, y in zip(status.tolist(), stamps(closed_at), strict=True)
            ],
            stamps(last_change),
            stamps(last_change),
            strict=True,
        )
        self.insert(
            "deals_deal",
            ("id", "name", "pipeline_id", "stage_id", "status", "forecast_category", "amount",
             "currency", "exchange_rate", "amount_reporting", "expected_close_date", "owner_id",
             "company_id", "product_line_id", "lost_reason_id", "lost_note", "created_at",
             "engaged_at", "closed_at", "stage_changed_at", "updated_at"),
            rows,
        )  # fmt: skip
        self.insert(
            "deals_deal_contacts",
            ("deal_id", "contact_id"),
            zip(range(1, d + 1), (who + 1).tolist(), strict=True),
        )
        self.insert(
            "deals_dealstagechange",
            ("deal_id", "from_stage_id", "to_stage_id", "changed_at", "actor_id"),
            zip(
                (deal_of + 1).tolist(),
                [x or None for x in change_from.tolist()],
                change_to.tolist(),
                stamps(change_when),
                owner[deal_of].tolist(),
                strict=True,
            ),
        )
        self.won = (closed_at[status == 1], reporting[status == 1])
        self.lap("deals", t)


def _months(seconds: np.ndarray) -> np.ndarray:
    return (
        np.asarray(seconds, dtype="int64")
        .astype("datetime64[s]")
        .astype("datetime64[M]")
        .astype(np.int64)
    )


def _month(seconds: int) -> int:
    return int(_months(np.array([seconds]))[0])


def _month_start(month: int) -> int:
    return int(np.datetime64(month, "M").astype("datetime64[s]").astype(np.int64))


# -- the Django side: schema, setup rows, goals ------------------------------------------------


def django_setup_rows(contacts: int) -> Setup:
    """Users with their roles, teams, the pipeline and the lists, through Embudo's actions."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    from embudo.accounts.actions import create_user
    from embudo.accounts.roles import ADMIN, MARKETING, SALES, SALES_MANAGER
    from embudo.crm.models import ObjectType, PropertyDefinition, PropertyType
    from embudo.deals import actions as deals
    from embudo.deals.models import LostReason, Stage, StageKind
    from embudo.demo import vocabulary as words

    people = iter(
        zip(words.FIRST_NAMES["es"] + words.FIRST_NAMES["en"],
            words.LAST_NAMES["es"] + words.LAST_NAMES["en"], strict=False)
    )  # fmt: skip

    def user(username: str, role: str) -> Any:
        first, last = next(people)
        return create_user(
            username, role=role, email=f"{username}@embudo-bench.example", first_name=first,
            last_name=last,
        )  # fmt: skip

    admin = user("admin", ADMIN)
    marketers = [user(f"marketing{i}", MARKETING) for i in (1, 2, 3)]
    manager = user("manager", SALES_MANAGER)
    reps: dict[str, list[int]] = {}
    number = 0
    for region in REGIONS:
        team = deals.create_team(TEAMS[region])
        reps[region] = []
        for _ in range(REPS_PER_REGION[region]):
            number += 1
            rep = user(f"rep{number:02d}", SALES)
            deals.set_team(rep, team)
            reps[region].append(rep.pk)
    get_user_model().objects.update(password=make_password(PASSWORD))
    pipeline = deals.default_pipeline()
    stages = list(Stage.objects.filter(pipeline=pipeline).order_by("position"))
    ordered = [x for x in stages if x.kind == StageKind.OPEN]
    ordered += [x for x in stages if x.kind == StageKind.WON][:1]
    ordered += [x for x in stages if x.kind == StageKind.LOST][:1]
    for currency, rate in RATES.items():
        if currency != "EUR":
            deals.set_exchange_rate(currency, str(rate))
    products = [deals.create_product_line(name).pk for name in PRODUCTS]
    properties = [
        (ObjectType.CONTACT, "plan_interest", "Plan interest", PropertyType.CHOICE,
         ["starter", "growth", "enterprise"]),
        (ObjectType.CONTACT, "newsletter", "Newsletter", PropertyType.BOOLEAN, []),
        (ObjectType.CONTACT, "seats", "Seats", PropertyType.NUMBER, []),
        (ObjectType.CONTACT, "crm_in_use", "CRM in use", PropertyType.TEXT, []),
        (ObjectType.CONTACT, "last_webinar", "Last webinar", PropertyType.DATE, []),
        (ObjectType.COMPANY, "tier", "Tier", PropertyType.CHOICE, ["A", "B", "C"]),
        (ObjectType.COMPANY, "founded_year", "Founded", PropertyType.NUMBER, []),
        (ObjectType.COMPANY, "tech_stack", "Tech stack", PropertyType.TEXT, []),
    ]  # fmt: skip
    PropertyDefinition.objects.bulk_create(
        PropertyDefinition(object_type=o, name=n, label=la, type=ty, choices=ch)
        for o, n, la, ty, ch in properties
    )
    return Setup(
        admin=admin.pk,
        marketers=[m.pk for m in marketers],
        manager=manager.pk,
        reps=reps,
        pipeline=pipeline.pk,
        stages=[x.pk for x in ordered],
        forecast=[x.forecast_category for x in ordered],
        lost_reasons=list(LostReason.objects.order_by("position").values_list("pk", flat=True))[:5],
        products=products,
    )


def django_goals(now: int, won_at: np.ndarray, won_amount: np.ndarray) -> int:
    """This month's and next month's company goal: the last six months' average wins plus a
    fifth, rounded up to the thousand; each team gets a third of it."""
    from embudo.deals import actions as deals
    from embudo.deals.models import SalesTeam
    from embudo.deals.periods import add_months, period_of

    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    this_month = period_of("month", today)
    since = add_months(this_month.start, -6)
    start_s = dt.datetime.combine(since, dt.time(), dt.UTC).timestamp()
    end_s = dt.datetime.combine(this_month.start, dt.time(), dt.UTC).timestamp()
    recent = won_amount[(won_at >= start_s) & (won_at < end_s)]
    monthly = float(recent.sum()) / 6 if len(recent) else 20_000.0
    target = int(np.ceil(monthly * 1.2 / 1000) * 1000)
    count = 0
    for start in (this_month.start, add_months(this_month.start, 1)):
        period = period_of("month", start)
        deals.set_goal(period, target)
        count += 1
        for team in SalesTeam.objects.order_by("name"):
            deals.set_goal(period, int(np.ceil(target / 3 / 1000) * 1000), team=team)
            count += 1
    return count


def build(contacts: int, events: int, path: Path, *, as_of: dt.date, keep_indexes: bool) -> None:
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(f"{path}.partial")
    for stale in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        stale.unlink(missing_ok=True)
    print(f"building {path} ({contacts:,} contacts, {events:,} events, as of {as_of})", flush=True)
    migrate(partial)
    use_database(partial)
    import django

    django.setup()
    from django.db import connection

    setup = django_setup_rows(contacts)
    connection.close()
    print(f"  schema and setup rows: {time.perf_counter() - started:.1f} s", flush=True)

    db = sqlite3.connect(partial, isolation_level=None)
    for pragma in (
        "journal_mode=OFF",
        "synchronous=OFF",
        "locking_mode=EXCLUSIVE",
        "cache_size=-400000",
        "temp_store=FILE",
        "threads=2",
        "foreign_keys=OFF",
    ):
        db.execute(f"PRAGMA {pragma}")
    print(f"  left to each copy's migrate: {', '.join(strip_new_apps(db)) or 'nothing'}")
    dropped: list[tuple[str, str]] = []
    if not keep_indexes:
        dropped = db.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
            f"AND tbl_name IN ({', '.join('?' * len(BULK_TABLES))})",
            BULK_TABLES,
        ).fetchall()
        for name, _sql in dropped:
            db.execute(f'DROP INDEX "{name}"')
    now = int(dt.datetime.combine(as_of, dt.time(), dt.UTC).timestamp())
    gen = Generator(db, setup, contacts, events, now)
    db.execute("BEGIN")
    gen.companies()
    gen.contacts()
    gen.campaigns()
    gen.journeys()
    gen.write_contacts()
    db.execute("COMMIT")
    db.execute("BEGIN")
    gen.events()
    db.execute("COMMIT")
    db.execute("BEGIN")
    gen.deals()
    db.execute("COMMIT")
    load_seconds = time.perf_counter() - started
    t = time.perf_counter()
    for name, sql in dropped:
        step = time.perf_counter()
        db.execute(sql)
        print(f"    index {name}: {time.perf_counter() - step:.1f} s", flush=True)
    gen.lap("indexes", t)
    db.close()

    from django.db import connection as django_connection

    goals = django_goals(now, *gen.won)
    django_connection.close()

    db = sqlite3.connect(partial, isolation_level=None)
    t = time.perf_counter()
    db.execute("ANALYZE")
    gen.lap("analyze", t)
    counts = dict(gen.built.counts, deals_goal=goals)
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute(f"CREATE TABLE {MARKER} (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    facts = {
        "contacts": contacts,
        "events": events,
        "as_of": as_of.isoformat(),
        "seed": SEED,
        "counts": json.dumps(counts),
        "seconds": f"{seconds:.1f}",
        "load_seconds": f"{load_seconds:.1f}",
        "peak_rss_mb": f"{peak_mb:.0f}",
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "version": str(VERSION),  # written last: a file with it is complete
    }
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO {MARKER} (key, value) VALUES (?, ?)", facts.items())
    db.execute("COMMIT")
    db.close()
    partial.rename(path)
    size_mb = path.stat().st_size / 1e6
    rows = sum(counts.values())
    print(
        f"built {path}: {size_mb:,.0f} MB, {rows:,} rows in {seconds:.0f} s "
        f"({rows / seconds:,.0f} rows/s); peak memory {peak_mb:,.0f} MB; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    for table, count in counts.items():
        print(f"  {table:<28} {count:>12,}")


def info(path: Path) -> None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        facts = dict(db.execute(f"SELECT key, value FROM {MARKER}").fetchall())
        stages = db.execute(
            "SELECT lifecycle_stage, COUNT(*) FROM crm_contact GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
        reached = db.execute(
            "SELECT to_stage, COUNT(DISTINCT contact_id) FROM crm_lifecycletransition GROUP BY 1 "
            "ORDER BY 2 DESC"
        ).fetchall()
        deals = db.execute(
            "SELECT status, COUNT(*), SUM(amount_reporting) FROM deals_deal GROUP BY 1"
        ).fetchall()
        types = db.execute(
            "SELECT type, COUNT(*) FROM tracking_event GROUP BY 1 ORDER BY 2 DESC"
        ).fetchall()
    print(f"{path}: {path.stat().st_size / 1e6:,.0f} MB")
    for key, value in facts.items():
        print(f"  {key}: {value}")
    print("  contacts by current stage:", ", ".join(f"{s} {c:,}" for s, c in stages))
    print("  contacts that ever reached:", ", ".join(f"{s} {c:,}" for s, c in reached))
    print("  deals:", ", ".join(f"{s} {c:,} ({a:,.0f} EUR)" for s, c, a in deals))
    print("  events:", ", ".join(f"{s} {c:,}" for s, c in types))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("build", help="build the database unless a complete one exists")
    show = sub.add_parser("info", help="what a built database holds")
    for p in (make, show):
        p.add_argument("--contacts", type=int, default=1_000_000)
        p.add_argument("--events", type=int, default=10_000_000)
        p.add_argument("--path", type=Path, help="default: /work/bench-data/embudo-C-E.sqlite3")
    make.add_argument(
        "--as-of", type=dt.date.fromisoformat, help="the data's today (default today, UTC)"
    )
    make.add_argument("--force", action="store_true", help="rebuild even if the file is complete")
    make.add_argument(
        "--keep-indexes",
        action="store_true",
        help="load with every index in place (slower; to compare)",
    )
    args = parser.parse_args()
    path = (args.path or default_path(args.contacts, args.events)).resolve()
    if args.command == "info":
        info(path)
        return
    if is_complete(path) and not args.force:
        print(f"{path} is already built (use --force to rebuild)")
        return
    path.unlink(missing_ok=True)
    build(
        args.contacts,
        args.events,
        path,
        as_of=args.as_of or dt.datetime.now(dt.UTC).date(),
        keep_indexes=args.keep_indexes,
    )


if __name__ == "__main__":
    main()
