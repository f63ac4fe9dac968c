"""Attribution: which channels and campaigns earned the customers and the revenue, under seven
models side by side (first, last, linear, U, W, time-decay and an exact Markov chain).

The journeys are read in a few set-based queries and assembled with numpy (no Python loop per
contact or touchpoint), so a million journeys take seconds. See docs/analytics.md
("Attribution") for every definition this module implements.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.analytics import markov, stamps
from embudo.analytics.funnel import FILTER_OPTIONS, Filters, contacts_in_scope, filters_from
from embudo.crm.models import LifecycleStage, LifecycleTransition
from embudo.db.columns import numeric_columns
from embudo.db.functions import EpochMillis
from embudo.deals.actions import reporting_currency
from embudo.deals.models import Deal, DealStatus
from embudo.reports import ReportError, ReportOption, ReportParams, ReportSpec, Table
from embudo.tracking.models import Campaign, Channel, Touchpoint

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MODELS = ("first_touch", "last_touch", "linear", "u_shaped", "w_shaped", "time_decay", "markov")
MODEL_LABELS = {
    "first_touch": _("First touch"),
    "last_touch": _("Last touch"),
    "linear": _("Linear"),
    "u_shaped": _("U-shaped"),
    "w_shaped": _("W-shaped"),
    "time_decay": _("Time decay"),
    "markov": _("Markov chain"),
}
BREAKDOWNS = ("channel", "campaign")
DEFAULT_LOOKBACK_DAYS = 90
DEFAULT_HALF_LIFE_DAYS = 7.0
MAX_LOOKBACK_DAYS = 3650
DAY_MS = 86_400_000
NO_CAMPAIGN = "(no campaign)"
NO_TOUCHPOINT = "(no touchpoint)"
_NEVER = np.iinfo(np.int64).min

# Stages whose entry from outside the funnel's lead levels makes someone a lead (the W-shaped
# model's first middle anchor); a contact imported straight as SQL became a lead then.
_LEAD_LEVELS = (
    LifecycleStage.LEAD,
    LifecycleStage.MQL,
    LifecycleStage.SQL,
    LifecycleStage.OPPORTUNITY,
    LifecycleStage.CUSTOMER,
)
_BEFORE_LEAD = ("", LifecycleStage.SUBSCRIBER, LifecycleStage.DISQUALIFIED)


# -- the request and the result -----------------------------------------------------------------


@dataclass(frozen=True)
class AttributionRequest:
    """Conversions (contacts entering ``customer``) between two dates, inclusive, of the
    contacts the filters keep (team, original source, persona; none: everyone)."""

    date_from: dt.date
    date_to: dt.date
    by: str = "channel"  # channel or campaign
    models: tuple[str, ...] = MODELS
    lookback_days: int = DEFAULT_LOOKBACK_DAYS
    half_life_days: float = DEFAULT_HALF_LIFE_DAYS
    filters: Filters = field(default_factory=Filters)

    def check(self) -> None:
        if self.date_to < self.date_from:
            raise ReportError(
                f"the period ends ({self.date_to}) before it starts ({self.date_from})"
            )
        if self.by not in BREAKDOWNS:
            raise ReportError(f"by={self.by!r} is not one of {', '.join(BREAKDOWNS)}")
        unknown = [m for m in self.models if m not in MODELS]
        if unknown or not self.models:
            raise ReportError(
                f"model={','.join(unknown) or '(none)'!s} is not one of all, {', '.join(MODELS)}"
            )
        if not 0 < self.lookback_days <= MAX_LOOKBACK_DAYS:
            raise ReportError(
                f"lookback_days={self.lookback_days} must be between 1 and {MAX_LOOKBACK_DAYS}"
            )
        if not 0 < self.half_life_days <= MAX_LOOKBACK_DAYS:
            raise ReportError(f"half_life_days={self.half_life_days} must be more than 0")


@dataclass(frozen=True)
class Credit:
    conversions: float
    revenue: float


@dataclass(frozen=True)
class AttributionRow:
    key: str  # the channel, or the campaign's id ("" for touchpoints without campaign)
    label: str
    touchpoints: int  # touchpoints of converting journeys
    credit: dict[str, Credit]  # model → credit

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "touchpoints": self.touchpoints,
            "models": {
                model: {"conversions": round(c.conversions, 4), "revenue": round(c.revenue, 2)}
                for model, c in self.credit.items()
            },
        }


@dataclass(frozen=True)
class AttributionResult:
    request: AttributionRequest
    currency: str
    rows: list[AttributionRow]
    conversions: int  # conversions in the period
    revenue: float  # their revenue
    unattributed_conversions: int  # conversions without a touchpoint in the lookback window
    unattributed_revenue: float
    revenue_without_conversion: float  # won-deal revenue tied to no conversion in the period
    journeys: int  # converting journeys with touchpoints, plus non-converting ones (Markov)
    non_converting_journeys: int
    markov_conversion_probability: float | None = None
    removal_effects: dict[str, float] = field(default_factory=dict)  # key → conversion RE

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "attribution",
            "currency": self.currency,
            "request": {
                "from": self.request.date_from.isoformat(),
                "to": self.request.date_to.isoformat(),
                "by": self.request.by,
                "models": list(self.request.models),
                "lookback_days": self.request.lookback_days,
                "half_life_days": self.request.half_life_days,
                "filters": self.request.filters.describe(),
            },
            "totals": {
                "conversions": self.conversions,
                "revenue": round(self.revenue, 2),
                "unattributed_conversions": self.unattributed_conversions,
                "unattributed_revenue": round(self.unattributed_revenue, 2),
                "revenue_without_conversion": round(self.revenue_without_conversion, 2),
                "journeys": self.journeys,
                "non_converting_journeys": self.non_converting_journeys,
            },
            "markov": (
                {
                    "conversion_probability": self.markov_conversion_probability,
                    "removal_effects": self.removal_effects,
                }
                if self.markov_conversion_probability is not None
                else None
            ),
            "rows": [row.to_dict() for row in self.rows],
            "notes": [
                "a conversion is a contact entering the customer stage in the period; a contact "
                "who becomes a customer again later converts again",
                f"touchpoints count within {self.request.lookback_days} days before (or at) the "
                "conversion, after the contact's previous conversion",
                "unattributed: conversions with no touchpoint in that window",
            ],
        }

    def table(self) -> Table:
        name = "Channel" if self.request.by == "channel" else "Campaign"
        header = [name, "Touchpoints"]
        for model in self.request.models:
            label = str(MODEL_LABELS[model])
            header += [f"{label}: conversions", f"{label}: revenue ({self.currency})"]
        rows: list[list[Any]] = []
        for row in self.rows:
            cells: list[Any] = [row.label, row.touchpoints]
            for model in self.request.models:
                credit = row.credit[model]
                cells += [round(credit.conversions, 2), round(credit.revenue, 2)]
            rows.append(cells)
        if self.unattributed_conversions:
            cells = [NO_TOUCHPOINT, 0]
            for _model in self.request.models:
                cells += [self.unattributed_conversions, round(self.unattributed_revenue, 2)]
            rows.append(cells)
        total: list[Any] = ["Total", sum(r.touchpoints for r in self.rows)]
        for _model in self.request.models:
            total += [self.conversions, round(self.revenue, 2)]
        rows.append(total)
        return Table(header, rows)

    def chart(self) -> dict[str, Any]:
        """Revenue credited to each channel (or campaign) by each model, side by side."""
        return {
            "kind": "grouped_bar",
            "title": str(_("Attributed revenue by model")),
            "x": [row.label for row in self.rows],
            "series": [
                {
                    "name": str(MODEL_LABELS[model]),
                    "values": [round(row.credit[model].revenue, 2) for row in self.rows],
                }
                for model in self.request.models
            ],
            "y_title": self.currency,
        }

    def headline(self) -> list[tuple[str, object]]:
        return [
            (str(_("Conversions")), self.conversions),
            (str(_("Revenue")), f"{self.revenue:,.2f} {self.currency}"),
            (str(_("Without touchpoints")), self.unattributed_conversions),
        ]


# -- journeys, assembled with numpy ---------------------------------------------------------------


@dataclass(frozen=True)
class Journeys:
    """Converting journeys (0…converting-1, one per conversion in the period) and then the
    non-converting ones; touch arrays are grouped by journey, in time order."""

    touch_journey: IntArray
    touch_key: IntArray
    touch_time: IntArray  # milliseconds
    converting: int  # conversions in the period (with or without touchpoints)
    journeys: int  # all journeys, converting ones included
    conversion_time: IntArray  # per converting journey
    revenue: FloatArray  # per converting journey
    lead_time: IntArray  # per converting journey; _NEVER when no lead creation in the journey
    opportunity_time: IntArray
    revenue_without_conversion: float

    @property
    def lengths(self) -> IntArray:
        return np.bincount(self.touch_journey, minlength=self.journeys).astype(np.int64)


def _sorted(contact: IntArray, time: IntArray, tiebreak: IntArray) -> IntArray:
    """The order by (contact, time, tiebreak); tie-breaks are unique (ids).

    When contact and time fit together in one 63-bit key (a year of milliseconds leaves room
    for 2^27 contacts), one sort of that key replaces lexsort's three passes, and the few rows
    of the same contact at the same moment are then put in tie-break order among themselves.
    numpy's default sort of whole numbers is much quicker than a stable one (12 ms against
    67 ms for the dashboard's 840,000 touchpoints)."""
    if contact.size == 0:
        return np.zeros(0, dtype=np.int64)
    if _in_order(contact, time, tiebreak):
        return np.arange(contact.size, dtype=np.int64)
    offset = contact - contact.min()
    moment = time - time.min()
    bits = int(moment.max()).bit_length()
    if int(offset.max()).bit_length() + bits > 62:
        return np.lexsort((tiebreak, time, contact)).astype(np.int64)
    key = (offset << bits) | moment
    order = np.argsort(key).astype(np.int64)
    ordered = key[order]
    tied = np.flatnonzero(ordered[1:] == ordered[:-1])
    if tied.size:
        # Each run of equal keys holds consecutive places: reorder those places by tie-break.
        places = np.unique(np.concatenate([tied, tied + 1]))
        within = np.lexsort((tiebreak[order[places]], ordered[places]))
        order[places] = order[places][within]
    return order


