"""The funnel report: stage-to-stage conversion by cohort, and stage entries by period.

Every funnel report (this one, velocity, the KPIs) reads the lifecycle history the same way: one
query, built with the ORM, fetches the transitions of the contacts that entered a funnel stage in
the period as three compact numpy arrays (contact, stage rank, time); the cohort arithmetic is
vectorised numpy over them, never a Python loop over contacts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from django.core.exceptions import FieldDoesNotExist
from django.db import connection
from django.db.models import Case, F, FloatField, IntegerField, QuerySet, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from embudo.analytics import stamps
from embudo.crm.models import Contact, LifecycleStage, LifecycleTransition
from embudo.db.columns import numeric_columns, plain_rows
from embudo.db.functions import EpochSeconds, JulianMillis, epoch_of_julian_ms
from embudo.deals.periods import add_months, current
from embudo.reports import ReportError, ReportOption, ReportParams, ReportSpec, Table

# The funnel the reports follow, top to bottom; evangelists have been customers.
STAGES: tuple[str, ...] = (
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
)
STAGE_NAMES = {"lead": "Lead", "mql": "MQL", "sql": "SQL", "opportunity": "Opportunity"}
STAGE_NAMES["customer"] = "Customer"
# Ranks: funnel stages 0..4, evangelist 5 (beyond customer); a contact created straight into a
# stage has no from-stage (-2); subscriber is -1, below the funnel; disqualified stands apart.
EVANGELIST_RANK = 5
OUTSIDE_RANK = -1
CREATED_RANK = -2
DISQUALIFIED_RANK = 99
RANKS: dict[str, int] = {stage: i for i, stage in enumerate(STAGES)}
RANKS[LifecycleStage.EVANGELIST] = EVANGELIST_RANK

MODES = ("cohort", "period")
INTERVALS = ("month", "week")
BREAKDOWNS = ("none", "source", "channel", "campaign", "owner", "persona", "period")
COMPANY_FIELDS = ("industry", "country", "city", "employees")
DAY = 86400.0


# -- the request --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """Which contacts count: the dashboard's team, source and persona filters."""

    team_id: int | None = None
    source: str | None = None
    persona: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"team": self.team_id, "source": self.source, "persona": self.persona}

    @property
    def narrowing(self) -> bool:
        """Whether any filter is set (none: every contact counts)."""
        return self != Filters()


@dataclass(frozen=True)
class FunnelRequest:
    date_from: dt.date
    date_to: dt.date  # inclusive
    mode: str = "cohort"  # cohort: entered then followed; period: entries counted per period
    breakdown: str = "none"
    window_days: int | None = None  # cohort: count a conversion only this many days after entry
    interval: str = "month"  # for breakdown=period and mode=period
    filters: Filters = field(default_factory=Filters)


def check_breakdown(breakdown: str) -> None:
    if breakdown in BREAKDOWNS:
        if breakdown == "persona" and not persona_available():
            raise ReportError(
                "breakdown=persona needs personas, which the segments app does not offer yet"
            )
        return
    if breakdown.startswith("company."):
        name = breakdown.removeprefix("company.")
        if name in COMPANY_FIELDS or name in company_properties():
            return
        known = ", ".join([*COMPANY_FIELDS, *company_properties()])
        raise ReportError(f"{breakdown!r}: the company has no field {name!r}; it has {known}")
    raise ReportError(
        f"breakdown={breakdown!r} is not one of {', '.join(BREAKDOWNS)} or company.FIELD "
        f"(FIELD: {', '.join([*COMPANY_FIELDS, *company_properties()])})"
    )


def company_properties() -> list[str]:
    from embudo.crm.queries import property_definitions

    return list(property_definitions("company").values_list("name", flat=True))


def persona_available() -> bool:
    """Personas come from the segments app, which keeps each contact's current persona in a
    one-to-one row (``Contact.persona_assignment``); the breakdown lights up once it exists."""
    try:
        Contact._meta.get_field("persona_assignment")
    except FieldDoesNotExist:
        return False
    return True


