"""The demo company: a B2B software vendor's year of marketing and sales, loaded in one go.

`seed()` runs the STEPS in order inside one transaction, each a function taking the shared
:class:`SeedContext`. A step draws its randomness from ``ctx.rng("its name")`` — its own stream —
so adding a step (deals, events, a goal, the SLA…) never changes what the earlier steps made.
Everything is deterministic: the same ``as_of`` day gives the same rows; another day gives the
same content with every date shifted, so the demo always looks current.

Rows are written with ``bulk_create`` (not the per-row actions) so the whole company loads in
seconds; the steps keep the data as valid as the actions would (lower-case emails, a lifecycle
history whose last move is the contact's stage, owners from MQL on).

Adding a step (deals, events, a goal, the SLA…): write ``def seed_deals(ctx: SeedContext)`` and
append ``("deals", seed_deals)`` to STEPS. ``ctx.now`` is the demo's "today" (never read the
clock); ``ctx.contacts`` the saved contacts, ``ctx.paths[contact.pk]`` each one's lifecycle
moves (stage, at, cause, actor) — e.g. who became an opportunity or customer and when;
``ctx.users`` the team by username; ``ctx.companies``; record what you made in ``ctx.counts``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import random
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest

from embudo.accounts.actions import create_user, record_audit
from embudo.accounts.models import AuditEntry
from embudo.accounts.roles import ADMIN, MARKETING, SALES, SALES_MANAGER
from embudo.analytics.demo import seed_costs
from embudo.automation.demo import seed_email
from embudo.crm.models import (
    Activity,
    ActivityKind,
    Company,
    Contact,
    LeadStatus,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
    TransitionCause,
)
from embudo.deals.demo import seed_deals
from embudo.demo import vocabulary as words
from embudo.errors import EmbudoError
from embudo.handoff.demo import seed_handoff
from embudo.predictive.demo import seed_predictive
from embudo.scoring.demo import seed_scoring
from embudo.segments.demo import seed_segments
from embudo.tracking.demo import seed_events

# Printed by `embudo demo` every time: a demo login is not a secret.
DEMO_PASSWORD = "embudo-demo"
DEMO_SEED = "embudo-demo-1"
SEED_MARKER = "demo.seed"

CONTACTS = 5_000
COMPANIES = 800
HISTORY_DAYS = 365

S = LifecycleStage
BATCH = 1_000


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str
    region: str = ""  # sales territory, for reps


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", ADMIN, "Ana", "Ruiz"),
    DemoUser("marta", MARKETING, "Marta", "Gil"),
    DemoUser("oliver", MARKETING, "Oliver", "Grant"),
    DemoUser("javier", SALES, "Javier", "Ortega", "iberia"),
    DemoUser("carmen", SALES, "Carmen", "Vidal", "iberia"),
    DemoUser("diego", SALES, "Diego", "Salazar", "latam"),
    DemoUser("valentina", SALES, "Valentina", "Rojas", "latam"),
    DemoUser("james", SALES, "James", "Whitaker", "english"),
    DemoUser("emily", SALES, "Emily", "Clarke", "english"),
    DemoUser("sofia", SALES_MANAGER, "Sofía", "Herrera"),
)


class DemoRefused(EmbudoError):
    """The database holds other data, so the demo company is not loaded into it."""


@dataclass(frozen=True)
class Stop:
    """One move on a contact's lifecycle path (the first has no previous stage)."""

    stage: str
    at: dt.datetime
    cause: str
    actor: str | None = None  # username
    note: str = ""


@dataclass
class SeedContext:
    """What the steps share: the clock, and what earlier steps made (by natural order)."""

    now: dt.datetime
    users: dict[str, Any] = field(default_factory=dict)  # username → User
    companies: list[Company] = field(default_factory=list)
    contacts: list[Contact] = field(default_factory=list)
    paths: dict[int, list[Stop]] = field(default_factory=dict)  # contact pk → lifecycle path
    language: dict[int, str] = field(default_factory=dict)  # contact pk → "es" | "en"
    counts: dict[str, int] = field(default_factory=dict)

    def rng(self, step: str) -> random.Random:
        return random.Random(f"{DEMO_SEED}:{step}")

    def days_ago(self, days: float) -> dt.datetime:
        return (self.now - dt.timedelta(days=days)).replace(microsecond=0)

    def reps(self, region: str = "") -> list[str]:
        return [u.username for u in DEMO_USERS if u.role == SALES and region in ("", u.region)]

    def marketers(self) -> list[str]:
        return [u.username for u in DEMO_USERS if u.role == MARKETING]