def _in_order(contact: IntArray, time: IntArray, tiebreak: IntArray) -> bool:
    """Whether the rows are already ordered by (contact, time, tiebreak): the touchpoints are
    sorted once when read, then cut into journeys for several stages."""
    later = contact[1:] > contact[:-1]
    same = contact[1:] == contact[:-1]
    if not np.all(later | same):
        return False
    after = time[1:] > time[:-1]
    tied = time[1:] == time[:-1]
    return bool(np.all(later | (same & (after | (tied & (tiebreak[1:] >= tiebreak[:-1]))))))


def _next_at_or_after(
    contacts: IntArray, times: IntArray, query_contact: IntArray, query_time: IntArray
) -> IntArray:
    """For each query, the index of its contact's first event at or after its time (-1: none).

    Events are sorted by (contact, time). When contact and time fit together in one 63-bit key,
    one binary search per query finds it; otherwise each round advances only the queries still
    behind, so the rounds are as many as the most events one contact has.
    """
    packed = _packed(contacts, times, query_contact, query_time)
    if packed is not None:
        keys, queries = packed
        index = np.searchsorted(keys, queries, "left")
        found = index < contacts.size
        found[found] = contacts[index[found]] == query_contact[found]
        return np.where(found, index, -1).astype(np.int64)
    low = np.searchsorted(contacts, query_contact, "left")
    high = np.searchsorted(contacts, query_contact, "right")
    index = low.copy()
    active = np.flatnonzero(index < high)
    while active.size:
        behind = times[index[active]] < query_time[active]
        active = active[behind]
        index[active] += 1
        active = active[index[active] < high[active]]
    return np.where(index < high, index, -1).astype(np.int64)