def day_start(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in the site's time zone (settings.TIME_ZONE)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def period_bounds(request: FunnelRequest) -> tuple[dt.datetime, dt.datetime]:
    if request.date_to < request.date_from:
        raise ReportError(
            f"the period ends ({request.date_to}) before it starts ({request.date_from})"
        )
    return day_start(request.date_from), day_start(request.date_to + dt.timedelta(days=1))


def buckets(date_from: dt.date, date_to: dt.date, interval: str) -> list[tuple[dt.date, str]]:
    """The months (or ISO weeks) the period touches, each as (first day, label), in order."""
    if interval == "week":
        day = date_from - dt.timedelta(days=date_from.weekday())
        out = []
        while day <= date_to:
            year, week, _ = day.isocalendar()
            out.append((day, f"{year}-W{week:02d}"))
            day += dt.timedelta(days=7)
        return out
    day = dt.date(date_from.year, date_from.month, 1)
    out = []
    while day <= date_to:
        out.append((day, f"{day:%Y-%m}"))
        day = add_months(day, 1)
    return out


def bucket_of(times: np.ndarray, starts: Sequence[dt.date]) -> np.ndarray:
    """The bucket index of each epoch time; the borders are local midnights, so a transition at
    00:30 local time on the 1st falls in the new month even when it is the 31st in UTC."""
    edges = np.array([day_start(d).timestamp() for d in starts[1:]], dtype=np.float64)
    return np.searchsorted(edges, times, side="right")


# -- reading the history ------------------------------------------------------------------------


def _rank(column: str, blank: int) -> Case:
    whens = [When(**{column: stage}, then=Value(rank)) for stage, rank in RANKS.items()]
    whens.append(When(**{column: LifecycleStage.DISQUALIFIED}, then=Value(DISQUALIFIED_RANK)))
    whens.append(When(**{column: ""}, then=Value(blank)))
    return Case(*whens, default=Value(OUTSIDE_RANK), output_field=IntegerField())


def contacts_in_scope(filters: Filters) -> QuerySet[Contact]:
    contacts = Contact.objects.all()
    if filters.team_id is not None:
        contacts = contacts.filter(owner__sales_team_membership__team_id=filters.team_id)
    if filters.source is not None:
        contacts = contacts.filter(original_source=filters.source)
    if filters.persona is not None:
        if not persona_available():
            raise ReportError("the persona filter needs personas, which do not exist yet")
        persona = filters.persona
        if persona.isdigit():
            contacts = contacts.filter(persona_assignment__persona_id=int(persona))
        else:
            contacts = contacts.filter(persona_assignment__persona__name=persona)
    return contacts


@dataclass
class History:
    """The lifecycle history of the contacts that entered a funnel stage in a period.

    Rows are ordered by contact, time and id; ``contact`` indexes ``ids`` (the contacts' ids).
    """

    ids: np.ndarray  # contact ids, sorted
    contact: np.ndarray  # per row: index into ids
    rank: np.ndarray  # per row: the stage entered (RANKS), or OUTSIDE/DISQUALIFIED
    from_rank: np.ndarray  # per row: the stage left (CREATED_RANK for a new contact)
    at: np.ndarray  # per row: epoch seconds
    start: float
    end: float
    contact_ids: QuerySet[Any]  # the contacts concerned, as a subquery of their ids

    @property
    def size(self) -> int:
        return len(self.ids)


# One dashboard page runs several reports over the same period and filters: inside
# shared_history() they read the history (and each breakdown's groups) once.
_SHARED: ContextVar[dict[Any, Any] | None] = ContextVar("analytics_shared", default=None)


@contextmanager
def shared_history() -> Iterator[None]:
    if _SHARED.get() is not None:
        # Already inside one (a report that shares its own reads, run by the page): keep it.
        yield
        return
    token = _SHARED.set({})
    try:
        yield
    finally:
        _SHARED.reset(token)


def _shared(key: Any, build: Callable[[], Any]) -> Any:
    cache = _SHARED.get()
    if cache is None:
        return build()
    if key not in cache:
        cache[key] = build()
    return cache[key]


def load_history(request: FunnelRequest) -> History:
    key = ("history", request.date_from, request.date_to, request.filters)
    return _shared(key, lambda: _remembered_history(request))  # type: ignore[no-any-return]


def _remembered_history(request: FunnelRequest) -> History:
    """Without filters the history is the lifecycle table's alone, so it is kept until that
    table changes (see embudo.analytics.stamps); the filters read contacts, which are not."""
    if request.filters.narrowing:
        return _load_history(request)
    start, end = period_bounds(request)
    key = ("history", start.timestamp(), end.timestamp())
    tables = ("crm_lifecycletransition",)
    return stamps.remembered(key, tables, lambda: _load_history(request))  # type: ignore[no-any-return]


def _load_history(request: FunnelRequest) -> History:
    start, end = period_bounds(request)
    entered = LifecycleTransition.objects.filter(
        to_stage__in=STAGES, changed_at__gte=start, changed_at__lt=end
    )
    scope = contacts_in_scope(request.filters)
    if scope.query.where:
        entered = entered.filter(contact__in=scope.values("pk"))
    # Moves before the period never count: a cohort is anchored in the period, conversions and
    # stays come after the anchor, and a skip is read from the anchoring move's from-stage.
    sqlite = connection.vendor == "sqlite"
    query = (
        LifecycleTransition.objects.filter(
            contact_id__in=entered.values("contact_id"), changed_at__gte=start
        )
        .annotate(
            r=_rank("to_stage", OUTSIDE_RANK),
            fr=_rank("from_stage", CREATED_RANK),
            t=JulianMillis("changed_at")
            if sqlite
            else EpochSeconds("changed_at", to_millisecond=True),
        )
        .values_list("contact_id", "r", "fr", "t")
        .order_by("contact_id", "changed_at", "id")
    )
    contact, rank, from_rank, t = numeric_columns(
        query, [np.int64, np.int16, np.int16, np.int64 if sqlite else np.float64]
    )
    at = epoch_of_julian_ms(t) if sqlite else t
    contact, rank, from_rank, at = _in_history_order(contact, rank, from_rank, at)
    ids, index = np.unique(contact, return_inverse=True)
    return History(
        ids=ids,
        contact=index.astype(np.int64),
        rank=rank,
        from_rank=from_rank,
        at=at,
        start=start.timestamp(),
        end=end.timestamp(),
        contact_ids=entered.values("contact_id"),
    )


def _in_history_order(*columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """The rows by contact and time. The query orders them (ties in time by id), and SQLite
    keeps a subquery's order for the aggregate that reads it; should a database not, they are
    sorted here (stably, so ties stay in the order read)."""
    contact, at = columns[0], columns[-1]
    later = contact[1:] > contact[:-1]
    if np.all(later | ((contact[1:] == contact[:-1]) & (at[1:] >= at[:-1]))):
        return columns
    order = np.lexsort((at, contact))
    return tuple(column[order] for column in columns)


@dataclass
class Cohort:
    """The contacts that entered one stage in the period, each once, at its first entry."""

    rows: np.ndarray  # index of the anchoring transition in the history
    contacts: np.ndarray  # contact index of each
    anchor: np.ndarray  # epoch of the first entry in the period

    def anchor_by_contact(self, size: int) -> np.ndarray:
        out = np.full(size, np.nan)
        out[self.contacts] = self.anchor
        return out


def cohort(history: History, rank: int) -> Cohort:
    mask = (history.rank == rank) & (history.at >= history.start) & (history.at < history.end)
    rows = np.flatnonzero(mask)
    # Rows are in contact-then-time order: each contact's first row is its first entry, so a
    # recycled contact that entered the stage twice counts once.
    contacts, first = np.unique(history.contact[rows], return_index=True)
    rows = rows[first]
    return Cohort(rows=rows, contacts=contacts, anchor=history.at[rows])


def first_reach(
    history: History, group: Cohort, min_rank: int, window_days: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """For each cohort contact that later reached ``min_rank`` or beyond (at or after its entry,
    within the window): the contact index and the history row of its first such transition."""
    anchor = group.anchor_by_contact(history.size)
    candidates = np.flatnonzero((history.rank >= min_rank) & (history.rank <= EVANGELIST_RANK))
    since = anchor[history.contact[candidates]]
    with np.errstate(invalid="ignore"):
        ok = history.at[candidates] >= since  # NaN (not in the cohort) compares False
        if window_days is not None:
            ok &= history.at[candidates] <= since + window_days * DAY
    candidates = candidates[ok]
    contacts, first = np.unique(history.contact[candidates], return_index=True)
    return contacts, candidates[first]


# -- breakdowns ---------------------------------------------------------------------------------


@dataclass
class Groups:
    """A breakdown: the group code of each contact (or of each entry, by period) and the labels."""

    labels: list[str]
    keys: list[str]
    by_contact: np.ndarray | None  # code per contact index; None: by the entry's period
    starts: list[dt.date] = field(default_factory=list)

    def codes(self, contacts: np.ndarray, times: np.ndarray) -> np.ndarray:
        if self.by_contact is None:
            return bucket_of(times, self.starts)
        return self.by_contact[contacts]


def _key_expression(breakdown: str) -> Any:
    if breakdown == "source":
        return F("original_source")
    if breakdown == "campaign":
        return F("original_campaign")
    if breakdown == "owner":
        return Coalesce(Cast("owner_id", output_field=FloatField()), Value(-1.0))
    if breakdown == "channel":
        from django.db.models import OuterRef, Subquery

        from embudo.tracking.models import Touchpoint

        first = (
            Touchpoint.objects.filter(contact_id=OuterRef("pk"))
            .order_by("occurred_at", "id")
            .values("channel")[:1]
        )
        return Coalesce(Subquery(first), Value(""))
    if breakdown == "persona":
        return Coalesce(F("persona_assignment__persona__name"), Value(""))
    name = breakdown.removeprefix("company.")
    if name in COMPANY_FIELDS:
        if name == "employees":
            return Coalesce(Cast("company__employees", output_field=FloatField()), Value(-1.0))
        return Coalesce(F(f"company__{name}"), Value(""))
    return Coalesce(KeyTextTransform(name, "company__properties"), Value(""))


def groups_for(history: History, request: FunnelRequest) -> Groups:
    key = (
        "groups",
        request.date_from,
        request.date_to,
        request.filters,
        request.breakdown,
        request.interval,
    )
    return _shared(key, lambda: _groups_for(history, request))  # type: ignore[no-any-return]


def _groups_for(history: History, request: FunnelRequest) -> Groups:
    if request.breakdown == "none":
        return Groups(["All"], ["all"], np.zeros(history.size, dtype=np.int64))
    if request.breakdown == "period":
        found = buckets(request.date_from, request.date_to, request.interval)
        return Groups(
            [label for _, label in found],
            [str(day) for day, _ in found],
            None,
            [day for day, _ in found],
        )
    if not history.size:
        return Groups([], [], np.zeros(0, dtype=np.int64))
    tables = _GROUP_TABLES.get(request.breakdown.split(".")[0])
    if tables is None or request.filters.narrowing:
        values, codes = _group_codes(history, request.breakdown)
    else:
        # Kept with the history they index, until a column they come from changes.
        start, end = period_bounds(request)
        key = ("groups", start.timestamp(), end.timestamp(), request.breakdown)
        values, codes = stamps.remembered(
            key, tables, lambda: _group_codes(history, request.breakdown)
        )
    # Labels are read afresh (an owner's name is no stamped column).
    labels = _group_labels(request.breakdown, values)
    return Groups(labels, [_key_text(v) for v in values], codes)


# What each breakdown's groups are read from, besides the lifecycle history (persona: another
# app's tables, not stamped, so read every time).
_GROUP_TABLES = {
    "source": ("crm_lifecycletransition", "crm_contact"),
    "campaign": ("crm_lifecycletransition", "crm_contact"),
    "owner": ("crm_lifecycletransition", "crm_contact"),
    "channel": ("crm_lifecycletransition", "tracking_touchpoint"),
    "company": ("crm_lifecycletransition", "crm_contact", "crm_company"),
}


def _group_codes(history: History, breakdown: str) -> tuple[list[Any], np.ndarray]:
    """Each group's key value, and the group code of every contact of the history."""
    rows = plain_rows(
        Contact.objects.filter(pk__in=history.contact_ids)
        .annotate(k=_key_expression(breakdown))
        .values_list("pk", "k")
        .order_by("pk")
    )
    pks = np.array([r[0] for r in rows], dtype=np.int64)
    numeric = breakdown == "owner" or breakdown == "company.employees"
    raw = [r[1] for r in rows]
    keys = np.array(raw, dtype=np.float64) if numeric else np.array(raw, dtype=str)
    # Transitions cascade with their contact, so every id is there; clip in case one was
    # deleted between the two reads.
    where = np.minimum(np.searchsorted(pks, history.ids), len(pks) - 1)
    distinct, codes = np.unique(keys[where], return_inverse=True)
    return distinct.tolist(), codes.astype(np.int64)


def _key_text(value: Any) -> str:
    if isinstance(value, float):
        return "" if value < 0 else str(int(value))
    return str(value)


def _group_labels(breakdown: str, values: list[Any]) -> list[str]:
    if breakdown == "owner":
        from django.contrib.auth import get_user_model

        ids = [int(v) for v in values if v is not None and float(v) >= 0]
        users = {
            u.pk: (u.get_full_name() or u.get_username())
            for u in get_user_model().objects.filter(pk__in=ids)
        }
        return [
            users.get(int(v), f"user {int(v)}") if float(v) >= 0 else "Unassigned" for v in values
        ]
    if breakdown == "channel":
        from embudo.tracking.models import Channel

        names = dict(Channel.choices)
        return [str(names.get(v, v)) if v else "No touchpoint" for v in values]
    if breakdown == "company.employees":
        return [str(int(v)) if float(v) >= 0 else "Unknown" for v in values]
    blank = {"source": "No source", "campaign": "No campaign", "persona": "No persona"}
    return [str(v) if v not in ("", None) else blank.get(breakdown, "Unknown") for v in values]


# -- the funnel ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunnelStep:
    stage: str
    entered: int  # cohort: contacts that entered the stage in the period; period: entries
    contacts: int  # distinct contacts among the entries (cohort: same as entered)
    skipped_previous: int  # entered straight from below the previous stage (or were created so)
    converted: int | None = None  # cohort: reached the next stage or beyond afterwards
    skipped_next: int | None = None  # of those, jumped over the next stage

    @property
    def rate(self) -> float | None:
        if self.converted is None or not self.entered:
            return None
        return round(self.converted / self.entered, 4)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "entered": self.entered,
            "contacts": self.contacts,
            "skipped_previous": self.skipped_previous,
            "converted": self.converted,
            "skipped_next": self.skipped_next,
            "rate": self.rate,
        }


@dataclass(frozen=True)
class FunnelGroup:
    key: str
    label: str
    steps: list[FunnelStep]

    def step(self, stage: str) -> FunnelStep:
        return next(s for s in self.steps if s.stage == stage)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "steps": [s.to_dict() for s in self.steps]}


def skip_label(stage: str) -> str:
    """How a skipped stage is named, e.g. "entered sql without mql"."""
    rank = RANKS[stage]
    return f"entered {stage} without {STAGES[rank - 1]}" if rank else ""


def jump_label(stage: str) -> str:
    """How a conversion that skipped the next stage is named, e.g. "went past sql without it"."""
    rank = RANKS[stage]
    if rank >= len(STAGES) - 1:
        return ""
    return f"went past {STAGES[rank + 1]} without entering it"


@dataclass(frozen=True)
class FunnelResult:
    request: FunnelRequest
    groups: list[FunnelGroup]
    total: FunnelGroup
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "report": "funnel",
            "request": {
                "from": r.date_from.isoformat(),
                "to": r.date_to.isoformat(),
                "mode": r.mode,
                "breakdown": r.breakdown,
                "window_days": r.window_days,
                "interval": r.interval,
                "time_zone": timezone.get_current_timezone_name(),
                **r.filters.describe(),
            },
            "stages": list(STAGES),
            "labels": {
                "skipped_previous": {s: skip_label(s) for s in STAGES if skip_label(s)},
                "skipped_next": {s: jump_label(s) for s in STAGES if jump_label(s)},
            },
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
            "notes": self.notes,
        }

    def table(self) -> Table:
        by = (
            "Period"
            if self.request.mode == "period" or self.request.breakdown == "period"
            else "Group"
        )
        if self.request.mode == "period":
            header = [by, "Stage", "Entries", "Contacts", "Entered skipping the previous stage"]
            rows = [
                [g.label, s.stage, s.entered, s.contacts, s.skipped_previous]
                for g in [*self.groups, self.total]
                for s in g.steps
            ]
            return Table(header, rows)
        header = [
            by,
            "Stage",
            "Entered",
            "Entered skipping the previous stage",
            "Converted to the next stage",
            "Converted skipping the next stage",
            "Conversion rate",
        ]
        rows = [
            [g.label, s.stage, s.entered, s.skipped_previous, s.converted, s.skipped_next, s.rate]
            for g in [*self.groups, self.total]
            for s in g.steps
        ]
        return Table(header, rows)

    def chart(self) -> dict[str, Any]:
        return {
            "kind": "funnel",
            "x": [STAGE_NAMES[s] for s in STAGES],
            "series": [{"name": "Entered", "values": [s.entered for s in self.total.steps]}],
        }

    def headline(self) -> list[tuple[str, Any]]:
        lead, customer = self.total.step("lead"), self.total.step("customer")
        return [("Leads", lead.entered), ("Customers", customer.entered)]


