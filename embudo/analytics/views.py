"""Pages: the shared dashboard, and any registered report as a CSV download with the same
filters (the JSON download is the API's ``/api/v1/reports/NAME``)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from embudo.analytics import dashboard
from embudo.analytics.funnel import persona_available
from embudo.deals.queries import teams
from embudo.reports import ReportError, get_report, run_report
from embudo.reports.render import as_csv
from embudo.web.access import role_required

# Every role reads the shared funnel: all of them hold this permission.
DASHBOARD_PERMISSION = "crm.view_lifecycletransition"


def _personas() -> list[tuple[int, str]]:
    if not persona_available():
        return []
    from embudo.segments.queries import personas

    return list(personas().order_by("name").values_list("pk", "name"))


@require_GET
@role_required(DASHBOARD_PERMISSION)
def dashboard_page(request: HttpRequest) -> HttpResponse:
    filters, problems = dashboard.read_filters(request.GET)
    board = dashboard.build(filters, problems, request.user)
    charts = {s.slug: s.chart for s in board.sections if s.chart}
    return render(
        request,
        "analytics/dashboard.html",
        {
            "board": board,
            "filters": filters,
            "teams": list(teams().values_list("pk", "name")),
            "personas": _personas(),
            "charts": charts,
        },
    )


@require_GET
@role_required(DASHBOARD_PERMISSION)
def report_csv(request: HttpRequest, name: str) -> HttpResponse:
    """A registered report as CSV: the query string is the API's (``from``, ``to``, options)."""
    try:
        spec = get_report(name)
    except ReportError as error:
        return HttpResponse(str(error), status=404, content_type="text/plain; charset=utf-8")
    if spec.permission and not request.user.has_perm(spec.permission):
        raise PermissionDenied(_("Your role does not allow this."))
    options: dict[str, Any] = {k: v for k, v in request.GET.items() if k not in ("from", "to")}
    try:
        result = run_report(
            name, date_from=request.GET.get("from"), date_to=request.GET.get("to"), options=options
        )
    except ReportError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain; charset=utf-8")
    response = HttpResponse(as_csv(result.table()), content_type="text/csv; charset=utf-8")
    start, end = request.GET.get("from", ""), request.GET.get("to", "")
    stem = "-".join(p for p in (name, start, end) if p)
    response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    return response
