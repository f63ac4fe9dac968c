"""The leads and revenue KPIs: new leads, MQLs, SQLs and customers per period by source or
campaign, the MQL acceptance rate, and the deals app's win rate, deal value, sales cycle and goal
pacing (reused from its reports, not recomputed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from fractions import Fraction
from typing import Any

from django.utils import timezone

from embudo.analytics.funnel import (
    FILTER_OPTIONS,
    INTERVALS,
    STAGES,
    FunnelRequest,
    _cohort_counts,
    _period_counts,
    groups_for,
    load_history,
    period_bounds,
    request_from,
)
from embudo.deals.periods import current
from embudo.deals.reports import ForecastRequest, SalesRequest, forecast, sales_metrics
from embudo.reports import ReportError, ReportOption, ReportParams, ReportSpec, Table

KPI_BREAKDOWNS = ("period", "source", "campaign")


@dataclass(frozen=True)
class EntriesRow:
    key: str
    label: str
    new: dict[str, int]  # contacts entering each stage in the row's period / group

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            **{f"new_{s}": n for s, n in self.new.items()},
        }


@dataclass(frozen=True)
class Pacing:
    period: str
    goal: Decimal
    won: Decimal
    elapsed: float
    expected_by_now: Decimal
    status: str  # on track, behind, met, missed, not started

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.period,
            "goal": float(self.goal),
            "won": float(self.won),
            "elapsed": round(self.elapsed, 4),
            "expected_by_now": float(self.expected_by_now),
            "status": self.status,
        }


@dataclass(frozen=True)
class KpiResult:
    request: FunnelRequest
    rows: list[EntriesRow]
    total: EntriesRow
    mql_accepted: int
    mqls: int
    currency: str
    deals: dict[str, Any]  # the sales report's total row (deals created in the period)
    pacing: Pacing | None
    notes: list[str]

    @property
    def mql_acceptance_rate(self) -> float | None:
        return round(self.mql_accepted / self.mqls, 4) if self.mqls else None

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "report": "kpis",
            "request": {
                "from": r.date_from.isoformat(),
                "to": r.date_to.isoformat(),
                "breakdown": r.breakdown,
                "interval": r.interval,
                **r.filters.describe(),
            },
            "rows": [row.to_dict() for row in self.rows],
            "total": self.total.to_dict(),
            "mql_acceptance": {
                "mqls": self.mqls,
                "accepted": self.mql_accepted,
                "rate": self.mql_acceptance_rate,
            },
            "currency": self.currency,
            "deals": self.deals,
            "goal_pacing": self.pacing.to_dict() if self.pacing else None,
            "notes": self.notes,
        }

    def table(self) -> Table:
        header = [
            "Period" if self.request.breakdown == "period" else self.request.breakdown.title(),
            *(f"New {s}s" if s != "opportunity" else "New opportunities" for s in STAGES),
        ]
        rows = [[row.label, *row.new.values()] for row in [*self.rows, self.total]]
        return Table(header, rows)

    def chart(self) -> dict[str, Any]:
        return {
            "kind": "grouped_bar",
            "x": [row.label for row in self.rows],
            "series": [
                {"name": name, "values": [row.new[stage] for row in self.rows]}
                for stage, name in (("lead", "Leads"), ("mql", "MQLs"), ("sql", "SQLs"))
            ]
            + [{"name": "Customers", "values": [row.new["customer"] for row in self.rows]}],
        }

    def headline(self) -> list[tuple[str, Any]]:
        return [
            ("New leads", self.total.new["lead"]),
            ("New MQLs", self.total.new["mql"]),
            ("MQL acceptance", self.mql_acceptance_rate),
            ("Win rate (won ÷ closed)", self.deals.get("win_rate_closed")),
            ("Average won deal", self.deals.get("average_won")),
            ("Sales cycle, median days", self.deals.get("cycle_median_days")),
        ]


def _status(actual: Fraction, needed: Fraction, elapsed: float) -> str:
    # The plan's pacing words, with the same thresholds (embudo.deals.planner).
    if elapsed <= 0:
        return "not started"
    if actual >= needed:
        return "met"
    if elapsed >= 1:
        return "missed"
    return "on track" if actual >= needed * Fraction(elapsed) else "behind"


def goal_pacing(team_id: int | None, now: dt.datetime | None = None) -> Pacing | None:
    """This month's revenue goal (the company's, or the team's) against the revenue won so far,
    read from the forecast's closed-won figure."""
    from embudo.deals.queries import goals

    moment = now or timezone.now()
    period = current("month")
    goal = (
        goals()
        .filter(period_kind=period.kind, period_start=period.start, team_id=team_id, owner=None)
        .first()
    )
    if goal is None:
        return None
    won = forecast(
        ForecastRequest(
            date_from=period.start,
            date_to=period.end - dt.timedelta(days=1),
            by="period",
            team_id=team_id,
        )
    ).total.closed_won
    elapsed = period.elapsed_fraction(moment)
    return Pacing(
        period=period.label,
        goal=goal.amount,
        won=won,
        elapsed=elapsed,
        expected_by_now=(goal.amount * Decimal(str(elapsed))).quantize(Decimal("0.01")),
        status=_status(Fraction(won), Fraction(goal.amount), elapsed),
    )