Step = Callable[[SeedContext], None]


@dataclass(frozen=True)
class SeedReport:
    loaded: bool
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


# -- steps --------------------------------------------------------------------------------------


def seed_users(ctx: SeedContext) -> None:
    """The team: an admin, two marketers, six reps in three territories and their manager."""
    # One hash for all: the password is the same, and hashing is deliberately slow.
    hashed = make_password(DEMO_PASSWORD)
    joined = ctx.days_ago(HISTORY_DAYS + 30)
    for person in DEMO_USERS:
        user = create_user(
            person.username,
            role=person.role,
            email=f"{person.username}@embudo-demo.example",
            first_name=person.first_name,
            last_name=person.last_name,
        )
        user.password = hashed
        user.date_joined = joined
        user.save(update_fields=["password", "date_joined"])
        ctx.users[person.username] = user
    ctx.counts["users"] = len(DEMO_USERS)


def seed_properties(ctx: SeedContext) -> None:
    """Custom contact properties a marketing team typically adds."""
    at = ctx.days_ago(HISTORY_DAYS + 30)
    PropertyDefinition.objects.bulk_create(
        [
            PropertyDefinition(
                object_type=ObjectType.CONTACT,
                name="plan_interest",
                label="Plan interest",
                type=PropertyType.CHOICE,
                choices=["starter", "growth", "enterprise"],
                created_at=at,
            ),
            PropertyDefinition(
                object_type=ObjectType.CONTACT,
                name="newsletter",
                label="Newsletter",
                type=PropertyType.BOOLEAN,
                created_at=at,
            ),
            PropertyDefinition(
                object_type=ObjectType.CONTACT,
                name="seats",
                label="Seats",
                type=PropertyType.NUMBER,
                created_at=at,
            ),
        ]
    )
    ctx.counts["properties"] = 3


def seed_companies(ctx: SeedContext) -> None:
    """~800 companies across Spain, Latin America, the US, the UK and Ireland."""
    rng = ctx.rng("companies")
    used_names: set[str] = set()
    rep_turn: dict[str, int] = {}
    companies: list[Company] = []
    for _ in range(COMPANIES):
        country, _w, language, tld, cities, _phone = _weighted(
            rng, words.COUNTRIES, [c[1] for c in words.COUNTRIES]
        )
        industry, _w2, _fit = _weighted(rng, words.INDUSTRIES, [i[1] for i in words.INDUSTRIES])
        name = _company_name(rng, language, industry, used_names)
        region = words.REGION_OF_COUNTRY[country]
        reps = ctx.reps(region)
        turn = rep_turn.get(region, 0)
        rep_turn[region] = turn + 1
        companies.append(
            Company(
                name=name,
                domain=_slug(name) + tld,
                industry=industry,
                employees=_employees(rng),
                country=country,
                city=rng.choice(cities),
                # Territory ownership: each region's accounts are dealt round-robin to its reps.
                owner=ctx.users[reps[turn % len(reps)]],
                created_at=ctx.now,  # set from the first contact by seed_contacts
                updated_at=ctx.now,
            )
        )
    ctx.companies = Company.objects.bulk_create(companies, batch_size=BATCH)
    ctx.counts["companies"] = len(ctx.companies)


