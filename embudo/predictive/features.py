"""Outcomes and features: who converted and when, and each contact's fields as a numeric matrix
computed as of a cut-off (the outcome for training, now for scoring), so nothing that happened
after the outcome can leak into what the model learns."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from django.db.models import Count, F, Max, Min, Q
from django.db.models.fields.json import KeyTextTransform
from django.utils import timezone

from embudo.crm.exporting import STAGE_DATE_HEADERS
from embudo.crm.models import (
    Company,
    Contact,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
)
from embudo.db.functions import EpochSeconds
from embudo.handoff import queries as handoff_queries
from embudo.tracking.models import Event

DAY = 86_400.0
# Behaviour is counted per event type in these windows before the cut-off (and ever before).
WINDOWS_DAYS = (7, 30, 90)
MAX_EVENT_TYPES = 12
MAX_CATEGORIES = 30
# Contacts read per round trip: big enough that queries are few, small enough for memory.
CHUNK = 5000
# Contacts read per round trip when their ids are dense enough to be read as a range.
RANGE_CHUNK = 20_000
# The deals app's status of a lost deal (read through the contact's reverse relation).
DEAL_LOST = "lost"

# What the model may never learn from: the outcome itself, sales' verdicts and the dates the
# funnel records. A custom property can still leak; the leakage guard is there for those.
NEVER_FEATURES = frozenset(
    {
        "lifecycle_stage",
        "lifecycle_stage_changed_at",
        "lead_status",
        "owner",
        *STAGE_DATE_HEADERS.values(),
    }
)
# Built-in contact and company fields the model reads, by their field key.
CONTACT_CATEGORIES = ("original_source", "original_medium", "original_campaign", "job_title")
COMPANY_CATEGORIES = ("industry", "country")
COMPANY_NUMBERS = ("employees",)


# -- outcomes -----------------------------------------------------------------------------------


@dataclass
class Outcomes:
    """Contacts with a known outcome: their ids, labels (1 = became a customer) and the moment
    the outcome was known (epoch seconds), sorted by id."""

    contact_ids: np.ndarray
    labels: np.ndarray
    at: np.ndarray

    def __len__(self) -> int:
        return len(self.contact_ids)

    @property
    def positives(self) -> int:
        return int(self.labels.sum())


def outcomes() -> Outcomes:
    """Positive: reached `customer` (or beyond) in the lifecycle history, at the first time it
    did. Negative: never a customer and now `disqualified` (since it was), rejected by sales (at
    the first rejection), or never a customer whose deals were all lost (at the last loss)."""
    won_stages = [LifecycleStage.CUSTOMER, LifecycleStage.EVANGELIST]
    positive: dict[int, dt.datetime] = dict(
        LifecycleTransition.objects.filter(to_stage__in=won_stages)
        .order_by()
        .values("contact_id")
        .annotate(at=Min("changed_at"))
        .values_list("contact_id", "at")
    )
    # Contacts imported straight into `customer` with no history row still count.
    positive.update(
        Contact.objects.filter(lifecycle_stage__in=won_stages)
        .exclude(transitions__to_stage__in=won_stages)
        .values_list("pk", "lifecycle_stage_changed_at")
    )
    negative: dict[int, dt.datetime] = dict(
        Contact.objects.filter(lifecycle_stage=LifecycleStage.DISQUALIFIED).values_list(
            "pk", "lifecycle_stage_changed_at"
        )
    )
    lost = (
        Contact.objects.annotate(
            deal_count=Count("deals"),
            lost_count=Count("deals", filter=Q(deals__status=DEAL_LOST)),
            last_lost=Max("deals__closed_at"),
        )
        .filter(deal_count__gt=0, lost_count=F("deal_count"))
        .values_list("pk", "last_lost")
    )
    for contact_id, at in lost:
        if at is not None:
            negative.setdefault(contact_id, at)
    # Sales' rejections are negatives too, also those sent back to nurture rather than
    # disqualified: the model learns what sales turns down.
    for contact_id, at in handoff_queries.rejections():
        negative.setdefault(contact_id, at)
    for contact_id in positive:
        negative.pop(contact_id, None)
    ids = np.array(sorted([*positive, *negative]), dtype=np.int64)
    labels = np.array([1 if i in positive else 0 for i in ids.tolist()], dtype=np.int8)
    at = np.array(
        [(positive.get(i) or negative[i]).timestamp() for i in ids.tolist()], dtype=np.float64
    )
    return Outcomes(ids, labels, at)


def open_contacts() -> Any:
    """Contacts still in play: not customers (or beyond) and not disqualified."""
    return Contact.objects.exclude(
        lifecycle_stage__in=[
            LifecycleStage.CUSTOMER,
            LifecycleStage.EVANGELIST,
            LifecycleStage.DISQUALIFIED,
        ]
    )


# -- the feature specification ------------------------------------------------------------------


@dataclass
class Field:
    """One thing the model reads about a contact, as one or more matrix columns.

    ``kind``: ``number`` (one column), ``boolean`` (one column), ``date`` (days before the
    cut-off), ``category`` (one column per frequent value; none set = another value or blank)
    or ``events`` (counts of one event type in each window, and ever, before the cut-off).
    """

    key: str
    label: str
    kind: str
    source: str  # contact | contact_property | company | company_property | events
    name: str
    categories: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    # The values a field is set to when measuring what it contributes (see learning.explain).
    baseline: list[float] = field(default_factory=list)

    @property
    def width(self) -> int:
        return len(self.columns)


@dataclass
class FeatureSpec:
    fields: list[Field]

    @property
    def columns(self) -> list[str]:
        return [column for f in self.fields for column in f.columns]

    def slices(self) -> list[slice]:
        out, start = [], 0
        for f in self.fields:
            out.append(slice(start, start + f.width))
            start += f.width
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(f) for f in self.fields]

    @classmethod
    def from_json(cls, data: Sequence[dict[str, Any]]) -> FeatureSpec:
        return cls([Field(**item) for item in data])

    def keys(self) -> list[str]:
        return [f.key for f in self.fields]


def available_fields() -> list[tuple[str, str]]:
    """Every field key the model could read (key, label), for the exclusion settings."""
    fields = [(name, name.replace("_", " ").capitalize()) for name in CONTACT_CATEGORIES]
    for definition in PropertyDefinition.objects.order_by("object_type", "name"):
        if definition.name in NEVER_FEATURES:
            continue
        if definition.object_type == ObjectType.CONTACT:
            fields.append((definition.name, definition.label))
        else:
            fields.append((f"company.{definition.name}", f"Company {definition.label}"))
    fields += [(f"company.{n}", f"Company {n}") for n in (*COMPANY_CATEGORIES, *COMPANY_NUMBERS)]
    event_types = (
        Event.objects.filter(contact__isnull=False)
        .order_by()
        .values_list("type", flat=True)
        .distinct()[:100]
    )
    fields += [(f"events.{t}", f"{t} events") for t in event_types]
    return fields


def build_spec(
    contact_ids: np.ndarray, cutoffs: np.ndarray, *, excluded: Sequence[str] = ()
) -> FeatureSpec:
    """Choose the fields and their columns from the training contacts' data (reads them)."""
    table = read_fields(contact_ids, candidate_fields(excluded))
    return spec_from(table, np.arange(len(contact_ids)), excluded=excluded)