def funnel(request: FunnelRequest) -> FunnelResult:
    """Stage-to-stage conversion by cohort, or stage entries by period, with a breakdown."""
    if request.mode not in MODES:
        raise ReportError(f"mode={request.mode!r} is not one of {', '.join(MODES)}")
    if request.interval not in INTERVALS:
        raise ReportError(f"interval={request.interval!r} is not one of {', '.join(INTERVALS)}")
    if request.window_days is not None and request.window_days < 1:
        raise ReportError(f"window={request.window_days} must be at least 1 day")
    check_breakdown(request.breakdown)
    if request.mode == "period" and request.breakdown == "none":
        # Entries by period are counted in each period of the range.
        request = replace(request, breakdown="period")
    history = load_history(request)
    groups = groups_for(history, request)
    if request.mode == "period":
        counts = _period_counts(history, request, groups)
    else:
        counts = _cohort_counts(history, request, groups)
    whole = Groups(["Total"], ["total"], np.zeros(history.size, dtype=np.int64))
    if request.mode == "period":
        total_counts = _period_counts(history, request, whole)
    else:
        total_counts = _cohort_counts(history, request, whole)
    built = [
        FunnelGroup(key, label, _steps(counts[g], request.mode))
        for g, (key, label) in enumerate(zip(groups.keys, groups.labels, strict=True))
        if request.breakdown == "period" or (request.breakdown != "none" and counts[g, :, 0].any())
    ]
    notes = [
        "cohort: the contacts that entered each stage in the period, each counted once (at its "
        "first entry in the period, so recycled contacts count once), followed to the next stage "
        "or any stage beyond it"
        + (f" within {request.window_days} days" if request.window_days else " at any later time")
        if request.mode == "cohort"
        else "period: stage entries in each period (a contact recycled through a stage twice "
        "counts as two entries and one contact)",
        f"periods and their borders are in the time zone {timezone.get_current_timezone_name()}",
    ]
    total = FunnelGroup("total", "Total", _steps(total_counts[0], request.mode))
    return FunnelResult(request, built, total, notes)


