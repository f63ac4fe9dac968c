"""The velocity report: days spent in each funnel stage and from lead to customer, by cohort.

Same cohorts as the funnel (contacts that entered the stage in the period, each at its first
entry there), read from the same compact history; percentiles are numpy's linear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils import timezone

from embudo.analytics.funnel import (
    BREAKDOWN_OPTION,
    DAY,
    FILTER_OPTIONS,
    RANKS,
    STAGE_NAMES,
    STAGES,
    FunnelRequest,
    Groups,
    History,
    check_breakdown,
    cohort,
    first_reach,
    groups_for,
    load_history,
    request_from,
)
from embudo.reports import ReportOption, ReportParams, ReportSpec, Table

LEAD_TO_CUSTOMER = "lead_to_customer"
SPANS: tuple[str, ...] = (*STAGES[:-1], LEAD_TO_CUSTOMER)
SPAN_NAMES = {**STAGE_NAMES, LEAD_TO_CUSTOMER: "Lead → customer"}


@dataclass(frozen=True)
class Span:
    """Days in one stage (entry to the next change of stage), or from lead to customer."""

    span: str
    entered: int  # the cohort
    measured: int  # left the stage (or became customer): the durations behind the figures
    still_open: int  # still in the stage (or not yet customer): no duration yet
    median_days: float | None
    p75_days: float | None
    p90_days: float | None
    mean_days: float | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class VelocityGroup:
    key: str
    label: str
    spans: list[Span]

    def span(self, name: str) -> Span:
        return next(s for s in self.spans if s.span == name)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "spans": [s.to_dict() for s in self.spans]}


@dataclass(frozen=True)
class VelocityResult:
    request: FunnelRequest
    groups: list[VelocityGroup]
    total: VelocityGroup
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        r = self.request
        return {
            "report": "velocity",
            "request": {
                "from": r.date_from.isoformat(),
                "to": r.date_to.isoformat(),
                "breakdown": r.breakdown,
                "interval": r.interval,
                "time_zone": timezone.get_current_timezone_name(),
                **r.filters.describe(),
            },
            "spans": list(SPANS),
            "groups": [g.to_dict() for g in self.groups],
            "total": self.total.to_dict(),
            "notes": self.notes,
        }

    def table(self) -> Table:
        header = [
            "Period" if self.request.breakdown == "period" else "Group",
            "Stage",
            "Entered",
            "Measured",
            "Still in stage",
            "Median (days)",
            "P75 (days)",
            "P90 (days)",
            "Mean (days)",
        ]
        rows = [
            [
                g.label,
                s.span,
                s.entered,
                s.measured,
                s.still_open,
                s.median_days,
                s.p75_days,
                s.p90_days,
                s.mean_days,
            ]
            for g in [*self.groups, self.total]
            for s in g.spans
        ]
        return Table(header, rows)

    def chart(self) -> dict[str, Any]:
        spans = self.total.spans
        return {
            "kind": "grouped_bar",
            "x": [SPAN_NAMES[s.span] for s in spans],
            "y_title": "days",
            "series": [
                {"name": "Median", "values": [s.median_days for s in spans]},
                {"name": "P75", "values": [s.p75_days for s in spans]},
                {"name": "P90", "values": [s.p90_days for s in spans]},
            ],
        }

    def headline(self) -> list[tuple[str, Any]]:
        whole = self.total.span(LEAD_TO_CUSTOMER)
        return [("Lead → customer, median days", whole.median_days)]


def _days(value: float) -> float:
    return round(float(value), 2)


def _span(name: str, entered: int, durations: np.ndarray) -> Span:
    stats: tuple[float | None, ...] = (None, None, None, None)
    if len(durations):
        median, p75, p90 = np.percentile(durations, [50, 75, 90])
        stats = (_days(median), _days(p75), _days(p90), _days(durations.mean()))
    return Span(name, entered, len(durations), entered - len(durations), *stats)


def _durations(history: History, groups: Groups, request: FunnelRequest) -> dict[str, Any]:
    """Per span: the cohort's group codes, and the measured durations (days) with their codes."""
    out: dict[str, Any] = {}
    n_rows = len(history.at)
    for name in STAGES[:-1]:
        group = cohort(history, RANKS[name])
        codes = groups.codes(group.contacts, group.anchor)
        # The stay ends at the contact's next transition: the next row, if it is the same
        # contact's (rows are in contact-then-time order). Two changes at the same instant
        # make a stay of zero days.
        following = group.rows + 1
        has_next = following < n_rows
        has_next[has_next] = history.contact[following[has_next]] == group.contacts[has_next]
        days = (history.at[following[has_next]] - group.anchor[has_next]) / DAY
        out[name] = (codes, codes[has_next], days)
    leads = cohort(history, RANKS["lead"])
    lead_codes = groups.codes(leads.contacts, leads.anchor)
    reached, rows = first_reach(history, leads, RANKS["customer"], None)
    position = np.searchsorted(leads.contacts, reached)
    days = (history.at[rows] - leads.anchor[position]) / DAY
    out[LEAD_TO_CUSTOMER] = (lead_codes, lead_codes[position], days)
    return out


def velocity(request: FunnelRequest) -> VelocityResult:
    check_breakdown(request.breakdown)
    history = load_history(request)
    groups = groups_for(history, request)
    measured = _durations(history, groups, request)
    n = len(groups.labels)

    def group_spans(code: int | None) -> list[Span]:
        spans = []
        for name in SPANS:
            cohort_codes, codes, days = measured[name]
            if code is None:
                spans.append(_span(name, len(cohort_codes), days))
            else:
                entered = int(np.count_nonzero(cohort_codes == code))
                spans.append(_span(name, entered, days[codes == code]))
        return spans

    built = []
    for code in range(n if request.breakdown != "none" else 0):
        spans = group_spans(code)
        if request.breakdown == "period" or any(s.entered for s in spans):
            built.append(VelocityGroup(groups.keys[code], groups.labels[code], spans))
    notes = [
        "days in a stage: from the contact's first entry into it in the period to its next "
        "change of stage; contacts still in the stage have no duration yet (still in stage)",
        "lead → customer: from the first lead entry in the period to the first time the contact "
        "became a customer afterwards",
        "percentiles interpolate linearly between the two nearest durations",
        f"periods and their borders are in the time zone {timezone.get_current_timezone_name()}",
    ]
    return VelocityResult(request, built, VelocityGroup("total", "Total", group_spans(None)), notes)


def _run(params: ReportParams) -> VelocityResult:
    return velocity(request_from(params))


SPEC = ReportSpec(
    name="velocity",
    description="Days in each funnel stage (median, p75, p90) and from lead to customer, by "
    "cohort, with breakdowns",
    run=_run,
    permission="crm.view_lifecycletransition",
    options=(
        BREAKDOWN_OPTION,
        ReportOption("interval", "period length for breakdown=period", ("month", "week")),
        *FILTER_OPTIONS,
    ),
)
