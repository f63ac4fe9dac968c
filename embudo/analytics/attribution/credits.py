"""Each model's credit per channel or campaign: the rule-based models (first, last, linear, U,
W, time decay) as each touchpoint's share of its conversion, and the Markov chain's credit in
proportion to removal effects (the chain itself: embudo.analytics.markov)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from embudo.analytics import markov
from embudo.analytics.attribution.journeys import (
    _NEVER,
    FloatArray,
    IntArray,
    Journeys,
    TouchRows,
    _next_at_or_after,
    _sorted,
)
from embudo.analytics.attribution.request import MODELS
from embudo.reports import ReportError

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