def _steps(counts: np.ndarray, mode: str) -> list[FunnelStep]:
    steps = []
    for k, stage in enumerate(STAGES):
        entered, contacts, skipped, converted, jumped = (int(x) for x in counts[k])
        last = k == len(STAGES) - 1
        steps.append(
            FunnelStep(
                stage=stage,
                entered=entered,
                contacts=contacts,
                skipped_previous=skipped,
                converted=None if mode == "period" or last else converted,
                skipped_next=None if mode == "period" or last else jumped,
            )
        )
    return steps


def _count(codes: np.ndarray, n: int) -> np.ndarray:
    return np.bincount(codes, minlength=n)[:n] if len(codes) else np.zeros(n, dtype=np.int64)


def _skipped(history: History, rows: np.ndarray, rank: int) -> np.ndarray:
    """Which of these entries came from below the previous stage (a contact imported as SQL, a
    lead moved straight to SQL). Entries from a later stage or from disqualified are not skips."""
    if rank == 0:
        return np.zeros(len(rows), dtype=bool)
    return history.from_rank[rows] < rank - 1


def _cohort_counts(history: History, request: FunnelRequest, groups: Groups) -> np.ndarray:
    n = len(groups.labels)
    out = np.zeros((n, len(STAGES), 5), dtype=np.int64)
    for k in range(len(STAGES)):
        group = cohort(history, k)
        codes = groups.codes(group.contacts, group.anchor)
        out[:, k, 0] = out[:, k, 1] = _count(codes, n)
        out[:, k, 2] = _count(codes[_skipped(history, group.rows, k)], n)
        if k == len(STAGES) - 1:
            continue
        reached, first_rows = first_reach(history, group, k + 1, request.window_days)
        position = np.searchsorted(group.contacts, reached)
        reached_codes = codes[position]
        out[:, k, 3] = _count(reached_codes, n)
        # Converted by jumping: the first transition at or beyond the next stage went further.
        out[:, k, 4] = _count(reached_codes[history.rank[first_rows] > k + 1], n)
    return out


