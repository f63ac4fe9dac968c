"""What an attribution report is asked for: the period, the breakdown, the models, the lookback
and the time-decay half-life, checked, and read from the CLI's and the API's parameters."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from embudo.analytics.funnel import Filters, filters_from
from embudo.reports import ReportError, ReportOption, ReportParams

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
