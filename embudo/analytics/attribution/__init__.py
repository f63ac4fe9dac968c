"""Attribution: which channels and campaigns earned the customers and the revenue, under seven
models side by side (first, last, linear, U, W, time-decay and an exact Markov chain).

The journeys are read in a few set-based queries and assembled with numpy (no Python loop per
contact or touchpoint), so a million journeys take seconds. See docs/analytics.md
("Attribution") for every definition this package implements.

``request`` is what a report is asked for, ``journeys`` builds the touchpoint journeys,
``credits`` holds the models' credit and ``report`` assembles the result; import from here.
"""

from embudo.analytics.attribution.credits import (
    Credits,
    credit,
    first_touch_credit,
    markov_credit,
    model_weights,
)
from embudo.analytics.attribution.journeys import (
    DAY_MS,
    JOURNEY_TABLES,
    NO_CAMPAIGN,
    BoolArray,
    FloatArray,
    IntArray,
    Journeys,
    RawJourneyData,
    TouchRows,
    Window,
    assemble,
    channel_code,
    compact,
    key_labels,
    load_journeys,
    load_touches,
    stage_entries,
    within,
)
from embudo.analytics.attribution.report import (
    ATTRIBUTION,
    NO_TOUCHPOINT,
    AttributionResult,
    AttributionRow,
    Credit,
    attribute,
    attribution,
)
from embudo.analytics.attribution.request import (
    ATTRIBUTION_OPTIONS,
    BREAKDOWNS,
    DEFAULT_HALF_LIFE_DAYS,
    DEFAULT_LOOKBACK_DAYS,
    MAX_LOOKBACK_DAYS,
    MODEL_LABELS,
    MODELS,
    AttributionRequest,
    parse_models,
    request_from,
)

__all__ = [
    "ATTRIBUTION",
    "ATTRIBUTION_OPTIONS",
    "BREAKDOWNS",
    "DAY_MS",
    "DEFAULT_HALF_LIFE_DAYS",
    "DEFAULT_LOOKBACK_DAYS",
    "JOURNEY_TABLES",
    "MAX_LOOKBACK_DAYS",
    "MODELS",
    "MODEL_LABELS",
    "NO_CAMPAIGN",
    "NO_TOUCHPOINT",
    "AttributionRequest",
    "AttributionResult",
    "AttributionRow",
    "BoolArray",
    "Credit",
    "Credits",
    "FloatArray",
    "IntArray",
    "Journeys",
    "RawJourneyData",
    "TouchRows",
    "Window",
    "assemble",
    "attribute",
    "attribution",
    "channel_code",
    "compact",
    "credit",
    "first_touch_credit",
    "key_labels",
    "load_journeys",
    "load_touches",
    "markov_credit",
    "model_weights",
    "parse_models",
    "request_from",
    "stage_entries",
    "within",
]