def _period_counts(history: History, request: FunnelRequest, groups: Groups) -> np.ndarray:
    n = len(groups.labels)
    out = np.zeros((n, len(STAGES), 5), dtype=np.int64)
    in_period = (history.at >= history.start) & (history.at < history.end)
    for k in range(len(STAGES)):
        rows = np.flatnonzero(in_period & (history.rank == k))
        codes = groups.codes(history.contact[rows], history.at[rows])
        out[:, k, 0] = _count(codes, n)
        out[:, k, 2] = _count(codes[_skipped(history, rows, k)], n)
        # Distinct contacts per group: unique (group, contact) pairs.
        pairs = np.unique(codes * max(history.size, 1) + history.contact[rows])
        out[:, k, 1] = _count(pairs // max(history.size, 1), n)
    return out


# -- the registry entry -------------------------------------------------------------------------


def default_range() -> tuple[dt.date, dt.date]:
    """The last three months, this one included."""
    this = current("month")
    return add_months(this.start, -2), this.end - dt.timedelta(days=1)


def _int(params: ReportParams, name: str, what: str) -> int | None:
    raw = params.option(name).strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise ReportError(f"{name}={raw!r} is not {what}")
    return int(raw)


def filters_from(params: ReportParams) -> Filters:
    return Filters(
        team_id=_int(params, "team", "a team id"),
        source=params.option("source") or None,
        persona=params.option("persona") or None,
    )


def request_from(params: ReportParams) -> FunnelRequest:
    start, end = default_range()
    return FunnelRequest(
        date_from=params.date_from or start,
        date_to=params.date_to or end,
        mode=params.option("mode", "cohort"),
        breakdown=params.option("breakdown", "none"),
        window_days=_int(params, "window", "a number of days"),
        interval=params.option("interval", "month"),
        filters=filters_from(params),
    )


def _run(params: ReportParams) -> FunnelResult:
    return funnel(request_from(params))


FILTER_OPTIONS = (
    ReportOption("team", "only contacts owned by this sales team's members (team id)"),
    ReportOption("source", "only contacts with this original source"),
    ReportOption("persona", "only contacts of this persona"),
)
BREAKDOWN_OPTION = ReportOption(
    "breakdown",
    "group by none, source, channel (first touch), campaign, owner, persona, period, or "
    "company.FIELD (industry, country, city, employees or a company property)",
    default="none",
)
SPEC = ReportSpec(
    name="funnel",
    description="Stage-to-stage conversion lead → mql → sql → opportunity → customer, by cohort "
    "or by period, with breakdowns",
    run=_run,
    permission="crm.view_lifecycletransition",
    options=(
        ReportOption(
            "mode", "cohort (entered, then followed) or period (entries)", MODES, "cohort"
        ),
        BREAKDOWN_OPTION,
        ReportOption("window", "cohort: count conversions only within this many days"),
        ReportOption("interval", "period length for mode=period and breakdown=period", INTERVALS),
        *FILTER_OPTIONS,
    ),
)
