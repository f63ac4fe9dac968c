"""The shared dashboard: which registered reports it shows, with which filters, and how any
report's typed result becomes a chart, a table, tiles and download links.

The funnel, velocity and KPI reports and the attribution engineer's (``attribution``, ``roi``:
their modules' ``register()``) are registered here once, from the app's ``ready()``. The page
runs every report through the registry with the same period and filters, so its numbers are the
CLI's, the API's and the CSV's.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, gettext_noop

from embudo.accounts.actors import System, Viewer
from embudo.analytics.funnel import STAGES, default_range, shared_history
from embudo.crm.models import LifecycleStage
from embudo.reports import (
    ReportError,
    Table,
    get_report,
    parse_date,
    report_names,
    run_report,
)

# -- filters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DashboardFilters:
    date_from: dt.date
    date_to: dt.date
    team: str = ""
    source: str = ""
    persona: str = ""

    def options(self) -> dict[str, str]:
        return {
            k: v
            for k, v in (("team", self.team), ("source", self.source), ("persona", self.persona))
            if v
        }

    def query(self) -> dict[str, str]:
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            **self.options(),
        }


def read_filters(raw: Any) -> tuple[DashboardFilters, list[str]]:
    """The filters from a query string, and the problems found; bad values fall back to the
    defaults with a message instead of failing the page."""
    problems: list[str] = []
    start, end = default_range()
    try:
        start = parse_date(raw.get("from"), "from") or start
    except ReportError as error:
        problems.append(str(error))
    try:
        end = parse_date(raw.get("to"), "to") or end
    except ReportError as error:
        problems.append(str(error))
    if end < start:
        problems.append(
            _("The period ends (%(end)s) before it starts (%(start)s): showing %(start)s only.")
            % {"end": end, "start": start}
        )
        end = start
    team = (raw.get("team") or "").strip()
    if team and not team.isdigit():
        problems.append(
            _("The team %(team)r is not a team id; showing every team.") % {"team": team}
        )
        team = ""
    return (
        DashboardFilters(
            start,
            end,
            team=team,
            source=(raw.get("source") or "").strip(),
            persona=(raw.get("persona") or "").strip(),
        ),
        problems,
    )


# -- sections -----------------------------------------------------------------------------------


@dataclass
class Section:
    slug: str
    title: str | Promise
    report: str
    options: dict[str, str]
    chart: dict[str, Any] | None = None
    table: Table | None = None
    tiles: list[tuple[str, str]] = field(default_factory=list)
    error: str = ""
    csv_url: str = ""
    json_url: str = ""
    note: str | Promise = ""


# The reports' column names (English in the CSV and the CLI), for the page to translate.
COLUMN_NAMES = (
    gettext_noop("Group"),
    gettext_noop("Period"),
    gettext_noop("Source"),
    gettext_noop("Campaign"),
    gettext_noop("Stage"),
    gettext_noop("Entered"),
    gettext_noop("Entries"),
    gettext_noop("Contacts"),
    gettext_noop("Entered skipping the previous stage"),
    gettext_noop("Converted to the next stage"),
    gettext_noop("Converted skipping the next stage"),
    gettext_noop("Conversion rate"),
    gettext_noop("Measured"),
    gettext_noop("Still in stage"),
    gettext_noop("Median (days)"),
    gettext_noop("P75 (days)"),
    gettext_noop("P90 (days)"),
    gettext_noop("Mean (days)"),
    gettext_noop("New leads"),
    gettext_noop("New mqls"),
    gettext_noop("New sqls"),
    gettext_noop("New opportunities"),
    gettext_noop("New customers"),
)


def _stage(stage: str) -> str:
    return str(LifecycleStage(stage).label) if stage in LifecycleStage.values else stage


def _shown(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:,.0f}"
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _translated(table: Table, limit: int = 40) -> Table:
    """The table as the page shows it: headers in the user's language, stage names too."""
    header = [_(str(c)) for c in table.columns]
    rows = [
        [_stage(v) if isinstance(v, str) and v in STAGES else v for v in row]
        for row in table.rows[:limit]
    ]
    words = {"lead_to_customer": _("Lead → customer"), "Total": _("Total"), "All": _("All")}
    rows = [[words.get(v, v) if isinstance(v, str) else _cell(v) for v in row] for row in rows]
    return Table(header, rows)


