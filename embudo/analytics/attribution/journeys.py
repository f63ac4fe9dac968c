"""Building touchpoint journeys: the conversions, touchpoints, lead and opportunity moves and
won deals read in a few set-based queries, then cut into one journey per conversion (and the
non-converting ones) with numpy, with no Python loop per contact or touchpoint."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Case, F, FloatField, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from embudo.analytics import stamps
from embudo.analytics.attribution.request import AttributionRequest
from embudo.analytics.funnel import contacts_in_scope
from embudo.crm.models import LifecycleStage, LifecycleTransition
from embudo.db.columns import numeric_columns
from embudo.db.functions import EpochMillis
from embudo.deals.models import Deal, DealStatus
from embudo.tracking.models import Campaign, Channel, Touchpoint

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

DAY_MS = 86_400_000
NO_CAMPAIGN = "(no campaign)"
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