def seed_contacts(ctx: SeedContext) -> None:
    """~5,000 people, each with a year of lifecycle history, source and custom properties."""
    rng = ctx.rng("contacts")
    company_of = _deal_contacts_to_companies(rng, ctx.companies)
    used_emails: set[str] = set()
    contacts: list[Contact] = []
    paths: list[list[Stop]] = []
    languages: list[str] = []
    for company in company_of:
        country = company.country if company else rng.choice(words.COUNTRIES)[0]
        spec = next(c for c in words.COUNTRIES if c[0] == country)
        language, phone_prefix = spec[2], spec[5]
        first = rng.choice(words.FIRST_NAMES[language])
        last = rng.choice(words.LAST_NAMES[language])
        if language == "es" and rng.random() < 0.5:
            last = f"{last} {rng.choice(words.LAST_NAMES['es'])}"
        domain = company.domain if company else rng.choice(words.FREE_MAIL)
        email = _unique_email(rng, first, last, domain, used_emails)
        source, medium, campaigns, _w, quality = _weighted(
            rng, words.SOURCES, [s[3] for s in words.SOURCES]
        )
        created = _created_at(rng, ctx)
        fit = _fit(company)
        region = words.REGION_OF_COUNTRY[country]
        owner = (
            company.owner.username if company and company.owner else rng.choice(ctx.reps(region))
        )
        path = _lifecycle_path(rng, ctx, created, quality * fit, fit, owner)
        reached = {stop.stage for stop in path}
        owner_name = owner if reached & {S.MQL, S.SQL, S.OPPORTUNITY, S.CUSTOMER} else None
        contacts.append(
            Contact(
                email=email,
                first_name=first,
                last_name=last,
                phone=f"{phone_prefix} {rng.randint(600, 999)} {rng.randint(100, 999)} "
                f"{rng.randint(100, 999)}",
                job_title=_weighted(
                    rng, words.JOB_TITLES[language], [t[1] for t in words.JOB_TITLES[language]]
                )[0],
                company=company,
                owner=ctx.users[owner_name] if owner_name else None,
                lifecycle_stage=path[-1].stage,
                lifecycle_stage_changed_at=path[-1].at,
                lead_status=_lead_status(rng, ctx, path, owner_name),
                original_source=source,
                original_medium=medium,
                original_campaign=rng.choice(campaigns),
                properties=_properties(rng, company, reached),
                language=language,
                created_at=created,
                updated_at=path[-1].at,
            )
        )
        paths.append(path)
        languages.append(language)
    ctx.contacts = Contact.objects.bulk_create(contacts, batch_size=BATCH)
    users = ctx.users
    transitions = [
        LifecycleTransition(
            contact=contact,
            from_stage=path[i - 1].stage if i else "",
            to_stage=stop.stage,
            changed_at=stop.at,
            cause=stop.cause,
            actor=users[stop.actor] if stop.actor else None,
            note=stop.note,
        )
        for contact, path in zip(ctx.contacts, paths, strict=True)
        for i, stop in enumerate(path)
    ]
    LifecycleTransition.objects.bulk_create(transitions, batch_size=BATCH)
    for contact, path, language in zip(ctx.contacts, paths, languages, strict=True):
        ctx.paths[contact.pk] = path
        ctx.language[contact.pk] = language
    # A company entered the CRM with its first contact.
    first_seen: dict[int, dt.datetime] = {}
    for contact in ctx.contacts:
        if contact.company_id is not None:
            seen = first_seen.get(contact.company_id)
            first_seen[contact.company_id] = (
                min(seen, contact.created_at) if seen else contact.created_at
            )
    for company in ctx.companies:
        company.created_at = company.updated_at = first_seen.get(company.pk, ctx.now)
    Company.objects.bulk_update(ctx.companies, ["created_at", "updated_at"], batch_size=BATCH)
    ctx.counts["contacts"] = len(ctx.contacts)
    ctx.counts["transitions"] = len(transitions)