def _packed(
    contacts: IntArray, times: IntArray, query_contact: IntArray, query_time: IntArray
) -> tuple[IntArray, IntArray] | None:
    """Events and queries as one sortable key each, contact in the high bits and time in the
    low ones, or None when they do not fit in 62 bits."""
    if not contacts.size or not query_contact.size:
        return None
    low_contact = min(int(contacts.min()), int(query_contact.min()))
    low_time = min(int(times.min()), int(query_time.min()))
    high_contact = max(int(contacts.max()), int(query_contact.max()))
    high_time = max(int(times.max()), int(query_time.max()))
    bits = (high_time - low_time).bit_length()
    if (high_contact - low_contact).bit_length() + bits > 62:
        return None
    keys = ((contacts - low_contact) << bits) | (times - low_time)
    queries = ((query_contact - low_contact) << bits) | (query_time - low_time)
    return keys, queries


def _last_at_or_before(
    contacts: IntArray, times: IntArray, query_contact: IntArray, query_time: IntArray
) -> IntArray:
    """For each query, the index of its contact's last event at or before its time (-1: none)."""
    low = np.searchsorted(contacts, query_contact, "left")
    index = np.searchsorted(contacts, query_contact, "right") - 1
    active = np.flatnonzero(index >= low)
    while active.size:
        ahead = times[index[active]] > query_time[active]
        active = active[ahead]
        index[active] -= 1
        active = active[index[active] >= low[active]]
    return np.where(index >= low, index, -1).astype(np.int64)


@dataclass(frozen=True)
class RawJourneyData:
    """What the database gives, unsorted: one array per column."""

    conversion_contact: IntArray
    conversion_time: IntArray
    conversion_id: IntArray
    touch_contact: IntArray
    touch_time: IntArray
    touch_id: IntArray
    touch_key: IntArray
    lead_contact: IntArray
    lead_time: IntArray
    opportunity_contact: IntArray
    opportunity_time: IntArray
    deal_contact: IntArray  # one row per (won deal, contact), the amount already split
    deal_time: IntArray
    deal_share: FloatArray
    revenue_without_contact: float = 0.0