def kpis(request: FunnelRequest) -> KpiResult:
    if request.breakdown not in KPI_BREAKDOWNS:
        raise ReportError(
            f"breakdown={request.breakdown!r} is not one of {', '.join(KPI_BREAKDOWNS)} (kpis)"
        )
    period_bounds(request)
    history = load_history(request)
    groups = groups_for(history, request)
    counts = _period_counts(history, request, groups)
    whole = groups_for(history, replace(request, breakdown="none"))
    total_counts = _period_counts(history, request, whole)[0]
    mql = _cohort_counts(history, request, whole)[0, STAGES.index("mql")]
    rows = [
        EntriesRow(key, label, {s: int(counts[g, k, 1]) for k, s in enumerate(STAGES)})
        for g, (key, label) in enumerate(zip(groups.keys, groups.labels, strict=True))
        if request.breakdown == "period" or counts[g, :, 1].any()
    ]
    total = EntriesRow("total", "Total", {s: int(total_counts[k, 1]) for k, s in enumerate(STAGES)})
    sales = sales_metrics(
        SalesRequest(
            date_from=request.date_from,
            date_to=request.date_to,
            by="team" if request.filters.team_id is not None else "none",
        )
    )
    if request.filters.team_id is not None:
        row = next((r for r in sales.rows if r.key == str(request.filters.team_id)), None)
        deals = row.to_dict() if row else {}
    else:
        deals = sales.total.to_dict()
    notes = [
        "new: contacts that entered the stage in the period (once each per period, however "
        "often they were recycled through it)",
        "MQL acceptance: of the contacts that became MQL in the period, those that went on to "
        "SQL or beyond (sales accepted them)",
        "win rate, average won deal and sales cycle: the deals created in the period (the deals "
        "app's sales report); the source and persona filters do not apply to them",
    ]
    return KpiResult(
        request=request,
        rows=rows,
        total=total,
        mql_accepted=int(mql[3]),
        mqls=int(mql[0]),
        currency=sales.currency,
        deals=deals,
        pacing=goal_pacing(request.filters.team_id),
        notes=notes,
    )


def _run(params: ReportParams) -> KpiResult:
    request = request_from(params)
    return kpis(replace(request, breakdown=params.option("breakdown", "period")))


SPEC = ReportSpec(
    name="kpis",
    description="New leads, MQLs, SQLs and customers per period, by source or campaign; MQL "
    "acceptance; win rate, average deal and sales cycle; goal pacing",
    run=_run,
    permission="crm.view_lifecycletransition",
    options=(
        ReportOption("breakdown", "rows by period, source or campaign", KPI_BREAKDOWNS, "period"),
        ReportOption("interval", "period length for breakdown=period", INTERVALS),
        *FILTER_OPTIONS,
    ),
)