def seed_activities(ctx: SeedContext) -> None:
    """~15,000 calls, emails, meetings, notes and tasks: marketing touches and sales work."""
    rng = ctx.rng("activities")
    users = ctx.users
    activities: list[Activity] = []

    def add(
        contact: Contact, kind: str, subject: str, at: dt.datetime, actor: str | None, **extra: Any
    ) -> None:
        at = max(at, floor)  # nothing happens before the contact exists or is handed off
        if at <= ceiling:  # …nor after now, or after sales stopped working it
            activities.append(
                Activity(
                    contact=contact,
                    kind=kind,
                    subject=subject,
                    occurred_at=at,
                    actor=users[actor] if actor else None,
                    created_at=at,
                    updated_at=at,
                    done=extra.pop("done", True),
                    **extra,
                )
            )

    floor = ceiling = ctx.now
    for contact in ctx.contacts:
        floor, ceiling = contact.created_at, ctx.now
        path = ctx.paths[contact.pk]
        lang = ctx.language[contact.pk]
        sales = words.SALES_WORDS[lang]
        span_days = max((ctx.now - contact.created_at).total_seconds() / 86400, 0.1)
        # Marketing's campaign emails land over the contact's whole life.
        for _ in range(rng.choice((0, 1, 1, 2, 2, 3))):
            add(
                contact,
                ActivityKind.EMAIL,
                rng.choice(words.MARKETING_EMAILS[lang]),
                _jitter(contact.created_at + dt.timedelta(days=rng.uniform(0, span_days)), rng),
                rng.choice(ctx.marketers()),
            )
        stages = {stop.stage: stop for stop in path}
        owner = contact.owner.username if contact.owner is not None else None
        if owner is None or S.MQL not in stages:
            continue
        handoff = floor = stages[S.MQL].at
        if contact.lifecycle_stage not in (S.MQL, S.SQL, S.OPPORTUNITY):
            ceiling = contact.lifecycle_stage_changed_at  # recycled, lost, disqualified or won
        # First touch after the handoff: a few attempts, then an intro email.
        touch = handoff
        for _ in range(rng.choice((0, 1, 1, 2))):
            touch = touch + dt.timedelta(hours=rng.uniform(2, 30))
            add(
                contact,
                ActivityKind.CALL,
                rng.choice(sales["call_attempt"]),
                _jitter(touch, rng),
                owner,
            )
        touch = touch + dt.timedelta(hours=rng.uniform(1, 20))
        add(contact, ActivityKind.EMAIL, rng.choice(sales["email"]), _jitter(touch, rng), owner)
        if S.SQL in stages:
            at = stages[S.SQL].at - dt.timedelta(hours=rng.uniform(1, 20))
            add(contact, ActivityKind.CALL, sales["call"][0], _jitter(max(at, touch), rng), owner)
            add(
                contact,
                ActivityKind.NOTE,
                sales["note"][0],
                _jitter(stages[S.SQL].at, rng),
                owner,
                body=rng.choice(words.NOTE_BODIES[lang]),
            )
            touch = stages[S.SQL].at
        if S.OPPORTUNITY in stages:
            opened = stages[S.OPPORTUNITY].at
            add(
                contact,
                ActivityKind.MEETING,
                sales["meeting"][0],
                _jitter(opened - dt.timedelta(days=rng.uniform(0.5, 4)), rng),
                owner,
            )
            add(
                contact,
                ActivityKind.EMAIL,
                sales["proposal"][0],
                _jitter(opened + dt.timedelta(days=rng.uniform(1, 6)), rng),
                owner,
            )
            if rng.random() < 0.6:
                add(
                    contact,
                    ActivityKind.MEETING,
                    rng.choice(sales["meeting"][1:]),
                    _jitter(opened + dt.timedelta(days=rng.uniform(7, 25)), rng),
                    owner,
                )
            add(
                contact,
                ActivityKind.CALL,
                sales["call"][2],
                _jitter(opened + dt.timedelta(days=rng.uniform(3, 15)), rng),
                owner,
            )
            touch = opened
        if S.CUSTOMER in stages:
            won = stages[S.CUSTOMER].at
            add(
                contact,
                ActivityKind.NOTE,
                sales["note"][2],
                _jitter(won, rng),
                owner,
                body=rng.choice(words.NOTE_BODIES[lang]),
            )
        # Open work: reps keep a next step on every live MQL, SQL and opportunity.
        if contact.lifecycle_stage in (S.MQL, S.SQL, S.OPPORTUNITY):
            last = max(touch, contact.lifecycle_stage_changed_at)
            add(
                contact,
                ActivityKind.TASK,
                rng.choice(sales["task"]),
                min(max(_jitter(last, rng), last), ctx.now),
                owner,
                due_at=(ctx.now + dt.timedelta(days=rng.uniform(-3, 10))).replace(microsecond=0),
                done=False,
            )
        # …and a done follow-up task or two along the way.
        for _ in range(rng.choice((0, 1, 1, 2))):
            at = handoff + (ceiling - handoff) * rng.random()
            add(
                contact,
                ActivityKind.TASK,
                rng.choice(sales["task"]),
                _jitter(at, rng),
                owner,
                due_at=at.replace(microsecond=0),
                done=True,
            )
    Activity.objects.bulk_create(activities, batch_size=BATCH)
    # A contact was last touched at its latest move or activity, whichever came later.
    latest = (
        Activity.objects.filter(contact=OuterRef("pk"))
        .order_by("-occurred_at")
        .values("occurred_at")[:1]
    )
    # The demo loads only into an empty database, so every contact here is a demo contact.
    Contact.objects.update(
        updated_at=Greatest(F("updated_at"), Coalesce(Subquery(latest), F("updated_at")))
    )
    ctx.counts["activities"] = len(activities)