def assemble(raw: RawJourneyData, start: int, end: int, lookback: int) -> Journeys:
    """Cut the touchpoints into journeys: each conversion in [start, end) gets its contact's
    touchpoints within ``lookback`` ms before it and after the previous conversion; the
    touchpoints a contact had after their last conversion form a non-converting journey when
    the last of them falls in the period (with those within ``lookback`` before it)."""
    order = _sorted(raw.conversion_contact, raw.conversion_time, raw.conversion_id)
    cc, ct = raw.conversion_contact[order], raw.conversion_time[order]
    in_period = (ct >= start) & (ct < end)
    period_index = np.cumsum(in_period) - 1  # conversion → converting journey id
    converting = int(in_period.sum())

    order = _sorted(raw.touch_contact, raw.touch_time, raw.touch_id)
    tc, tt, tk = raw.touch_contact[order], raw.touch_time[order], raw.touch_key[order]
    nxt = _next_at_or_after(cc, ct, tc, tt)
    has_next = nxt >= 0
    safe = np.where(has_next, nxt, 0)
    counted = has_next & in_period[safe] & (tt >= ct[safe] - lookback) if cc.size else has_next
    # Non-converting: the touchpoints after a contact's last conversion (sorted, so each
    # contact's are contiguous), kept when their last one falls in the period.
    loose = np.flatnonzero(~has_next)
    lc, lt = tc[loose], tt[loose]
    group_end = np.ones(loose.size, dtype=bool)
    group_end[:-1] = lc[1:] != lc[:-1]
    group = np.cumsum(np.r_[True, group_end[:-1]]) - 1 if loose.size else loose
    last_time = lt[group_end][group] if loose.size else lt
    keep = (last_time >= start) & (last_time < end) & (lt >= last_time - lookback)
    kept = group[keep]  # sorted: unique groups are where the value changes
    kept_groups = kept[np.r_[True, kept[1:] != kept[:-1]]] if kept.size else kept
    rank = np.full(int(group.max()) + 1 if loose.size else 0, -1, dtype=np.int64)
    rank[kept_groups] = np.arange(kept_groups.size)

    converting_touch = np.flatnonzero(counted)
    journey = np.concatenate(
        [period_index[nxt[converting_touch]], converting + rank[group[keep]]]
    ).astype(np.int64)
    touches = np.concatenate([converting_touch, loose[keep]])

    # W-shaped anchors: the latest lead creation and opportunity creation at or before the
    # conversion and after the previous one.
    previous = np.full(ct.size, _NEVER, dtype=np.int64)
    same = np.zeros(ct.size, dtype=bool)
    same[1:] = cc[1:] == cc[:-1]
    previous[1:] = np.where(same[1:], ct[:-1], _NEVER)
    lead = _anchor(raw.lead_contact, raw.lead_time, cc, ct, previous)[in_period]
    opportunity = _anchor(raw.opportunity_contact, raw.opportunity_time, cc, ct, previous)[
        in_period
    ]

    # Revenue: each contact's share of a won deal goes to their last conversion at or before
    # the deal closed, if that conversion is in the period.
    revenue = np.zeros(converting)
    outside = raw.revenue_without_contact
    if raw.deal_contact.size:
        at = _last_at_or_before(cc, ct, raw.deal_contact, raw.deal_time) if cc.size else None
        if at is None:
            outside += float(raw.deal_share.sum())
        else:
            tied = (at >= 0) & in_period[np.where(at >= 0, at, 0)]
            revenue = np.bincount(
                period_index[at[tied]], weights=raw.deal_share[tied], minlength=converting
            ).astype(np.float64)
            outside += float(raw.deal_share[~tied].sum())

    return Journeys(
        touch_journey=journey,
        touch_key=tk[touches].astype(np.int64),
        touch_time=tt[touches],
        converting=converting,
        journeys=converting + int(kept_groups.size),
        conversion_time=ct[in_period],
        revenue=revenue.astype(np.float64),
        lead_time=lead,
        opportunity_time=opportunity,
        revenue_without_conversion=outside,
    )


def first_touch_credit(
    touches: TouchRows, entries: list[IntArray], start: int, end: int, lookback: int
) -> tuple[IntArray, FloatArray]:
    """The first-touch credit of the entries in [start, end): the key codes credited and their
    credit, the same as the first-touch model over the journeys ``assemble`` would cut for
    these entries, without cutting them.

    An entry's journey holds its contact's touchpoints after the contact's previous entry, up
    to and at its own moment, within ``lookback`` before it; its first touch is the earliest.
    ``touches`` are sorted by contact, time and id."""
    order = _sorted(*entries)
    contact, time = entries[0][order], entries[1][order]
    previous = np.full(time.size, _NEVER, dtype=np.int64)
    same = contact[1:] == contact[:-1]
    previous[1:] = np.where(same, time[:-1], _NEVER)
    in_period = (time >= start) & (time < end)
    contact, time, previous = contact[in_period], time[in_period], previous[in_period]
    # Times are whole milliseconds: "after the previous entry" is from its next millisecond.
    since = np.maximum(time - lookback, previous + 1)
    first = _next_at_or_after(touches.contact, touches.time, contact, since)
    found = first >= 0
    found[found] = touches.time[first[found]] <= time[found]
    codes, counts = np.unique(touches.key[first[found]], return_counts=True)
    return codes.astype(np.int64), counts.astype(np.float64)


