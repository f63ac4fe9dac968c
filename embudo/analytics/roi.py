"""Campaign ROI: what each campaign (or channel) cost in the period, its cost per lead, MQL, SQL
and customer, and its return (attributed revenue ÷ cost) under each attribution model."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from embudo.analytics import stamps
from embudo.analytics.attribution import (
    ATTRIBUTION_OPTIONS,
    MODEL_LABELS,
    AttributionRequest,
    FloatArray,
    IntArray,
    Journeys,
    Window,
    attribution,
    compact,
    first_touch_credit,
    key_labels,
    load_journeys,
    load_touches,
    model_weights,
    request_from,
    stage_entries,
)
from embudo.analytics.funnel import shared_history
from embudo.analytics.models import Cost
from embudo.crm.models import LifecycleStage
from embudo.deals.actions import reporting_currency
from embudo.reports import ReportSpec, Table
from embudo.tracking.channels import RULEBOOK, classify
from embudo.tracking.models import Campaign, Channel

FUNNEL_STAGES = (LifecycleStage.LEAD, LifecycleStage.MQL, LifecycleStage.SQL)


@dataclass(frozen=True)
class RoiRow:
    key: str
    label: str
    cost: float
    leads: float
    mqls: float
    sqls: float
    customers: float  # first touch
    revenue: dict[str, float]  # model → attributed revenue

    def per(self, count: float) -> float | None:
        return round(self.cost / count, 2) if count and self.cost else None

    def roi(self, model: str) -> float | None:
        return round(self.revenue[model] / self.cost, 4) if self.cost else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "cost": round(self.cost, 2),
            "leads": self.leads,
            "mqls": self.mqls,
            "sqls": self.sqls,
            "customers": self.customers,
            "cost_per_lead": self.per(self.leads),
            "cost_per_mql": self.per(self.mqls),
            "cost_per_sql": self.per(self.sqls),
            "cost_per_customer": self.per(self.customers),
            "models": {
                model: {"revenue": round(revenue, 2), "roi": self.roi(model)}
                for model, revenue in self.revenue.items()
            },
        }


@dataclass(frozen=True)
class RoiResult:
    request: AttributionRequest
    currency: str
    rows: list[RoiRow]
    total: RoiRow

    def to_dict(self) -> dict[str, Any]:
        return {
            "report": "roi",
            "currency": self.currency,
            "request": {
                "from": self.request.date_from.isoformat(),
                "to": self.request.date_to.isoformat(),
                "by": self.request.by,
                "models": list(self.request.models),
                "lookback_days": self.request.lookback_days,
            },
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "notes": [
                "cost: the spend recorded for the period, a cost spanning the period's edge "
                "counted for the days inside it",
                "leads, MQLs, SQLs and customers: entries into the stage in the period, credited "
                "to the first touchpoint within the lookback window",
                "roi = attributed revenue / cost, per attribution model",
            ],
        }

    def table(self) -> Table:
        name = "Channel" if self.request.by == "channel" else "Campaign"
        header = [
            name,
            f"Cost ({self.currency})",
            "Leads",
            "Cost per lead",
            "MQLs",
            "Cost per MQL",
            "SQLs",
            "Cost per SQL",
            "Customers",
            "Cost per customer",
        ]
        for model in self.request.models:
            label = str(MODEL_LABELS[model])
            header += [f"{label}: revenue", f"{label}: ROI"]
        rows = []
        for row in [*self.rows, self.total]:
            cells: list[Any] = [
                row.label,
                round(row.cost, 2),
                round(row.leads, 2),
                row.per(row.leads),
                round(row.mqls, 2),
                row.per(row.mqls),
                round(row.sqls, 2),
                row.per(row.sqls),
                round(row.customers, 2),
                row.per(row.customers),
            ]
            for model in self.request.models:
                cells += [round(row.revenue[model], 2), row.roi(model)]
            rows.append(cells)
        return Table(header, rows)

    def chart(self) -> dict[str, Any]:
        """Return on spend per campaign (or channel) under each model."""
        costly = [row for row in self.rows if row.cost]
        return {
            "kind": "grouped_bar",
            "title": str(_("Return on spend (revenue ÷ cost)")),
            "x": [row.label for row in costly],
            "series": [
                {"name": str(MODEL_LABELS[model]), "values": [row.roi(model) for row in costly]}
                for model in self.request.models
            ],
        }

    def headline(self) -> list[tuple[str, object]]:
        total = self.total
        return [
            (str(_("Spend")), f"{total.cost:,.2f} {self.currency}"),
            (str(_("Cost per lead")), total.per(total.leads)),
            (str(_("Cost per customer")), total.per(total.customers)),
        ]


def _overlap_days(start: dt.date, end: dt.date, a: dt.date, b: dt.date) -> int:
    return max(0, (min(end, b) - max(start, a)).days + 1)


def period_costs(request: AttributionRequest) -> dict[str, tuple[str, float]]:
    """Spend in the period per row key → (label, amount in the reporting currency).

    A cost whose days straddle the period counts for the share of its days inside it. By
    channel, a campaign's spend goes to the channel its first visit was classified in; by
    campaign, spend recorded for a whole channel stays on a row of its own.
    """
    costs = (
        Cost.objects.filter(
            Q(period_start__lte=request.date_to) & Q(period_end__gte=request.date_from)
        )
        .select_related("campaign")
        .order_by()
    )
    totals: dict[str, float] = defaultdict(float)
    labels: dict[str, str] = {}
    channel_labels = dict(Channel.choices)
    rules = RULEBOOK.rules() if request.by == "channel" else ()
    for cost in costs:
        days = (cost.period_end - cost.period_start).days + 1
        inside = _overlap_days(
            request.date_from, request.date_to, cost.period_start, cost.period_end
        )
        amount = float(cost.amount_reporting) * inside / days
        campaign: Campaign | None = cost.campaign
        if request.by == "campaign":
            if campaign is not None:
                key, label = str(campaign.pk), campaign.name
            else:
                key = f"channel:{cost.channel}"
                label = str(
                    _("%s (channel spend)") % channel_labels.get(cost.channel, cost.channel)
                )
        else:
            channel = cost.channel or classify(
                campaign.first_source if campaign else "",
                campaign.first_medium if campaign else "",
                campaign.name if campaign else "",
                rules,
            )
            key, label = channel, str(channel_labels.get(channel, channel))
        totals[key] += amount
        labels[key] = label
    return {key: (labels[key], totals[key]) for key in totals}


def roi(request: AttributionRequest) -> RoiResult:
    request.check()
    # The four stages' journeys are cut from one read of the touchpoints.
    with shared_history():
        return _roi(request)


def _roi(request: AttributionRequest) -> RoiResult:
    window = Window.of(request.date_from, request.date_to, request.lookback_days)
    journeys, labels = load_journeys(request)
    attributed = attribution(request)
    revenue = {row.key: {m: c.revenue for m, c in row.credit.items()} for row in attributed.rows}
    counts: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    names = {key: label for key, label in labels.values()}
    for stage in (*FUNNEL_STAGES, LifecycleStage.CUSTOMER):
        if stage == LifecycleStage.CUSTOMER:
            codes, credited = first_touches(journeys)
        else:
            codes, credited = stage_first_touches(request, stage, window)
            stage_labels = key_labels(request.by, codes)
            labels = {**labels, **stage_labels}
            names.update({key: label for key, label in stage_labels.values()})
        for code, amount in zip(codes.tolist(), credited.tolist(), strict=True):
            counts[labels[code][0]][stage] += amount
    spend = period_costs(request)
    keys = set(spend) | set(counts) | set(revenue)
    rows = []
    for key in keys:
        label = spend[key][0] if key in spend else names.get(key, key or "(no campaign)")
        rows.append(
            RoiRow(
                key=key,
                label=label,
                cost=spend[key][1] if key in spend else 0.0,
                leads=counts[key][LifecycleStage.LEAD],
                mqls=counts[key][LifecycleStage.MQL],
                sqls=counts[key][LifecycleStage.SQL],
                customers=counts[key][LifecycleStage.CUSTOMER],
                revenue={m: revenue.get(key, {}).get(m, 0.0) for m in request.models},
            )
        )
    rows.sort(key=lambda r: (-r.cost, -sum(r.revenue.values()), r.label))
    total = RoiRow(
        key="total",
        label="Total",
        cost=sum(r.cost for r in rows),
        leads=sum(r.leads for r in rows),
        mqls=sum(r.mqls for r in rows),
        sqls=sum(r.sqls for r in rows),
        customers=sum(r.customers for r in rows),
        revenue={m: sum(r.revenue[m] for r in rows) for m in request.models},
    )
    return RoiResult(request, reporting_currency(), rows, total)


def first_touches(journeys: Journeys) -> tuple[IntArray, FloatArray]:
    """The key codes credited by first touch over these journeys, and their credit."""
    dense, used = compact(journeys)
    weights = model_weights(dense, "first_touch", 1.0)
    mask = dense.touch_journey < dense.converting
    credited = np.bincount(dense.touch_key[mask], weights=weights, minlength=used.size)
    found = np.flatnonzero(credited)
    return used[found], credited[found].astype(np.float64)


def stage_first_touches(
    request: AttributionRequest, stage: str, window: Window
) -> tuple[IntArray, FloatArray]:
    """The first-touch credit of the entries into ``stage`` in the period, kept until the
    touchpoints or the lifecycle history change (a few numbers, where the journeys they come
    from are millions of touchpoints)."""
    key = ("first touches", window.start_ms, window.end_ms, window.lookback_ms, request.by, stage)

    def build() -> tuple[IntArray, FloatArray]:
        return first_touch_credit(
            load_touches(window, request.by),
            stage_entries(window, stage),
            window.start_ms,
            window.end_ms,
            window.lookback_ms,
        )

    tables = ("tracking_touchpoint", "crm_lifecycletransition")
    found: tuple[IntArray, FloatArray] = stamps.remembered(key, tables, build)
    return found


def _run(params: Any) -> RoiResult:
    return roi(request_from(params))


ROI = ReportSpec(
    name="roi",
    description="Spend per campaign or channel, cost per lead, MQL, SQL and customer, and "
    "ROI (attributed revenue / cost) under each attribution model",
    run=_run,
    permission="analytics.view_cost",
    options=ATTRIBUTION_OPTIONS,
)
