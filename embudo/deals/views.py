"""Pages: the pipeline board, deal list and page, forecast, and the plan.

Thin views: parse the request, check access, call one query, report or action, render. Every
deal page needs the role's ``deals.view_deal`` (marketing has none: 403); the plan page needs
``deals.view_goal``, which marketing holds, since the plan states its MQL commitment.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.accounts.roles import SALES, role_of
from embudo.crm.models import Contact
from embudo.deals import actions, queries
from embudo.deals.forms import DealFilterForm, DealForm, GoalForm, MoveForm, PlanForm, ReportForm
from embudo.deals.models import LostReason, Pipeline, Stage
from embudo.deals.periods import PeriodError, current, parse_period
from embudo.deals.planner import PlanError, PlanRequest, make_plan, parse_rate
from embudo.deals.reports import (
    ForecastRequest,
    SalesRequest,
    forecast,
    month_range,
    sales_metrics,
)
from embudo.errors import ValidationFailed
from embudo.reports.render import as_csv, as_json
from embudo.web.access import acting_user, role_required

# The plan's words for stages and pace, as the page shows them.
STAGE_LABELS = {
    "visitor": gettext_lazy("Visitors"),
    "lead": gettext_lazy("Leads"),
    "mql": gettext_lazy("MQLs"),
    "sql": gettext_lazy("SQLs"),
    "opportunity": gettext_lazy("Opportunities"),
    "customer": gettext_lazy("Deals won"),
}
PACE_LABELS = {
    "on track": gettext_lazy("on track"),
    "behind": gettext_lazy("behind"),
    "met": gettext_lazy("met"),
    "missed": gettext_lazy("missed"),
    "not started": gettext_lazy("not started"),
}
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def _owners(request: HttpRequest) -> list[Any]:
    return [] if role_of(request.user) == SALES else list(queries.deal_owners())


# -- the board ----------------------------------------------------------------------------------


@require_GET
@role_required("deals.view_deal")
def board(request: HttpRequest) -> HttpResponse:
    pipeline = _pipeline(request.GET.get("pipeline"))
    owner_id = request.user.pk if request.GET.get("owner") == "me" else None
    return render(
        request,
        "deals/board.html",
        {
            "pipeline": pipeline,
            "pipelines": Pipeline.objects.all(),
            "columns": queries.board(request.user, pipeline, owner_id=owner_id),
            "mine": owner_id is not None,
            "currency": actions.reporting_currency(),
            "lost_reasons": queries.lost_reasons(),
            "can_move": request.user.has_perm("deals.change_deal"),
            "can_add": request.user.has_perm("deals.add_deal"),
        },
    )


def _pipeline(raw: str | None) -> Pipeline:
    default = actions.default_pipeline()
    if raw and raw.isdigit():
        return Pipeline.objects.filter(pk=int(raw)).first() or default
    return default


# -- list, page, new ----------------------------------------------------------------------------


@require_GET
@role_required("deals.view_deal")
def deal_list(request: HttpRequest) -> HttpResponse:
    form = DealFilterForm(request.GET)
    form.is_valid()  # a malformed value is dropped and filters nothing
    params = form.cleaned_data
    owner = params.get("owner") or ""
    filters = queries.DealFilter(
        search=params.get("q") or "",
        pipeline_id=params.get("pipeline"),
        stage_id=params.get("stage"),
        status=params.get("status") or "",
        owner_id=request.user.pk if owner == "me" else (int(owner) if owner.isdigit() else None),
        unassigned=owner == "none",
        closing_from=params.get("closing_from"),
        closing_to=params.get("closing_to"),
    )
    page = Paginator(queries.deal_list(request.user, filters), 50).get_page(request.GET.get("page"))
    kept = {k: v for k, v in request.GET.items() if k != "page" and v}
    return render(
        request,
        "deals/deal_list.html",
        {
            "page": page,
            "filters": kept,
            "query_prefix": "?" + (urlencode(kept) + "&" if kept else ""),
            "pipelines": queries.pipelines(),
            "statuses": [("open", _("Open")), ("won", _("Won")), ("lost", _("Lost"))],
            "owners": _owners(request),
            "currency": actions.reporting_currency(),
        },
    )


def _visible_deal(request: HttpRequest, deal_id: int) -> Any:
    deal = queries.deal_detail(request.user, deal_id)
    if deal is None:
        raise Http404(_("No such deal."))
    return deal


@require_GET
@role_required("deals.view_deal")
def deal_detail(request: HttpRequest, deal_id: int) -> HttpResponse:
    return _render_deal(request, _visible_deal(request, deal_id))


def _render_deal(
    request: HttpRequest, deal: Any, form: MoveForm | None = None, status: int = 200
) -> HttpResponse:
    return render(
        request,
        "deals/deal_detail.html",
        {
            "deal": deal,
            "contacts": deal.contacts.order_by("last_name", "first_name"),
            "history": queries.stage_history(deal),
            "stages": Stage.objects.filter(pipeline_id=deal.pipeline_id).order_by("position"),
            "lost_reasons": queries.lost_reasons(),
            "form": form or MoveForm(initial={"stage": deal.stage_id}),
            "can_move": request.user.has_perm("deals.change_deal"),
            "currency": actions.reporting_currency(),
        },
        status=status,
    )


@require_POST
@role_required("deals.change_deal")
def deal_move(request: HttpRequest, deal_id: int) -> HttpResponse:
    deal = _visible_deal(request, deal_id)
    form = MoveForm(request.POST)
    if form.is_valid():
        stage = Stage.objects.filter(pk=form.cleaned_data["stage"]).first()
        reason_id = form.cleaned_data.get("lost_reason")
        reason = LostReason.objects.filter(pk=reason_id).first() if reason_id else None
        if stage is None:
            form.add_error("stage", _("No such stage."))
        else:
            try:
                change = actions.move_deal_stage(
                    deal,
                    stage,
                    actor=acting_user(request),
                    lost_reason=reason,
                    lost_note=form.cleaned_data.get("note") or "",
                )
            except ValidationFailed as failed:
                for problems in failed.errors.values():
                    for problem in problems:
                        form.add_error(None, problem)
            else:
                if change is None:
                    messages.info(request, _("The deal is already at that stage."))
                else:
                    messages.success(request, _("Deal moved to %(stage)s.") % {"stage": stage.name})
                return redirect("deals:detail", deal_id=deal.pk)
    return _render_deal(request, deal, form, status=400)


@require_http_methods(["GET", "POST"])
@role_required("deals.add_deal")
def deal_new(request: HttpRequest) -> HttpResponse:
    pipeline = _pipeline(request.GET.get("pipeline") or request.POST.get("pipeline"))
    stages = pipeline.stages.filter(kind="open").order_by("position")
    contact = _contact_for(request)
    if request.method == "POST":
        form = DealForm(request.POST)
        if form.is_valid():
            data = form.action_data()
            if role_of(request.user) == SALES and not data.get("owner_id"):
                data["owner_id"] = request.user.pk
            try:
                deal = actions.create_deal(data, actor=acting_user(request))
            except ValidationFailed as failed:
                for name, problems in failed.errors.items():
                    field = name.removesuffix("_id").removesuffix("_ids")
                    for problem in problems:
                        form.add_error(field if field in form.fields else None, problem)
            else:
                messages.success(request, _("Deal created."))
                return redirect("deals:detail", deal_id=deal.pk)
    else:
        form = DealForm(
            initial={
                "currency": actions.reporting_currency(),
                "stage": stages[0].pk if stages else None,
                "expected_close_date": dt.date.today() + dt.timedelta(days=30),
                "owner": request.user.pk,
                "contact": contact.pk if contact else None,
                "company": contact.company_id if contact else None,
                "name": f"{contact.company.name if contact and contact.company else contact}"
                if contact
                else "",
            }
        )
    return render(
        request,
        "deals/deal_form.html",
        {
            "form": form,
            "pipeline": pipeline,
            "stages": stages,
            "owners": _owners(request),
            "product_lines": queries.product_lines(),
            "contact": contact,
        },
        status=400 if request.method == "POST" else 200,
    )


def _contact_for(request: HttpRequest) -> Contact | None:
    raw = request.GET.get("contact") or request.POST.get("contact") or ""
    if not raw.isdigit():
        return None
    from embudo.crm.queries import visible_contacts

    return visible_contacts(request.user).select_related("company").filter(pk=int(raw)).first()


# -- forecast -----------------------------------------------------------------------------------


@require_GET
@role_required("deals.view_deal")
def forecast_page(request: HttpRequest) -> HttpResponse:
    form = ReportForm(request.GET)
    form.is_valid()
    params = form.cleaned_data
    default_from, default_to = month_range(months_back=2)
    start = params.get("date_from") or default_from
    end = params.get("date_to") or (default_to + dt.timedelta(days=92))
    if end < start:
        start, end = end, start
        messages.info(request, _("The dates were swapped: the period ended before it began."))
    by = params.get("by") or "period"
    result = forecast(ForecastRequest(date_from=start, date_to=end, by=by))
    sales = sales_metrics(SalesRequest(date_from=start, date_to=end, by="owner"))
    fmt = request.GET.get("format")
    which = sales if request.GET.get("report") == "sales" else result
    if fmt == "csv":
        response = HttpResponse(as_csv(which.table()), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = (
            f'attachment; filename="{which.to_dict()["report"]}-{start}-{end}.csv"'
        )
        return response
    if fmt == "json":
        return HttpResponse(as_json(which), content_type="application/json")
    chart = {
        "labels": [row.label for row in result.rows],
        "closed_won": [float(r.closed_won) for r in result.rows],
        "commit": [float(r.commit) for r in result.rows],
        "best_case": [float(r.best_case) for r in result.rows],
        "pipeline": [float(r.pipeline) for r in result.rows],
        "expected": [float(r.expected) for r in result.rows],
        "currency": result.currency,
        "names": {
            "closed_won": _("Closed won"),
            "commit": _("Commit"),
            "best_case": _("Best case"),
            "pipeline": _("Pipeline"),
            "expected": _("Expected (won + weighted)"),
        },
    }
    query = urlencode({"date_from": start, "date_to": end, "by": by})
    return render(
        request,
        "deals/forecast.html",
        {
            "result": result,
            "sales": sales,
            "start": start,
            "end": end,
            "by": by,
            "chart": chart,
            "csv_url": f"?{query}&format=csv",
            "json_url": f"?{query}&format=json",
            "sales_csv_url": f"?{query}&format=csv&report=sales",
        },
    )


# -- the plan -----------------------------------------------------------------------------------


@require_GET
@role_required("deals.view_goal")
def plan_page(request: HttpRequest) -> HttpResponse:
    form = PlanForm(request.GET or None)
    plan = None
    error = ""
    period = current("month")
    if form.is_bound and not form.is_valid():
        error = _("Some values could not be read; see the form.")
    else:
        data = form.cleaned_data if form.is_bound else {}
        try:
            if data.get("period"):
                period = parse_period(data["period"])
            rates = tuple(
                parse_rate(t) for t in (data.get("rates") or "").replace(",", " ").split()
            )
            plan = make_plan(
                PlanRequest(
                    period=period,
                    revenue=data.get("revenue"),
                    deal_value=data.get("deal_value"),
                    rates=rates,
                )
            )
        except (PlanError, PeriodError) as failure:
            error = str(failure)
    chart = None
    steps = []
    if plan is not None:
        steps = [
            (s, STAGE_LABELS[s.stage], PACE_LABELS.get(s.status, s.status)) for s in plan.steps
        ]
        shown = [s for s in reversed(plan.steps) if s.needed is not None]
        chart = {
            "stages": [str(STAGE_LABELS[s.stage]) for s in shown],
            "needed": [s.needed for s in shown],
            "actual": [s.actual or 0 for s in shown],
            "names": {"needed": _("Needed"), "actual": _("So far")},
        }
    goal = (
        queries.goals()
        .filter(period_kind=period.kind, period_start=period.start, team=None, owner=None)
        .first()
    )
    return render(
        request,
        "deals/plan.html",
        {
            "form": form,
            "plan": plan,
            "steps": steps,
            "revenue_status": PACE_LABELS.get(plan.revenue_status, "") if plan else "",
            "error": error,
            "period": period,
            "goal": goal,
            "chart": chart,
            "goal_form": GoalForm(
                initial={"period": period.label, "amount": goal.amount if goal else None}
            ),
            "can_set_goal": request.user.has_perm("deals.add_goal"),
        },
    )


@require_POST
@role_required("deals.add_goal")
def goal_set(request: HttpRequest) -> HttpResponse:
    form = GoalForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The goal needs a period and an amount."))
        return redirect("deals:plan")
    try:
        period = parse_period(form.cleaned_data["period"])
        actions.set_goal(period, form.cleaned_data["amount"], actor=acting_user(request))
    except PeriodError as error:
        messages.error(request, str(error))
        return redirect("deals:plan")
    except ValidationFailed as failed:
        messages.error(request, " ".join(m for ms in failed.errors.values() for m in ms))
        return redirect(reverse("deals:plan") + "?" + urlencode({"period": period.label}))
    messages.success(request, _("Goal for %(period)s saved.") % {"period": period.label})
    return redirect(reverse("deals:plan") + "?" + urlencode({"period": period.label}))


# -- Plotly, from the installed wheel -----------------------------------------------------------


@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """Plotly's JavaScript as the ``plotly`` package ships it: no CDN, works offline."""
    response = FileResponse(open(PLOTLY_JS, "rb"), content_type="text/javascript")  # noqa: SIM115
    response["Cache-Control"] = "public, max-age=86400"
    return response