STEPS: list[tuple[str, Step]] = [
    ("users", seed_users),
    ("properties", seed_properties),
    ("companies", seed_companies),
    ("contacts", seed_contacts),
    ("activities", seed_activities),
    ("events", seed_events),
    ("deals", seed_deals),
    ("costs", seed_costs),
    ("scoring", seed_scoring),
    ("segments", seed_segments),
    ("handoff", seed_handoff),
    ("predictive", seed_predictive),
    ("email", seed_email),
]


# -- running ------------------------------------------------------------------------------------


def is_seeded() -> bool:
    return AuditEntry.objects.filter(action=SEED_MARKER).exists()


def seed(
    *, as_of: dt.date | None = None, progress: Callable[[str], None] | None = None
) -> SeedReport:
    """Load the demo company once; a database that already has it is left as it is.

    ``as_of`` is the demo's "today" (default: the real today, UTC): the history ends the
    midnight before it. Refuses a database holding other users or contacts.
    """
    if is_seeded():
        return SeedReport(loaded=False)
    user_model = get_user_model()
    if Contact.objects.exists() or user_model.objects.exists():
        raise DemoRefused(
            f"this database already holds {Contact.objects.count()} contact(s) and "
            f"{user_model.objects.count()} user(s); the demo company loads only into an empty "
            "one (point EMBUDO_DATA_DIR at a new folder, or use --no-seed)"
        )
    day = as_of or dt.datetime.now(dt.UTC).date()
    ctx = SeedContext(now=dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC))
    started = time.perf_counter()
    with transaction.atomic():
        for name, step in STEPS:
            if progress:
                progress(name)
            step(ctx)
        record_audit(
            SEED_MARKER, "demo", DEMO_SEED, changes={"as_of": day.isoformat(), **ctx.counts}
        )
    return SeedReport(loaded=True, seconds=time.perf_counter() - started, counts=dict(ctx.counts))


# -- the lifecycle model ------------------------------------------------------------------------

# From each stage: (next stage, probability, median delay in days). The rest stay where they
# are. Probabilities for moving up are scaled by the contact's source quality and company fit.
_MOVES: dict[str, list[tuple[str, float, float]]] = {
    S.SUBSCRIBER: [(S.LEAD, 0.64, 16)],
    S.LEAD: [(S.MQL, 0.39, 9), (S.DISQUALIFIED, 0.06, 25)],
    S.MQL: [(S.SQL, 0.53, 2), (S.LEAD, 0.16, 12), (S.DISQUALIFIED, 0.06, 6)],
    S.SQL: [(S.OPPORTUNITY, 0.44, 8), (S.LEAD, 0.14, 20), (S.DISQUALIFIED, 0.08, 15)],
    S.OPPORTUNITY: [(S.CUSTOMER, 0.25, 30), (S.LEAD, 0.30, 35), (S.DISQUALIFIED, 0.04, 30)],
    S.CUSTOMER: [(S.EVANGELIST, 0.15, 75)],
}
_SCALED: dict[str, str] = {S.MQL: "quality", S.OPPORTUNITY: "fit", S.CUSTOMER: "fit"}