def _cell(value: Any) -> Any:
    """A number as the CSV writes it (so the page and the download agree), with thousands
    separators for whole numbers."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if value == value else None
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    return value


def generic_chart(table: Table) -> dict[str, Any]:
    """A report without its own chart: the first column across, one bar series per numeric
    column."""
    series = []
    for i, name in enumerate(table.columns[1:], start=1):
        values = [row[i] for row in table.rows]
        if values and all(isinstance(v, int | float | Decimal) or v is None for v in values):
            series.append({"name": str(name), "values": [_number(v) for v in values]})
    return {"kind": "grouped_bar", "x": [str(row[0]) for row in table.rows], "series": series}


def _number(value: Any) -> float | None:
    return float(value) if value is not None else None


def _urls(name: str, filters: DashboardFilters, options: dict[str, str]) -> tuple[str, str]:
    spec = get_report(name)
    declared = {o.name for o in spec.options}
    kept = {k: v for k, v in {**filters.options(), **options}.items() if k in declared}
    query = urlencode(
        {"from": filters.date_from.isoformat(), "to": filters.date_to.isoformat(), **kept}
    )
    csv = reverse("analytics:report_csv", kwargs={"name": name}) + "?" + query
    return csv, f"/api/v1/reports/{name}?{query}"


def _run(section: Section, filters: DashboardFilters, user: Viewer) -> Any:
    """Run the section's report with the dashboard's filters (those the report declares)."""
    spec = get_report(section.report)
    if spec.permission and not _allowed(section.report, user):
        section.error = _("Your role does not allow this report.")
        return None
    declared = {o.name for o in spec.options}
    options = {k: v for k, v in {**filters.options(), **section.options}.items() if k in declared}
    section.csv_url, section.json_url = _urls(section.report, filters, section.options)
    try:
        return run_report(
            section.report,
            date_from=filters.date_from.isoformat(),
            date_to=filters.date_to.isoformat(),
            options=options,
        )
    except ReportError as error:
        section.error = str(error)
        return None


def _funnel_chart(result: Any) -> dict[str, Any]:
    return {
        "kind": "funnel",
        "x": [_stage(s.stage) for s in result.total.steps],
        "series": [{"name": _("Entered"), "values": [s.entered for s in result.total.steps]}],
    }


def _conversion_trend(result: Any) -> dict[str, Any]:
    return {
        "kind": "line",
        "x": [g.label for g in result.groups],
        "y_title": _("conversion rate"),
        "percent": True,
        "series": [
            {
                "name": f"{_stage(stage)} → {_stage(STAGES[k + 1])}",
                "values": [g.steps[k].rate for g in result.groups],
            }
            for k, stage in enumerate(STAGES[:-1])
        ],
    }


def _velocity_chart(result: Any) -> dict[str, Any]:
    spans = result.total.spans
    names = [_stage(s.span) if s.span in STAGES else _("Lead → customer") for s in spans]
    return {
        "kind": "grouped_bar",
        "x": names,
        "y_title": _("days"),
        "series": [
            {"name": _("Median"), "values": [s.median_days for s in spans]},
            {"name": "P75", "values": [s.p75_days for s in spans]},
            {"name": "P90", "values": [s.p90_days for s in spans]},
        ],
    }


def _velocity_trend(result: Any) -> dict[str, Any]:
    spans = [s.span for s in result.total.spans]
    return {
        "kind": "line",
        "x": [g.label for g in result.groups],
        "y_title": _("median days"),
        "series": [
            {
                "name": _stage(span) if span in STAGES else _("Lead → customer"),
                "values": [g.spans[i].median_days for g in result.groups],
            }
            for i, span in enumerate(spans)
        ],
    }


def _sources_chart(result: Any, limit: int = 12) -> dict[str, Any]:
    rows = sorted(result.rows, key=lambda r: -r.new["lead"])[:limit]
    return {
        "kind": "grouped_bar",
        "x": [r.label for r in rows],
        "series": [
            {"name": _stage(stage), "values": [r.new[stage] for r in rows]}
            for stage in ("lead", "mql", "sql", "customer")
        ],
    }


def _kpi_tiles(result: Any) -> list[tuple[str, str]]:
    rate = result.mql_acceptance_rate
    deals = result.deals
    currency = result.currency

    def pct(value: Any) -> str:
        return f"{value * 100:.1f} %" if value is not None else "—"

    return [
        (_("New leads"), _shown(result.total.new["lead"])),
        (_("New MQLs"), _shown(result.total.new["mql"])),
        (_("New SQLs"), _shown(result.total.new["sql"])),
        (_("New customers"), _shown(result.total.new["customer"])),
        (_("MQL acceptance (MQL → SQL)"), pct(rate)),
        (_("Win rate (won ÷ closed)"), pct(deals.get("win_rate_closed"))),
        (
            _("Average won deal"),
            f"{_shown(deals.get('average_won'))} {currency}" if deals.get("average_won") else "—",
        ),
        (_("Sales cycle, median days"), _shown(deals.get("cycle_median_days"))),
    ]


FILTER_NAMES = {
    "team": gettext_lazy("team"),
    "source": gettext_lazy("source"),
    "persona": gettext_lazy("persona"),
}

PACE_WORDS = {
    "on track": gettext_lazy("on track"),
    "behind": gettext_lazy("behind"),
    "met": gettext_lazy("met"),
    "missed": gettext_lazy("missed"),
    "not started": gettext_lazy("not started"),
}


@dataclass
class Dashboard:
    filters: DashboardFilters
    problems: list[str]
    tiles: list[tuple[str, str]]
    pacing: dict[str, Any] | None
    sla: Section | None
    sections: list[Section]
    sources: list[str]


def build(filters: DashboardFilters, problems: list[str], user: Viewer) -> Dashboard:
    """Every section of the page, each from its registered report."""
    funnel_s = Section("funnel", gettext_lazy("Funnel"), "funnel", {})
    trend_s = Section(
        "conversion-trend", gettext_lazy("Conversion trend"), "funnel", {"breakdown": "period"}
    )
    velocity_s = Section("velocity", gettext_lazy("Velocity"), "velocity", {})
    vtrend_s = Section(
        "velocity-trend", gettext_lazy("Velocity trend"), "velocity", {"breakdown": "period"}
    )
    sources_s = Section("sources", gettext_lazy("Sources"), "kpis", {"breakdown": "source"})
    kpis_s = Section("kpis", gettext_lazy("New contacts by month"), "kpis", {"breakdown": "period"})
    tiles: list[tuple[str, str]] = []
    pacing = None
    sources: list[str] = []
    with shared_history():
        if (result := _run(funnel_s, filters, user)) is not None:
            funnel_s.chart = _funnel_chart(result)
            funnel_s.table = _translated(result.table())
            funnel_s.note = gettext_lazy(
                "Contacts that entered each stage in the period (once each), followed to the "
                "next stage or beyond at any later time."
            )
        if (result := _run(trend_s, filters, user)) is not None:
            trend_s.chart = _conversion_trend(result)
            trend_s.table = _translated(result.table(), limit=60)
        if (result := _run(velocity_s, filters, user)) is not None:
            velocity_s.chart = _velocity_chart(result)
            velocity_s.table = _translated(result.table())
        if (result := _run(vtrend_s, filters, user)) is not None:
            vtrend_s.chart = _velocity_trend(result)
            vtrend_s.table = _translated(result.table(), limit=60)
        if (result := _run(sources_s, filters, user)) is not None:
            sources_s.chart = _sources_chart(result)
            sources_s.table = _translated(result.table(), limit=25)
            sources = sorted(r.label for r in result.rows if r.key)
        if (result := _run(kpis_s, filters, user)) is not None:
            kpis_s.chart = {**result.chart(), "x": [r.label for r in result.rows]}
            kpis_s.chart["series"] = [
                {**s, "name": _stage(stage)}
                for s, stage in zip(
                    kpis_s.chart["series"], ("lead", "mql", "sql", "customer"), strict=True
                )
            ]
            kpis_s.table = _translated(result.table())
            tiles = _kpi_tiles(result)
            if result.pacing is not None:
                pacing = {**result.pacing.to_dict(), "word": PACE_WORDS[result.pacing.status]}
                pacing["currency"] = result.currency
        sections = [funnel_s, trend_s, velocity_s, vtrend_s, sources_s, kpis_s]
        # Inside the shared cache: the attribution and ROI sections read the touchpoints once.
        for name, title in (
            ("attribution", gettext_lazy("Attribution: models compared")),
            ("roi", gettext_lazy("Campaign ROI")),
        ):
            # A role that may not read a report (ROI for sales reps) does not get its section.
            if name in report_names() and _allowed(name, user):
                sections.append(generic_section(name, title, filters, user))
    sla = (
        generic_section("sla", gettext_lazy("SLA"), filters, user)
        if "sla" in report_names()
        else None
    )
    return Dashboard(filters, problems, tiles, pacing, sla, sections, sources)


def _allowed(name: str, user: Viewer) -> bool:
    permission = get_report(name).permission
    # An API key (SYSTEM) was given its reports scope by an admin: it reads every report.
    return not permission or isinstance(user, System) or bool(user.has_perm(permission))


def generic_section(
    name: str, title: str | Promise, filters: DashboardFilters, user: Viewer
) -> Section:
    """Any registered report: its own chart() if it has one, else one built from its table;
    its headline() as tiles."""
    section = Section(name, title, name, {})
    declared = {o.name for o in get_report(name).options}
    ignored = sorted(set(filters.options()) - declared)
    if ignored:
        # Say so rather than show unfiltered numbers under filters that look applied.
        section.note = _("Not filtered by: %(names)s.") % {
            "names": ", ".join(str(FILTER_NAMES[n]) for n in ignored)
        }
    result = _run(section, filters, user)
    if result is None:
        return section
    try:
        table = result.table()
        section.table = _translated(table, limit=30)
        chart = getattr(result, "chart", None)
        section.chart = chart() if callable(chart) else generic_chart(table)
        headline = getattr(result, "headline", None)
        if callable(headline):
            section.tiles = [(str(label), _shown(value)) for label, value in headline()[:4]]
    except (ReportError, ValueError, TypeError, KeyError) as error:
        # Another app's report that cannot be drawn must not take the page down with it.
        section.error = _("This report could not be shown: %(error)s") % {"error": error}
    return section