def _anchor(
    contact: IntArray, time: IntArray, cc: IntArray, ct: IntArray, previous: IntArray
) -> IntArray:
    """Per conversion, the latest event time at or before it and after ``previous``."""
    if not contact.size or not cc.size:
        return np.full(cc.size, _NEVER, dtype=np.int64)
    order = _sorted(contact, time, np.arange(contact.size, dtype=np.int64))
    contact, time = contact[order], time[order]
    at = _last_at_or_before(contact, time, cc, ct)
    found = at >= 0
    times = np.where(found, time[np.where(found, at, 0)], _NEVER)
    return np.where(times > previous, times, _NEVER).astype(np.int64)


# -- the models -----------------------------------------------------------------------------------


def model_weights(journeys: Journeys, model: str, half_life_ms: float) -> FloatArray:
    """Each converting touchpoint's share of its conversion (shares of a journey sum to 1)."""
    mask = journeys.touch_journey < journeys.converting
    j = journeys.touch_journey[mask]
    n_touch = j.size
    if not n_touch:
        return np.zeros(0)
    lengths = np.bincount(j, minlength=journeys.converting)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    position = np.arange(n_touch) - starts[j]
    n = lengths[j]
    first = position == 0
    last = position == n - 1
    if model == "first_touch":
        return first.astype(np.float64)
    if model == "last_touch":
        return last.astype(np.float64)
    if model == "linear":
        return 1.0 / n
    if model == "u_shaped":
        ends = first.astype(np.float64) + last
        middle = np.where(first | last, 0.0, 0.2 / np.maximum(n - 2, 1))
        return _normalised(j, ends * 0.4 + middle, journeys.converting)
    if model == "w_shaped":
        time = journeys.touch_time[mask]
        anchors = first.astype(np.float64)
        for moments in (journeys.lead_time, journeys.opportunity_time):
            # The anchor is the last touchpoint at or before the moment; touchpoints are in
            # time order within a journey, so it is the count of those up to it, minus one.
            up_to = np.bincount(j, weights=time <= moments[j], minlength=journeys.converting)
            anchor = np.where(moments == _NEVER, -1, up_to.astype(np.int64) - 1)
            anchors += position == anchor[j]
        is_anchor = anchors > 0
        others = lengths - np.bincount(j, weights=is_anchor, minlength=journeys.converting)
        spread = np.where(is_anchor, 0.0, 0.1 / np.maximum(others[j], 1))
        return _normalised(j, anchors * 0.3 + spread, journeys.converting)
    if model == "time_decay":
        age = (journeys.conversion_time[j] - journeys.touch_time[mask]).astype(np.float64)
        return _normalised(j, np.exp2(-age / half_life_ms), journeys.converting)
    raise ReportError(f"model={model!r} is not one of {', '.join(MODELS)}")


def _normalised(j: IntArray, raw: FloatArray, journeys: int) -> FloatArray:
    totals = np.bincount(j, weights=raw, minlength=journeys)
    return raw / totals[j]


@dataclass(frozen=True)
class Credits:
    conversions: FloatArray  # per key
    revenue: FloatArray
    removal_effects: FloatArray | None = None
    conversion_probability: float | None = None


def credit(journeys: Journeys, model: str, keys: int, half_life_ms: float) -> Credits:
    """Conversions and revenue credited to each key (channel or campaign code) by ``model``."""
    mask = journeys.touch_journey < journeys.converting
    if model == "markov":
        return markov_credit(journeys, keys)
    weights = model_weights(journeys, model, half_life_ms)
    key = journeys.touch_key[mask]
    revenue = journeys.revenue[journeys.touch_journey[mask]]
    return Credits(
        np.bincount(key, weights=weights, minlength=keys).astype(np.float64),
        np.bincount(key, weights=weights * revenue, minlength=keys).astype(np.float64),
    )


def markov_credit(journeys: Journeys, keys: int) -> Credits:
    """Credit in proportion to each key's removal effect in the exact first-order chain."""
    converted = np.zeros(journeys.journeys, dtype=bool)
    converted[: journeys.converting] = True
    value = np.zeros(journeys.journeys)
    value[: journeys.converting] = journeys.revenue
    chain = markov.count_transitions(
        journeys.touch_journey, journeys.touch_key, converted, value, keys
    )
    effects = markov.removal_effects(chain)
    with_touch = np.zeros(journeys.converting, dtype=bool)
    with_touch[journeys.touch_journey[journeys.touch_journey < journeys.converting]] = True
    conversions = float(with_touch.sum())
    revenue = float(journeys.revenue[with_touch].sum())
    return Credits(
        markov.shares(effects.conversion) * conversions,
        markov.shares(effects.value) * revenue,
        effects.conversion,
        effects.conversion_probability,
    )


# -- reading the database -----------------------------------------------------------------------


