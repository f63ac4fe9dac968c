"""Pages of e-mail sends: the list with each send's progress, the new-send form (who it will
mail and who it skips, before the start button), and each send's report with its pause,
resume and cancel buttons.

Thin views: check access, call one action or query, render.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.automation import send_reports, sending
from embudo.automation.models import EmailTemplate, Send
from embudo.segments.models import Segment
from embudo.web.access import acting_user, role_required

#: "Became MQL/SQL within N days" windows the reports offer.
DAY_CHOICES = (7, 14, 30, 60, 90)


def days_asked(request: HttpRequest) -> int:
    """The report window the page asks for (``?days=``); 30 unless it is one of the choices."""
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        return 30
    return days if days in DAY_CHOICES else 30


@require_GET
@role_required("automation.view_send")
def send_list(request: HttpRequest) -> HttpResponse:
    sends = list(Send.objects.select_related("template", "segment")[:200])
    shown = send_reports.progress(s.pk for s in sends)
    return render(
        request,
        "automation/sends/list.html",
        {
            "rows": [{"send": s, "progress": shown[s.pk]} for s in sends],
            "can_add": request.user.has_perm("automation.add_send"),
        },
    )


def _choices() -> dict[str, Any]:
    return {
        "templates": EmailTemplate.objects.filter(archived=False, current__isnull=False),
        "segments": Segment.objects.order_by("name", "id"),
    }


@require_http_methods(["GET", "POST"])
@role_required("automation.add_send")
def send_new(request: HttpRequest) -> HttpResponse:
    """Choose a template and an audience, see who it will mail, then start it."""
    values = {k: request.POST.get(k, "").strip() for k in ("template", "segment", "name")}
    context: dict[str, Any] = {"values": values, **_choices()}
    if request.method == "POST":
        if not values["template"] or not values["segment"]:
            context["error"] = _("Choose a template and a segment or list.")
        elif request.POST.get("step") == "start":
            try:
                # One transaction: a send that cannot start leaves no draft behind.
                with transaction.atomic():
                    send = sending.create_send(
                        template=values["template"],
                        segment=values["segment"],
                        name=values["name"],
                        actor=acting_user(request),
                    )
                    sending.start_send(send, actor=acting_user(request))
            except sending.SendError as error:
                context["error"] = str(error)
            else:
                messages.success(
                    request,
                    _("Sending started: %(n)s messages queued.") % {"n": send.recipients},
                )
                return redirect("automation:send", send.pk)
        else:
            try:
                audience = sending.preview_of(values["template"], values["segment"])
            except sending.SendError as error:
                context["error"] = str(error)
            else:
                context["audience"] = audience
                context["skipped"] = [
                    (sending.skip_reason_label(reason), n) for reason, n in audience.skipped.items()
                ]
    return render(request, "automation/sends/new.html", context, status=200)


@require_GET
@role_required("automation.view_send")
def send_detail(request: HttpRequest, send_id: int) -> HttpResponse:
    send = get_object_or_404(
        Send.objects.select_related("template", "segment", "version"), pk=send_id
    )
    days = days_asked(request)
    progress = send_reports.progress([send.pk])[send.pk]
    sent = progress.sent
    return render(
        request,
        "automation/sends/detail.html",
        {
            "send": send,
            "progress": progress,
            "rates": {
                "opened": 100.0 * progress.opened / sent if sent else 0.0,
                "clicked": 100.0 * progress.clicked / sent if sent else 0.0,
                "unsubscribed": 100.0 * progress.unsubscribed / sent if sent else 0.0,
            },
            "skipped": [
                (sending.skip_reason_label(r), n)
                for r, n in send_reports.skip_reasons(send).items()
            ],
            "links": send_reports.clicks_by_link(send),
            "effect": send_reports.funnel_effect(send, days),
            "days": days,
            "day_choices": DAY_CHOICES,
            "can_change": request.user.has_perm("automation.change_send"),
        },
    )


def _step(request: HttpRequest, send_id: int, step: Any, done: str) -> HttpResponse:
    send = get_object_or_404(Send, pk=send_id)
    try:
        step(send, actor=acting_user(request))
    except sending.SendError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, done)
    return redirect("automation:send", send.pk)


@require_POST
@role_required("automation.change_send")
def send_pause(request: HttpRequest, send_id: int) -> HttpResponse:
    return _step(request, send_id, sending.pause_send, _("Send paused."))


@require_POST
@role_required("automation.change_send")
def send_resume(request: HttpRequest, send_id: int) -> HttpResponse:
    return _step(request, send_id, sending.resume_send, _("Send resumed."))


@require_POST
@role_required("automation.change_send")
def send_cancel(request: HttpRequest, send_id: int) -> HttpResponse:
    return _step(request, send_id, sending.cancel_send, _("Send cancelled."))