def candidate_fields(excluded: Sequence[str] = ()) -> list[Field]:
    """Every field the model may read, before looking at the data: the contact's source fields,
    every property by its type, the company's fields (events are chosen from the data)."""
    skip = set(excluded) | NEVER_FEATURES
    fields = [
        Field(name, name.replace("_", " ").capitalize(), "category", "contact", name)
        for name in CONTACT_CATEGORIES
    ]
    for definition in PropertyDefinition.objects.order_by("object_type", "name"):
        contact_side = definition.object_type == ObjectType.CONTACT
        kind = (
            "category"
            if definition.type in (PropertyType.TEXT, PropertyType.CHOICE)
            else str(definition.type)
        )
        fields.append(
            Field(
                definition.name if contact_side else f"company.{definition.name}",
                definition.label if contact_side else f"Company {definition.label}",
                kind,
                "contact_property" if contact_side else "company_property",
                definition.name,
            )
        )
    fields += [
        Field(f"company.{name}", f"Company {name}", "category", "company", name)
        for name in COMPANY_CATEGORIES
    ]
    fields += [
        Field(f"company.{name}", f"Company {name}", "number", "company", name)
        for name in COMPANY_NUMBERS
    ]
    return [f for f in fields if f.key not in skip and f.name not in NEVER_FEATURES]


