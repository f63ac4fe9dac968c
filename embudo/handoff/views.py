"""Pages: the lead inbox (a rep's MQLs by SLA due time, a manager's whole team and the fallback
queue), one-click feedback, the SLA page both teams read, notifications and the settings.

Thin views: parse the request, check access, call one query, report or action, render.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.crm.models import Activity
from embudo.deals import queries as deals_queries
from embudo.errors import ValidationFailed
from embudo.handoff import actions, queries, reports
from embudo.handoff.models import SlaState, Verdict
from embudo.handoff.setup import KINDS, SettingKind
from embudo.reports import ReportError, parse_date
from embudo.scoring import queries as scoring_queries
from embudo.web.access import acting_user, role_required

INBOX_PAGE = 50
# The commitments' pace words, as the SLA page shows them.
PACE_LABELS = {
    "on track": gettext_lazy("on track"),
    "behind": gettext_lazy("behind"),
    "met": gettext_lazy("met"),
    "missed": gettext_lazy("missed"),
    "not started": gettext_lazy("not started"),
    "below": gettext_lazy("below"),
    "no verdicts yet": gettext_lazy("no verdicts yet"),
}


def _recent_activity(contact_ids: list[int], per_contact: int = 3) -> dict[int, list[Activity]]:
    recent: dict[int, list[Activity]] = defaultdict(list)
    query = Activity.objects.filter(contact_id__in=contact_ids).order_by("-occurred_at", "-id")
    for activity in query[: len(contact_ids) * 10]:
        if len(recent[activity.contact_id]) < per_contact:
            recent[activity.contact_id].append(activity)
    return recent


@require_GET
@role_required("handoff.change_handoff")
def inbox(request: HttpRequest) -> HttpResponse:
    manager = queries.sees_team(request.user)
    owner = request.GET.get("owner", "" if manager else "me")
    team = request.GET.get("team", "")
    filters = queries.InboxFilter(
        owner_id=request.user.pk if owner == "me" else int(owner) if owner.isdigit() else None,
        queue=owner == "queue",
        team_id=int(team) if team.isdigit() else None,
        state=request.GET.get("state", ""),
    )
    page = Paginator(queries.inbox(acting_user(request), filters), INBOX_PAGE).get_page(
        request.GET.get("page")
    )
    rows = list(page)
    recent = _recent_activity([h.contact_id for h in rows])
    scores = scoring_queries.scores_for([h.contact_id for h in rows]) if rows else {}
    now = timezone.now()
    for handoff in rows:
        handoff.recent = recent.get(handoff.contact_id, [])  # type: ignore[attr-defined]
        # Why this lead: the score now (each enabled model) and the rules that weigh most.
        handoff.scores = scores.get(handoff.contact_id, [])  # type: ignore[attr-defined]
        due = handoff.first_touch_due if handoff.first_touch_at is None else handoff.decision_due
        handoff.due = due  # type: ignore[attr-defined]
        handoff.overdue = bool(due and due < now)  # type: ignore[attr-defined]
    return render(
        request,
        "handoff/inbox.html",
        {
            "page": page,
            "rows": rows,
            "manager": manager,
            "owner": owner,
            "team": team,
            "state": filters.state,
            "states": SlaState.choices,
            "teams": deals_queries.teams() if manager else [],
            "owners": deals_queries.deal_owners() if manager else [],
            "reject_reasons": queries.reasons(Verdict.REJECTED),
            "recycle_reasons": queries.reasons(Verdict.RECYCLED),
            "query": request.GET.urlencode(),
        },
    )


def _back(request: HttpRequest) -> HttpResponse:
    target = request.POST.get("next") or reverse("handoff:inbox")
    if not target.startswith("/"):
        target = reverse("handoff:inbox")
    return redirect(target)


@require_POST
@role_required("handoff.add_feedback")
def feedback(request: HttpRequest, handoff_id: int) -> HttpResponse:
    handoff = queries.handoff_detail(request.user, handoff_id)
    if handoff is None:
        raise Http404(_("No such lead."))
    verdict = request.POST.get("verdict", "")
    try:
        actions.record_feedback(
            handoff.contact,
            verdict,
            reason=request.POST.get("reason") or None,
            note=request.POST.get("note", ""),
            actor=acting_user(request),
        )
    except ValidationFailed as failed:
        for field, problems in failed.errors.items():
            messages.error(request, f"{field}: {' '.join(problems)}")
        return _back(request)
    words = {
        Verdict.ACCEPTED: _("%(lead)s accepted: it is an SQL now."),
        Verdict.REJECTED: _("%(lead)s rejected."),
        Verdict.RECYCLED: _("%(lead)s recycled back to marketing."),
    }
    messages.success(request, words[Verdict(verdict)] % {"lead": handoff.contact})
    return _back(request)


@require_POST
@role_required("handoff.delete_handoff")
def reassign(request: HttpRequest, handoff_id: int) -> HttpResponse:
    handoff = queries.handoff_detail(request.user, handoff_id)
    if handoff is None:
        raise Http404(_("No such lead."))
    try:
        actions.reassign(handoff, request.POST.get("owner_id"), actor=acting_user(request))
    except ValidationFailed as failed:
        for problems in failed.errors.values():
            messages.error(request, " ".join(problems))
        return _back(request)
    messages.success(request, _("%(lead)s reassigned.") % {"lead": handoff.contact})
    return _back(request)


@require_GET
@role_required("handoff.view_handoff")
def sla_page(request: HttpRequest) -> HttpResponse:
    try:
        start = parse_date(request.GET.get("from"), "from")
        end = parse_date(request.GET.get("to"), "to")
    except ReportError as error:
        messages.error(request, str(error))
        start = end = None
    by = request.GET.get("by", "rep")
    by = by if by in reports.BREAKDOWNS else "rep"
    interval = request.GET.get("interval", "month")
    interval = interval if interval in reports.INTERVALS else "month"
    if start is None and end is None:
        today = timezone.localdate()
        start = today.replace(day=1) - dt.timedelta(days=150)
        start = start.replace(day=1)
    report = reports.sla_report(start, end, by=by, interval=interval)
    loop_by = request.GET.get("loop", "source")
    loop_by = loop_by if loop_by in reports.FEEDBACK_BREAKDOWNS else "source"
    return render(
        request,
        "handoff/sla.html",
        {
            "report": report,
            "by": by,
            "interval": interval,
            "commitments": [
                (c, PACE_LABELS.get(c.volume_pace, ""), PACE_LABELS.get(c.quality_pace, ""))
                for c in reports.current_commitments()
            ],
            "loop_by": loop_by,
            "loop_choices": reports.FEEDBACK_BREAKDOWNS,
            "loop": reports.rejections_by(loop_by, report.date_from, report.date_to)[:15],
            "suggestions": reports.fit_suggestions(report.date_from, report.date_to)[:10],
            "date_from": report.date_from,
            "date_to": report.date_to,
            "can_settle": request.user.has_perm("handoff.view_slapolicy"),
        },
    )


@require_http_methods(["GET", "POST"])
@role_required("handoff.view_notification")
def notifications(request: HttpRequest) -> HttpResponse:
    items = queries.notifications(acting_user(request))
    if request.method == "POST":
        items.filter(read_at__isnull=True).update(read_at=timezone.now())
        return redirect("handoff:notifications")
    return render(request, "handoff/notifications.html", {"items": items[:100]})


# -- settings -----------------------------------------------------------------------------------


def _kind(request: HttpRequest, slug: str, action: str) -> SettingKind:
    kind = KINDS.get(slug)
    if kind is None:
        raise Http404(_("No such setting."))
    if not request.user.has_perm(kind.perm(action)):
        raise PermissionDenied(_("Your role does not allow this."))
    return kind


@require_GET
@role_required("handoff.view_slapolicy")
def settings_index(request: HttpRequest) -> HttpResponse:
    kinds = [k for k in KINDS.values() if request.user.has_perm(k.perm("view"))]
    return render(request, "handoff/settings_index.html", {"kinds": kinds})


@require_GET
@role_required("handoff.view_slapolicy")
def settings_list(request: HttpRequest, kind: str) -> HttpResponse:
    setting = _kind(request, kind, "view")
    records = setting.model._default_manager.all()
    columns = [getattr(setting.model._meta.get_field(f), "verbose_name", f) for f in setting.fields]
    rows = [(r, [getattr(r, f) for f in setting.fields]) for r in records]
    return render(
        request,
        "handoff/settings_list.html",
        {
            "kind": setting,
            "columns": columns,
            "rows": rows,
            "can_add": request.user.has_perm(setting.perm("add")),
            "can_change": request.user.has_perm(setting.perm("change")),
        },
    )


@require_http_methods(["GET", "POST"])
@role_required("handoff.view_slapolicy")
def settings_edit(request: HttpRequest, kind: str, pk: int | None = None) -> HttpResponse:
    setting = _kind(request, kind, "change" if pk else "add")
    record = None
    if pk is not None:
        record = setting.model._default_manager.filter(pk=pk).first()
        if record is None:
            raise Http404(_("No such setting."))
    form_class = forms.modelform_factory(setting.model, fields=setting.fields)
    form = form_class(request.POST or None, instance=record)
    if request.method == "POST" and form.is_valid():
        try:
            actions.save_setting(form.save(commit=False), actor=acting_user(request))
        except ValidationFailed as failed:
            for field, problems in failed.errors.items():
                form.add_error(field if field in form.fields else None, " ".join(problems))
        else:
            messages.success(request, _("Saved."))
            return redirect("handoff:settings_list", kind=setting.slug)
    return render(
        request,
        "handoff/settings_form.html",
        {
            "kind": setting,
            "form": form,
            "record": record,
            "can_delete": record is not None and request.user.has_perm(setting.perm("delete")),
        },
    )


@require_POST
@role_required("handoff.view_slapolicy")
def settings_delete(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    setting = _kind(request, kind, "delete")
    record = setting.model._default_manager.filter(pk=pk).first()
    if record is None:
        raise Http404(_("No such setting."))
    try:
        actions.delete_setting(record, actor=acting_user(request))
    except ValidationFailed as failed:
        for problems in failed.errors.values():
            messages.error(request, " ".join(problems))
        return redirect("handoff:settings_edit", kind=setting.slug, pk=pk)
    messages.success(request, _("Deleted."))
    return redirect("handoff:settings_list", kind=setting.slug)