def _lifecycle_path(
    rng: random.Random,
    ctx: SeedContext,
    created: dt.datetime,
    quality: float,
    fit: float,
    owner: str,
) -> list[Stop]:
    entry = S.SUBSCRIBER if rng.random() < 0.5 else S.LEAD
    path = [Stop(entry, created, TransitionCause.API)]
    stage: str = entry
    at, recycled, owned = created, 0, False
    marketer = rng.choice(ctx.marketers())
    while stage in _MOVES:
        options = []
        for to, probability, median in _MOVES[stage]:
            if to == S.LEAD and recycled >= 1 and stage == S.MQL:
                continue  # an MQL is recycled once; the second time sales keeps working it
            factor = {"quality": quality, "fit": fit}.get(_SCALED.get(to, ""), 1.0)
            if stage == S.LEAD and to == S.MQL and recycled:
                probability = 0.22  # recycled leads come back less often
            options.append((to, min(probability * factor, 0.9), median))
        draw = rng.random()
        chosen = None
        for to, probability, median in options:
            if draw < probability:
                chosen = (to, median)
                break
            draw -= probability
        if chosen is None:
            break
        to, median = chosen
        when = at + dt.timedelta(days=rng.lognormvariate(math.log(median), 0.7))
        if when >= ctx.now:
            break  # it has not happened yet
        when = _jitter(when, rng)
        if when <= at:  # office hours pulled it before the previous move: keep the order
            when = at + dt.timedelta(minutes=rng.randint(5, 90))
        if when >= ctx.now:
            break  # it has not happened yet
        owned = owned or to == S.MQL
        path.append(_stop(rng, stage, to, when, owner if owned else None, marketer))
        if to == S.LEAD:
            recycled += 1
        stage, at = to, when
    return path


def _stop(
    rng: random.Random, stage: str, to: str, when: dt.datetime, owner: str | None, marketer: str
) -> Stop:
    if to == S.LEAD and stage == S.SUBSCRIBER:
        return Stop(to, when, TransitionCause.RULE)  # filled in a form
    if to == S.MQL:
        return Stop(to, when, TransitionCause.RULE)  # reached the scoring threshold
    if to == S.SQL:
        return Stop(to, when, TransitionCause.FEEDBACK, owner)  # sales accepted it
    if to == S.LEAD:
        return Stop(
            to, when, TransitionCause.FEEDBACK, owner, rng.choice(words.RECYCLE_NOTES[stage])
        )
    if to == S.DISQUALIFIED:
        return Stop(
            to, when, TransitionCause.MANUAL, owner or marketer, rng.choice(words.DISQUALIFY_NOTES)
        )
    if to == S.EVANGELIST:
        return Stop(to, when, TransitionCause.MANUAL, marketer)
    return Stop(to, when, TransitionCause.MANUAL, owner)  # opportunity, customer


def _lead_status(rng: random.Random, ctx: SeedContext, path: list[Stop], owner: str | None) -> str:
    stage = path[-1].stage
    if stage == S.MQL:
        fresh = ctx.now - path[-1].at < dt.timedelta(days=2)
        return (
            LeadStatus.NEW if fresh else rng.choice((LeadStatus.ATTEMPTING, LeadStatus.CONNECTED))
        )
    if stage == S.SQL:
        return rng.choice((LeadStatus.CONNECTED, LeadStatus.QUALIFIED))
    if stage in (S.OPPORTUNITY, S.CUSTOMER, S.EVANGELIST):
        return LeadStatus.QUALIFIED
    if stage == S.LEAD and len(path) > 1 and path[-2].stage != S.SUBSCRIBER:
        return LeadStatus.RECYCLED
    if stage == S.DISQUALIFIED and owner:
        return LeadStatus.UNQUALIFIED
    return ""


# -- small helpers ------------------------------------------------------------------------------


def _weighted(rng: random.Random, items: list[Any], weights: list[int]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in ascii_text.lower() if ch.isalnum())