def spec_from(table: FieldTable, rows: np.ndarray, *, excluded: Sequence[str] = ()) -> FeatureSpec:
    """The feature specification learned from ``rows`` of ``table`` (the training contacts).

    Text properties become categories (their frequent values); a text field that is nearly
    unique per contact (a name, an id) says nothing general and is left out. Company fields
    count once per contact working there, as the model sees them.
    """
    skip = set(excluded) | NEVER_FEATURES
    n = len(rows)
    min_count = max(3, int(n * 0.001))
    fields: list[Field] = []
    for f in table.fields:
        values = table.values[f.key][rows]
        if f.kind != "category":
            if f.source != "company" or table.has_companies:
                fields.append(replace(f, columns=[f.key]))
            continue
        counts = Counter(str(v) for v in values[table.is_set(values)].tolist())
        if not counts or (len(counts) > 50 and len(counts) > 0.5 * n):
            continue  # nothing known, or an identifier rather than a category
        kept = [v for v, c in counts.most_common(MAX_CATEGORIES) if c >= min_count]
        if kept:
            fields.append(replace(f, categories=kept, columns=[f"{f.key}={v}" for v in kept]))
    event_types = list(
        Event.objects.filter(contact_id__in=_id_sample(table.contact_ids[rows]))
        .order_by()
        .values("type")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .values_list("type", flat=True)[:MAX_EVENT_TYPES]
    )
    for event_type in event_types:
        key = f"events.{event_type}"
        if key in skip:
            continue
        columns = [f"{key}.{days}d" for days in WINDOWS_DAYS] + [f"{key}.ever"]
        fields.append(
            Field(key, f"{event_type} events", "events", "events", event_type, columns=columns)
        )
    return FeatureSpec(fields)


def _id_sample(contact_ids: np.ndarray, size: int = 20_000) -> list[int]:
    """Enough of the contacts to tell which event types are common, without a giant IN list."""
    if len(contact_ids) <= size:
        return contact_ids.tolist()
    step = len(contact_ids) / size
    return contact_ids[(np.arange(size) * step).astype(np.int64)].tolist()


# -- reading the fields -------------------------------------------------------------------------


@dataclass
class FieldTable:
    """The raw values of some fields of some contacts: one array per field key (None where
    unset), rows in the order of ``contact_ids`` (sorted)."""

    contact_ids: np.ndarray
    fields: list[Field]
    values: dict[str, np.ndarray]
    has_companies: bool

    @staticmethod
    def is_set(values: np.ndarray) -> np.ndarray:
        return np.fromiter((v not in _UNSET for v in values.tolist()), bool, len(values))


# SQLite's JSON extraction answers 'null' for a JSON null (PostgreSQL answers NULL).
_UNSET = (None, "", "null")