def _fetch(queryset: QuerySet[Any], *columns: Any) -> list[IntArray]:
    """The columns of ``queryset.values_list(*columns)`` as whole numbers (ids, codes,
    milliseconds), read without the ORM's per-row work or a Python tuple per row kept (at
    millions of rows those would be most of the report's time and memory; measured in
    bench/attribution.py)."""
    # No ORDER BY (the models' default orderings would add a sort): numpy orders the rows.
    query = queryset.order_by().values_list(*columns)
    return numeric_columns(query, [np.int64] * len(columns))


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def channel_code() -> Case:
    return Case(
        *(When(channel=value, then=Value(i)) for i, value in enumerate(Channel.values)),
        default=Value(Channel.values.index(Channel.OTHER)),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class Window:
    """The report period and how far before it touchpoints are read, as date-times and ms."""

    start: dt.datetime
    end: dt.datetime  # exclusive
    earliest: dt.datetime
    lookback_ms: int

    @classmethod
    def of(cls, date_from: dt.date, date_to: dt.date, lookback_days: int) -> Window:
        start, end = _midnight(date_from), _midnight(date_to + dt.timedelta(days=1))
        earliest = start - dt.timedelta(days=lookback_days)
        return cls(start, end, earliest, lookback_days * DAY_MS)

    @property
    def start_ms(self) -> int:
        return int(self.start.timestamp() * 1000)

    @property
    def end_ms(self) -> int:
        return int(self.end.timestamp() * 1000)


@dataclass(frozen=True)
class TouchRows:
    contact: IntArray
    time: IntArray
    id: IntArray
    key: IntArray


def _per_page(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    """``build()``, computed once per dashboard page: the attribution and ROI sections read
    the same touchpoints (the page opens a shared cache around its sections; elsewhere this
    simply builds)."""
    from embudo.analytics import funnel

    shared = getattr(funnel, "_shared", None)
    return shared(("attribution", *key), build) if callable(shared) else build()


def load_touches(window: Window, by: str) -> TouchRows:
    """Every identified touchpoint from the lookback before the period to its end."""
    touches: TouchRows = _per_page(("touches", window, by), lambda: _load_touches(window, by))
    return touches


def _load_touches(window: Window, by: str) -> TouchRows:
    key = channel_code() if by == "channel" else Coalesce(F("campaign_id"), Value(0))
    contact, time, ids, keys = _fetch(
        Touchpoint.objects.filter(
            contact__isnull=False, occurred_at__gte=window.earliest, occurred_at__lt=window.end
        ),
        "contact_id",
        EpochMillis("occurred_at"),
        "id",
        key,
    )
    # Sorted once here, so that cutting them into journeys for each stage need not sort again.
    order = _sorted(contact, time, ids)
    return TouchRows(contact[order], time[order], ids[order], keys[order])


def stage_entries(window: Window, stage: str) -> list[IntArray]:
    """(contact, ms, id) of every entry into ``stage`` from the lookback to the period's end.

    Entering ``customer`` from ``evangelist`` is no new conversion; recycled contacts entering
    the stage again from below it are."""
    entries = LifecycleTransition.objects.filter(
        to_stage=stage, changed_at__gte=window.earliest, changed_at__lt=window.end
    )
    if stage == LifecycleStage.CUSTOMER:
        entries = entries.exclude(from_stage=LifecycleStage.EVANGELIST)
    else:
        entries = entries.exclude(from_stage=stage)
    return _fetch(entries, "contact_id", EpochMillis("changed_at"), "id")


_EMPTY_INT = np.zeros(0, dtype=np.int64)


def load_journeys(request: AttributionRequest) -> tuple[Journeys, dict[int, tuple[str, str]]]:
    """The journeys to the request's conversions, and each key code's stable key and label.

    (The ROI report's first touches of leads, MQLs and SQLs need no journeys cut:
    ``first_touch_credit``.)"""
    window = Window.of(request.date_from, request.date_to, request.lookback_days)
    anchors = "w_shaped" in request.models
    key = ("journeys", window.start_ms, window.end_ms, window.lookback_ms, request.by, anchors)

    def build() -> Journeys:
        if request.filters.narrowing:
            # The filters read contacts (owner, source, persona), which no stamp watches.
            return _load_journeys(request)
        journeys: Journeys = stamps.remembered(key, JOURNEY_TABLES, lambda: _load_journeys(request))
        return journeys

    journeys: Journeys = _per_page((*key, request.filters), build)
    # Labels are read afresh: a renamed campaign changes no stamp.
    return journeys, key_labels(request.by, np.unique(journeys.touch_key))


# What the journeys are read from: kept in memory until one of these changes.
JOURNEY_TABLES = (
    "tracking_touchpoint",
    "crm_lifecycletransition",
    "deals_deal",
    "deals_deal_contacts",
)


def _load_journeys(request: AttributionRequest) -> Journeys:
    window = Window.of(request.date_from, request.date_to, request.lookback_days)
    start, end, earliest = window.start, window.end, window.earliest
    conversions = stage_entries(window, LifecycleStage.CUSTOMER)
    touches = load_touches(window, request.by)
    leads = opportunities = [_EMPTY_INT, _EMPTY_INT]
    share = np.zeros(0)
    if "w_shaped" in request.models:
        # Only the W-shaped model reads the lead and opportunity moves (a second of the report
        # at a million journeys).
        leads = _fetch(
            LifecycleTransition.objects.filter(
                to_stage__in=_LEAD_LEVELS,
                from_stage__in=_BEFORE_LEAD,
                changed_at__gte=earliest,
                changed_at__lt=end,
            ),
            "contact_id",
            EpochMillis("changed_at"),
        )
        opportunities = _fetch(
            LifecycleTransition.objects.filter(
                to_stage=LifecycleStage.OPPORTUNITY, changed_at__gte=earliest, changed_at__lt=end
            ),
            "contact_id",
            EpochMillis("changed_at"),
        )
    links = Deal.contacts.through.objects.filter(
        deal__status=DealStatus.WON, deal__closed_at__gte=start, deal__closed_at__lt=end
    )
    deal_contact, deal_id, deal_time, amount = numeric_columns(
        links.order_by().values_list(
            "contact_id",
            "deal_id",
            EpochMillis("deal__closed_at"),
            Cast("deal__amount_reporting", FloatField()),
        ),
        [np.int64, np.int64, np.int64, np.float64],
    )
    if deal_id.size:
        _ids, inverse, counts = np.unique(deal_id, return_inverse=True, return_counts=True)
        share = amount / counts[inverse]
    won = Q(status=DealStatus.WON, closed_at__gte=start, closed_at__lt=end)
    alone = Deal.objects.filter(won, contacts__isnull=True)
    amounts = alone.order_by().values_list(Cast("amount_reporting", FloatField()))
    without_contact = float(numeric_columns(amounts, [np.float64])[0].sum())
    conversion_contact, conversion_time, conversion_id = conversions
    raw = RawJourneyData(
        conversion_contact=conversion_contact,
        conversion_time=conversion_time,
        conversion_id=conversion_id,
        touch_contact=touches.contact,
        touch_time=touches.time,
        touch_id=touches.id,
        touch_key=touches.key,
        lead_contact=leads[0],
        lead_time=leads[1],
        opportunity_contact=opportunities[0],
        opportunity_time=opportunities[1],
        deal_contact=deal_contact,
        deal_time=deal_time,
        deal_share=share,
        revenue_without_contact=without_contact,
    )
    if request.filters.narrowing:
        (scope,) = _fetch(contacts_in_scope(request.filters), "pk")
        raw = within(raw, scope)
    return assemble(raw, window.start_ms, window.end_ms, window.lookback_ms)


def within(raw: RawJourneyData, contacts: IntArray) -> RawJourneyData:
    """Only what happened to ``contacts``: their conversions, touchpoints, lead and opportunity
    moves and their shares of won deals. Revenue of deals without a contact belongs to no one
    the filters could keep, so it goes too."""
    conversion = np.isin(raw.conversion_contact, contacts)
    touch = np.isin(raw.touch_contact, contacts)
    lead = np.isin(raw.lead_contact, contacts)
    opportunity = np.isin(raw.opportunity_contact, contacts)
    deal = np.isin(raw.deal_contact, contacts)
    return replace(
        raw,
        conversion_contact=raw.conversion_contact[conversion],
        conversion_time=raw.conversion_time[conversion],
        conversion_id=raw.conversion_id[conversion],
        touch_contact=raw.touch_contact[touch],
        touch_time=raw.touch_time[touch],
        touch_id=raw.touch_id[touch],
        touch_key=raw.touch_key[touch],
        lead_contact=raw.lead_contact[lead],
        lead_time=raw.lead_time[lead],
        opportunity_contact=raw.opportunity_contact[opportunity],
        opportunity_time=raw.opportunity_time[opportunity],
        deal_contact=raw.deal_contact[deal],
        deal_time=raw.deal_time[deal],
        deal_share=raw.deal_share[deal],
        revenue_without_contact=0.0,
    )


def key_labels(by: str, codes: IntArray) -> dict[int, tuple[str, str]]:
    """Each key code's stable key (the channel, the campaign id) and its label."""
    if by == "channel":
        return {
            i: (value, str(label))
            for i, (value, label) in enumerate(zip(Channel.values, Channel.labels, strict=True))
        }
    names = dict(
        Campaign.objects.filter(pk__in=[int(c) for c in codes if c]).values_list("pk", "name")
    )
    return {
        int(c): (str(int(c)), names.get(int(c), f"campaign {int(c)}")) if c else ("", NO_CAMPAIGN)
        for c in codes
    }


def compact(journeys: Journeys) -> tuple[Journeys, IntArray]:
    """Renumber the keys that occur as 0…k-1 (campaign ids are sparse); returns the map back."""
    used, inverse = np.unique(journeys.touch_key, return_inverse=True)
    return (
        Journeys(**{**journeys.__dict__, "touch_key": inverse.astype(np.int64)}),
        used.astype(np.int64),
    )


def attribution(request: AttributionRequest) -> AttributionResult:
    """Every requested model's credit per channel or campaign, side by side."""
    request.check()

    def build() -> AttributionResult:
        journeys, labels = load_journeys(request)
        return attribute(request, journeys, labels)

    # The dashboard's ROI section credits revenue with the attribution section's result.
    result: AttributionResult = _per_page(("result", request), build)
    return result


def attribute(
    request: AttributionRequest, journeys: Journeys, labels: dict[int, tuple[str, str]]
) -> AttributionResult:
    """The models over assembled journeys (the bench times this part on its own too)."""
    dense, used = compact(journeys)
    k = used.size
    half_life_ms = request.half_life_days * DAY_MS
    results = {model: credit(dense, model, k, half_life_ms) for model in request.models}
    converting = dense.touch_journey < dense.converting
    touch_counts = np.bincount(dense.touch_key[converting], minlength=k)
    with_touch = np.zeros(dense.converting, dtype=bool)
    with_touch[dense.touch_journey[converting]] = True
    rows = []
    for code in range(k):
        key, label = labels[int(used[code])]
        rows.append(
            AttributionRow(
                key=key,
                label=label,
                touchpoints=int(touch_counts[code]),
                credit={
                    model: Credit(
                        float(results[model].conversions[code]),
                        float(results[model].revenue[code]),
                    )
                    for model in request.models
                },
            )
        )
    rows = [r for r in rows if r.touchpoints or any(c.conversions for c in r.credit.values())]
    lead_model = request.models[0]
    rows.sort(
        key=lambda r: (-r.credit[lead_model].revenue, -r.credit[lead_model].conversions, r.label)
    )
    markov_result = results.get("markov")
    effects: dict[str, float] = {}
    if markov_result is not None and markov_result.removal_effects is not None:
        effects = {
            labels[int(used[code])][0]: round(float(markov_result.removal_effects[code]), 6)
            for code in range(k)
        }
    return AttributionResult(
        request=request,
        currency=reporting_currency(),
        rows=rows,
        conversions=dense.converting,
        revenue=float(dense.revenue.sum()),
        unattributed_conversions=int(dense.converting - with_touch.sum()),
        unattributed_revenue=float(dense.revenue[~with_touch].sum()),
        revenue_without_conversion=dense.revenue_without_conversion,
        journeys=int(with_touch.sum()) + dense.journeys - dense.converting,
        non_converting_journeys=dense.journeys - dense.converting,
        markov_conversion_probability=(
            markov_result.conversion_probability if markov_result is not None else None
        ),
        removal_effects=effects,
    )


# -- the registry entry -------------------------------------------------------------------------


def _default_range() -> tuple[dt.date, dt.date]:
    today = timezone.localdate()
    return today - dt.timedelta(days=89), today


def parse_models(raw: str) -> tuple[str, ...]:
    text = raw.strip()
    if not text or text == "all":
        return MODELS
    models = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        raise ReportError(
            f"model={', '.join(unknown)} is not one of all, {', '.join(MODELS)} "
            "(several: --model linear,markov)"
        )
    return models


def _number(params: ReportParams, name: str, default: float, integer: bool) -> Any:
    raw = params.option(name)
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        kind = "a whole number of days" if integer else "a number of days"
        raise ReportError(f"{name}={raw!r} is not {kind}") from None
    return value


def request_from(params: ReportParams) -> AttributionRequest:
    default_from, default_to = _default_range()
    return AttributionRequest(
        date_from=params.date_from or default_from,
        date_to=params.date_to or default_to,
        by=params.option("by", "channel"),
        models=parse_models(params.option("model", "all")),
        lookback_days=_number(params, "lookback_days", DEFAULT_LOOKBACK_DAYS, True),
        half_life_days=_number(params, "half_life_days", DEFAULT_HALF_LIFE_DAYS, False),
        filters=filters_from(params),
    )


def _run(params: ReportParams) -> AttributionResult:
    return attribution(request_from(params))


ATTRIBUTION_OPTIONS = (
    ReportOption("by", "credit channels or campaigns", choices=BREAKDOWNS, default="channel"),
    ReportOption(
        "model",
        "all (the default) or one or more of " + ", ".join(MODELS) + ", comma-separated",
        default="all",
    ),
    ReportOption(
        "lookback_days",
        f"days before a conversion a touchpoint still counts (default {DEFAULT_LOOKBACK_DAYS})",
    ),
    ReportOption(
        "half_life_days",
        f"time decay: days that halve a touchpoint's weight (default {DEFAULT_HALF_LIFE_DAYS:g})",
    ),
)

ATTRIBUTION = ReportSpec(
    name="attribution",
    description="Conversions (contacts becoming customers) and won revenue credited to channels "
    "or campaigns under first touch, last touch, linear, U-shaped, W-shaped, time decay and "
    "Markov chain, side by side",
    run=_run,
    permission="tracking.view_touchpoint",
    options=(*ATTRIBUTION_OPTIONS, *FILTER_OPTIONS),
)