def _company_name(rng: random.Random, language: str, industry: str, used: set[str]) -> str:
    roots, sectors = words.NAME_ROOTS[language], words.SECTOR_WORDS[language][industry]
    for attempt in range(200):
        root, sector = rng.choice(roots), rng.choice(sectors)
        name = f"{sector} {root}" if language == "es" and rng.random() < 0.5 else f"{root} {sector}"
        if attempt > 50:
            name = f"{name} {rng.choice(words.NAME_ROOTS[language])}"
        if name not in used:
            used.add(name)
            return name
    raise RuntimeError("ran out of demo company names")  # cannot happen at 800 companies


def _employees(rng: random.Random) -> int:
    low, high = _weighted(
        rng, [(5, 20), (21, 50), (51, 200), (201, 1000), (1001, 5000)], [25, 22, 25, 18, 10]
    )
    return round(math.exp(rng.uniform(math.log(low), math.log(high))))


def _fit(company: Company | None) -> float:
    if company is None:
        return 0.6
    industry_fit = next(f for name, _w, f in words.INDUSTRIES if name == company.industry)
    size = company.employees or 0
    size_fit = 0.7 if size < 20 else 0.9 if size <= 50 else 1.25 if size <= 1000 else 1.0
    return industry_fit * size_fit


def _deal_contacts_to_companies(
    rng: random.Random, companies: list[Company]
) -> list[Company | None]:
    """Each company gets one contact, the rest go more to bigger companies; a few use free mail."""
    without_company = CONTACTS * 3 // 100
    weights = [(company.employees or 1) ** 0.45 for company in companies]
    extra = rng.choices(companies, weights=weights, k=CONTACTS - len(companies) - without_company)
    dealt: list[Company | None] = [*companies, *extra, *([None] * without_company)]
    rng.shuffle(dealt)
    return dealt


def _unique_email(rng: random.Random, first: str, last: str, domain: str, used: set[str]) -> str:
    first_slug, last_slug = _slug(first), _slug(last.split(" ")[0])
    preferred = [f"{first_slug}.{last_slug}", f"{first_slug[0]}{last_slug}"]
    if domain in words.FREE_MAIL:
        preferred.insert(0, f"{first_slug}.{last_slug}{rng.randint(10, 99)}")
    numbered = (f"{first_slug}.{last_slug}{n}" for n in itertools.count(2))
    for local in itertools.chain(preferred, numbered):
        email = f"{local}@{domain}"
        if email not in used:
            used.add(email)
            return email
    raise AssertionError("unreachable: the numbered addresses never run out")


def _created_at(rng: random.Random, ctx: SeedContext) -> dt.datetime:
    # Inbound grows through the year: part uniform, part leaning to recent months.
    u = rng.random()
    days = HISTORY_DAYS * (u if rng.random() < 0.65 else 1 - math.sqrt(u))
    return _jitter(ctx.days_ago(days), rng)


def _jitter(when: dt.datetime, rng: random.Random) -> dt.datetime:
    """The same day, at a random moment in office hours (08:00 to 19:00 UTC).

    Only the time of day moves, so every date keeps its distance from "today" whatever day the
    demo is loaded on (weekends are not skipped for that reason).
    """
    minute = rng.randint(8 * 60, 19 * 60 - 1)
    return dt.datetime.combine(
        when.date(), dt.time(minute // 60, minute % 60, rng.randint(0, 59)), tzinfo=dt.UTC
    )


def _properties(rng: random.Random, company: Company | None, reached: set[str]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    if rng.random() < 0.9:
        properties["newsletter"] = rng.random() < (0.85 if reached == {S.SUBSCRIBER} else 0.45)
    size = company.employees if company and company.employees else 10
    if reached - {S.SUBSCRIBER} and rng.random() < 0.8:
        plan = "starter" if size < 50 else "growth" if size <= 500 else "enterprise"
        if rng.random() < 0.2:
            plan = rng.choice(["starter", "growth", "enterprise"])
        properties["plan_interest"] = plan
    if reached & {S.SQL, S.OPPORTUNITY, S.CUSTOMER}:
        properties["seats"] = max(3, min(400, int(size * rng.uniform(0.03, 0.15))))
    return properties
