"""The attribution report: every requested model's credit per channel or campaign side by side,
its totals, table, chart and headline, and its entry in the report registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext_lazy as _

from embudo.analytics.attribution.credits import credit
from embudo.analytics.attribution.journeys import (
    DAY_MS,
    Journeys,
    _per_page,
    compact,
    load_journeys,
)
from embudo.analytics.attribution.request import (
    ATTRIBUTION_OPTIONS,
    MODEL_LABELS,
    AttributionRequest,
    request_from,
)
from embudo.analytics.funnel import FILTER_OPTIONS
from embudo.deals.actions import reporting_currency
from embudo.reports import ReportParams, ReportSpec, Table

NO_TOUCHPOINT = "(no touchpoint)"


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


def _run(params: ReportParams) -> AttributionResult:
    return attribution(request_from(params))


ATTRIBUTION = ReportSpec(
    name="attribution",
    description="Conversions (contacts becoming customers) and won revenue credited to channels "
    "or campaigns under first touch, last touch, linear, U-shaped, W-shaped, time decay and "
    "Markov chain, side by side",
    run=_run,
    permission="tracking.view_touchpoint",
    options=(*ATTRIBUTION_OPTIONS, *FILTER_OPTIONS),
)