def read_fields(contact_ids: np.ndarray, wanted: Sequence[Field]) -> FieldTable:
    """The values of ``wanted`` fields for ``contact_ids`` (sorted), a batch of contacts per
    query: properties are extracted from the JSON by the database, not decoded row by row."""
    n = len(contact_ids)
    own = [f for f in wanted if f.source in ("contact", "contact_property")]
    of_company = [f for f in wanted if f.source in ("company", "company_property")]
    selected: list[Any] = ["pk", "company_id"]
    for f in own:
        selected.append(f.name if f.source == "contact" else KeyTextTransform(f.name, "properties"))
    values = {f.key: np.full(n, None, dtype=object) for f in wanted}
    company_of = np.zeros(n, dtype=np.int64)
    for positions, batch in _batches(contact_ids, Contact.objects.all(), "pk"):
        rows = list(batch.values_list(*selected))
        if not rows:
            continue
        found = list(zip(*rows, strict=True))
        where, keep = _positions(contact_ids, positions, found[0])
        company_of[where] = np.fromiter((c or 0 for c in found[1]), np.int64, len(rows))[keep]
        for f, column in zip(own, found[2:], strict=True):
            values[f.key][where] = np.array(column, dtype=object)[keep]
    has_companies = bool(of_company) and bool(company_of.any())
    if has_companies:
        linked = np.flatnonzero(company_of > 0)
        known = np.unique(company_of[linked])
        companies = _companies(set(known.tolist()))
        which = np.searchsorted(known, company_of[linked])
        for f in of_company:
            per_company = np.full(len(known), None, dtype=object)
            for i, company_id in enumerate(known.tolist()):
                company = companies.get(company_id)
                if company is not None:
                    per_company[i] = (
                        company[f.name]
                        if f.source == "company"
                        else company["properties"].get(f.name)
                    )
            values[f.key][linked] = per_company[which]
    return FieldTable(contact_ids, list(wanted), values, has_companies)


def _batches(ids: np.ndarray, queryset: Any, column: str) -> Iterator[tuple[slice, Any]]:
    """``queryset`` narrowed to each batch of ``ids`` (sorted): by a range of ids where they
    are dense (most contacts have an outcome), else by a list, so no statement carries a giant
    list of parameters."""
    for start in range(0, len(ids), RANGE_CHUNK):
        stop = min(start + RANGE_CHUNK, len(ids))
        low, high = int(ids[start]), int(ids[stop - 1])
        if high - low < 2 * (stop - start):
            yield (
                slice(start, stop),
                queryset.filter(**{f"{column}__gte": low, f"{column}__lte": high}),
            )
            continue
        for part in range(start, stop, CHUNK):
            end = min(part + CHUNK, stop)
            yield slice(part, end), queryset.filter(**{f"{column}__in": ids[part:end].tolist()})


