"""Outcomes and features: who converted and when, and each contact's fields as a numeric matrix
computed as of a cut-off (the outcome for training, now for scoring), so nothing that happened
after the outcome can leak into what the model learns."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.db.models import Count, F, Max, Min, Q
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
from embudo.handoff import queries as handoff_queries
from embudo.tracking.models import Event

DAY = 86_400.0
# Behaviour is counted per event type in these windows before the cut-off (and ever before).
WINDOWS_DAYS = (7, 30, 90)
MAX_EVENT_TYPES = 12
MAX_CATEGORIES = 30
# Contacts read per round trip: big enough that queries are few, small enough for memory.
CHUNK = 5000
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
    """Choose the fields and their columns from the training contacts' data.

    Text properties become categories (their frequent values); a text field that is nearly
    unique per contact (a name, an id) says nothing general and is left out.
    """
    skip = set(excluded) | NEVER_FEATURES
    fields: list[Field] = []
    definitions = list(PropertyDefinition.objects.order_by("object_type", "name"))
    text_values: dict[str, Counter[str]] = {}
    # How many of the training contacts work at each company: a company's values count once
    # per contact, as the model sees them.
    per_company: Counter[int] = Counter()
    n = len(contact_ids)

    def count_text(key: str, value: Any, times: int = 1) -> None:
        if value not in (None, ""):
            text_values.setdefault(key, Counter())[str(value)] += times

    for rows in _contact_rows(contact_ids):
        for row in rows:
            for name in CONTACT_CATEGORIES:
                count_text(name, row[name])
            properties = row["properties"] or {}
            for definition in definitions:
                if definition.object_type == ObjectType.CONTACT and definition.type in (
                    PropertyType.TEXT,
                    PropertyType.CHOICE,
                ):
                    count_text(definition.name, properties.get(definition.name))
            if row["company_id"]:
                per_company[row["company_id"]] += 1
    companies = _companies(set(per_company))
    for company_id, company in companies.items():
        times = per_company[company_id]
        for name in COMPANY_CATEGORIES:
            count_text(f"company.{name}", company[name], times)
        for definition in definitions:
            if definition.object_type == ObjectType.COMPANY and definition.type in (
                PropertyType.TEXT,
                PropertyType.CHOICE,
            ):
                value = company["properties"].get(definition.name)
                count_text(f"company.{definition.name}", value, times)

    min_count = max(3, int(n * 0.001))

    def category(key: str, label: str, source: str, name: str) -> None:
        counts = text_values.get(key)
        if key in skip or not counts:
            return
        if len(counts) > 50 and len(counts) > 0.5 * n:
            return  # an identifier, not a category
        values = [v for v, c in counts.most_common(MAX_CATEGORIES) if c >= min_count]
        if values:
            fields.append(
                Field(
                    key,
                    label,
                    "category",
                    source,
                    name,
                    categories=values,
                    columns=[f"{key}={v}" for v in values],
                )
            )

    for name in CONTACT_CATEGORIES:
        category(name, name.replace("_", " ").capitalize(), "contact", name)
    for definition in definitions:
        contact_side = definition.object_type == ObjectType.CONTACT
        key = definition.name if contact_side else f"company.{definition.name}"
        source = "contact_property" if contact_side else "company_property"
        label = definition.label if contact_side else f"Company {definition.label}"
        if key in skip or definition.name in NEVER_FEATURES:
            continue
        if definition.type in (PropertyType.TEXT, PropertyType.CHOICE):
            category(key, label, source, definition.name)
        else:
            fields.append(
                Field(key, label, definition.type, source, definition.name, columns=[key])
            )
    for name in COMPANY_CATEGORIES:
        category(f"company.{name}", f"Company {name}", "company", name)
    for name in COMPANY_NUMBERS:
        key = f"company.{name}"
        if key not in skip and companies:
            fields.append(Field(key, f"Company {name}", "number", "company", name, columns=[key]))

    event_types = list(
        Event.objects.filter(contact_id__in=_id_sample(contact_ids))
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
    spec = FeatureSpec(fields)
    return spec


def _id_sample(contact_ids: np.ndarray, size: int = 20_000) -> list[int]:
    """Enough of the contacts to tell which event types are common, without a giant IN list."""
    if len(contact_ids) <= size:
        return contact_ids.tolist()
    step = len(contact_ids) / size
    return contact_ids[(np.arange(size) * step).astype(np.int64)].tolist()


# -- the matrix ---------------------------------------------------------------------------------


def matrix(spec: FeatureSpec, contact_ids: np.ndarray, cutoffs: np.ndarray) -> np.ndarray:
    """The feature matrix (float32, NaN where unknown) of ``contact_ids`` (sorted), each as of
    its cut-off (epoch seconds)."""
    out = np.full((len(contact_ids), len(spec.columns)), np.nan, dtype=np.float32)
    for start, block in _blocks(spec, contact_ids, cutoffs):
        out[start : start + len(block)] = block
    return out


def _blocks(
    spec: FeatureSpec, contact_ids: np.ndarray, cutoffs: np.ndarray
) -> Iterator[tuple[int, np.ndarray]]:
    slices = spec.slices()
    needs_company = any(f.source in ("company", "company_property") for f in spec.fields)
    event_fields = [(f, s) for f, s in zip(spec.fields, slices, strict=True) if f.kind == "events"]
    for start in range(0, len(contact_ids), CHUNK):
        ids = contact_ids[start : start + CHUNK]
        cut = cutoffs[start : start + CHUNK]
        rows = next(_contact_rows(ids), [])
        by_id = {row["id"]: row for row in rows}
        ordered = [by_id.get(i) or _EMPTY_ROW for i in ids.tolist()]
        companies = (
            _companies({r["company_id"] for r in ordered if r["company_id"]})
            if needs_company
            else {}
        )
        block = np.full((len(ids), len(spec.columns)), np.nan, dtype=np.float32)
        for f, columns in zip(spec.fields, slices, strict=True):
            if f.kind == "events":
                continue
            values = _raw_values(f, ordered, companies)
            block[:, columns] = _encode(f, values, cut)
        if event_fields:
            _event_counts(event_fields, ids, cut, block)
        yield start, block


_EMPTY_ROW: dict[str, Any] = {
    "id": None,
    "properties": {},
    "company_id": None,
    **{name: "" for name in CONTACT_CATEGORIES},
}


def _contact_rows(contact_ids: np.ndarray) -> Iterator[list[dict[str, Any]]]:
    columns = ("id", "properties", "company_id", *CONTACT_CATEGORIES)
    for start in range(0, len(contact_ids), CHUNK):
        ids = contact_ids[start : start + CHUNK].tolist()
        yield list(Contact.objects.filter(pk__in=ids).values(*columns))


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


def _raw_values(
    f: Field, rows: list[dict[str, Any]], companies: dict[int, dict[str, Any]]
) -> list[Any]:
    if f.source == "contact":
        return [row[f.name] for row in rows]
    if f.source == "contact_property":
        return [(row["properties"] or {}).get(f.name) for row in rows]
    company_rows = [companies.get(row["company_id"]) if row["company_id"] else None for row in rows]
    if f.source == "company":
        return [c[f.name] if c else None for c in company_rows]
    return [c["properties"].get(f.name) if c else None for c in company_rows]


def _encode(f: Field, values: list[Any], cutoffs: np.ndarray) -> np.ndarray:
    n = len(values)
    if f.kind == "category":
        index = {v: i for i, v in enumerate(f.categories)}
        codes = np.fromiter(
            (index.get(str(v), -1) if v not in (None, "") else -1 for v in values), np.int64, n
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
    return np.fromiter((_number(v) for v in values), np.float64, n).reshape(-1, 1)


def _number(value: Any) -> float:
    if value is None or value == "":
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
    block: np.ndarray,
) -> None:
    """Counts per type and window strictly before each contact's cut-off, with numpy."""
    by_type = {f.name: columns for f, columns in event_fields}
    rows = list(
        Event.objects.filter(
            contact_id__in=ids.tolist(),
            type__in=list(by_type),
            occurred_at__lt=dt.datetime.fromtimestamp(float(cutoffs.max()), tz=dt.UTC),
        ).values_list("contact_id", "type", "occurred_at")
    )
    for columns in by_type.values():
        block[:, columns] = 0.0
    if not rows:
        return
    contact = np.fromiter((r[0] for r in rows), np.int64, len(rows))
    when = np.fromiter((r[2].timestamp() for r in rows), np.float64, len(rows))
    codes = {name: i for i, name in enumerate(by_type)}
    type_code = np.fromiter((codes[r[1]] for r in rows), np.int64, len(rows))
    position = np.searchsorted(ids, contact)
    age_days = (cutoffs[position] - when) / DAY
    before = age_days > 0
    for event_type, columns in by_type.items():
        is_type = before & (type_code == codes[event_type])
        first = columns.start
        for offset, days in enumerate((*WINDOWS_DAYS, None)):
            mask = is_type if days is None else is_type & (age_days <= days)
            block[:, first + offset] = np.bincount(position[mask], minlength=len(ids))


def now_epoch() -> float:
    return timezone.now().timestamp()