def _positions(
    ids: np.ndarray, positions: slice, found: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Where each found id sits in ``ids[positions]`` (as row numbers of ``ids``), and which
    found rows were asked for (a range of ids also holds contacts that were not)."""
    wanted = ids[positions]
    got = np.fromiter(found, np.int64, len(found))
    at = np.minimum(np.searchsorted(wanted, got), len(wanted) - 1)
    keep = wanted[at] == got
    return at[keep] + positions.start, keep


def _companies(company_ids: set[int]) -> dict[int, dict[str, Any]]:
    ids = sorted(company_ids)
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), CHUNK):
        for row in Company.objects.filter(pk__in=ids[start : start + CHUNK]).values(
            "id", "properties", *COMPANY_CATEGORIES, *COMPANY_NUMBERS
        ):
            row["properties"] = row["properties"] or {}
            found[row["id"]] = row
    return found


# -- the matrix ---------------------------------------------------------------------------------


def matrix(
    spec: FeatureSpec,
    contact_ids: np.ndarray,
    cutoffs: np.ndarray,
    table: FieldTable | None = None,
) -> np.ndarray:
    """The feature matrix (float32, NaN where unknown) of ``contact_ids`` (sorted), each as of
    its cut-off (epoch seconds). ``table``: their fields already read (else read here)."""
    plain = [f for f in spec.fields if f.kind != "events"]
    if table is None:
        table = read_fields(contact_ids, plain)
    out = np.full((len(contact_ids), len(spec.columns)), np.nan, dtype=np.float32)
    slices = spec.slices()
    for f, columns in zip(spec.fields, slices, strict=True):
        if f.kind != "events":
            out[:, columns] = _encode(f, table.values[f.key], cutoffs)
    event_fields = [(f, s) for f, s in zip(spec.fields, slices, strict=True) if f.kind == "events"]
    if event_fields:
        _event_counts(event_fields, contact_ids, cutoffs, out)
    return out


def _encode(f: Field, values: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    n = len(values)
    if f.kind == "category":
        index = {v: i for i, v in enumerate(f.categories)}
        codes = np.fromiter(
            (index.get(str(v), -1) if v not in _UNSET else -1 for v in values.tolist()),
            np.int64,
            n,
        )
        onehot = np.zeros((n, len(f.categories)), dtype=np.float32)
        rows = np.flatnonzero(codes >= 0)
        onehot[rows, codes[rows]] = 1.0
        return onehot
    if f.kind == "date":
        days = np.array(
            [str(v)[:10] if isinstance(v, str | dt.date) and v else "NaT" for v in values],
            dtype="datetime64[D]",
        )
        seconds = days.astype("datetime64[s]").astype(np.float64)
        seconds[np.isnat(days)] = np.nan
        return ((cutoffs - seconds) / DAY).reshape(-1, 1)
    if f.kind == "boolean":
        return np.fromiter((_yes_no(v) for v in values.tolist()), np.float64, n).reshape(-1, 1)
    try:
        # Numbers as the database hands them over (None is NaN): converted in one go.
        return np.asarray(values, dtype=np.float64).reshape(-1, 1)
    except (TypeError, ValueError):
        return np.fromiter((_number(v) for v in values.tolist()), np.float64, n).reshape(-1, 1)


def _yes_no(value: Any) -> float:
    if value in _UNSET:
        return np.nan
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "yes", "1"):
            return 1.0
        if text in ("false", "no", "0"):
            return 0.0
        return np.nan
    return 1.0 if value else 0.0


def _number(value: Any) -> float:
    if value in _UNSET:
        return np.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return np.nan


def _event_counts(
    event_fields: list[tuple[Field, slice]],
    ids: np.ndarray,
    cutoffs: np.ndarray,
    out: np.ndarray,
) -> None:
    """Counts per type and window strictly before each contact's cut-off, with numpy. Times
    are compared to the millisecond (the database's own arithmetic is that exact)."""
    by_type = {f.name: columns for f, columns in event_fields}
    codes = {name: i for i, name in enumerate(by_type)}
    cut = np.round(cutoffs, 3)
    for columns in by_type.values():
        out[:, columns] = 0.0
    events = Event.objects.filter(
        type__in=list(by_type),
        occurred_at__lt=dt.datetime.fromtimestamp(float(cutoffs.max()), tz=dt.UTC),
    )
    for positions, batch in _batches(ids, events, "contact_id"):
        rows = list(batch.values_list("contact_id", "type", EpochSeconds("occurred_at")))
        if not rows:
            continue
        contact, kinds, when = zip(*rows, strict=True)
        position, keep = _positions(ids, positions, contact)
        type_code = np.fromiter((codes[k] for k in kinds), np.int64, len(kinds))[keep]
        age_days = (cut[position] - np.round(np.asarray(when, np.float64)[keep], 3)) / DAY
        before = age_days > 0
        for event_type, columns in by_type.items():
            is_type = before & (type_code == codes[event_type])
            first = columns.start
            for offset, days in enumerate((*WINDOWS_DAYS, None)):
                mask = is_type if days is None else is_type & (age_days <= days)
                out[:, first + offset] += np.bincount(position[mask], minlength=len(ids))


def now_epoch() -> float:
    return timezone.now().timestamp()
