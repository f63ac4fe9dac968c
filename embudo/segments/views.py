"""Pages: segments and personas with their counts, a segment's members, and the editors that
show the live count as the conditions change.

Thin views: check access, call one query or action, render. The editors' live count comes
from ``POST /api/v1/segments/preview``, called by ``segments/editor.js`` as you type.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from embudo.crm import queries as crm_queries
from embudo.errors import ValidationFailed
from embudo.segments import actions, queries
from embudo.segments.conditions import (
    OPERATORS,
    ConditionError,
    field_names,
    field_spec,
)
from embudo.segments.models import Persona, Segment, SegmentKind
from embudo.segments.schemas import readable
from embudo.web.access import acting_user, role_required

EXAMPLE = {
    "all": [
        {"field": "lifecycle_stage", "op": "in", "value": ["lead", "mql"]},
        {
            "event": {
                "type": "page_view",
                "where": [{"field": "url", "op": "contains", "value": "/pricing"}],
            },
            "count": {"op": "gte", "value": 3},
            "within_days": 14,
        },
    ]
}


@require_GET
@role_required("segments.view_segment")
def segment_list(request: HttpRequest) -> HttpResponse:
    """Every segment (its count follows), and the personas in priority order."""
    # Counts arrive one by one from the API (segments/counts.js): on a big database each is a
    # query of its own, and the page should not wait for all of them.
    segments = [
        {"segment": s, "text": readable(s.conditions)}
        for s in Segment.objects.order_by("name", "id")
    ]
    counts = queries.persona_counts()
    personas = [
        {"persona": p, "count": counts.get(p.pk, 0), "text": readable(p.conditions)}
        for p in queries.personas()
    ]
    return render(
        request,
        "segments/list.html",
        {
            "segments": segments,
            "personas": personas,
            "can_add": request.user.has_perm("segments.add_segment"),
            "can_edit_personas": request.user.has_perm("segments.change_persona"),
        },
    )


@require_GET
@role_required("segments.view_segment")
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    try:
        members = queries.segment_contacts(segment, request.user).select_related("company", "owner")
        page = Paginator(members, 50).get_page(request.GET.get("page"))
        problem = ""
    except ConditionError as error:
        page, problem = None, str(error)
    rows = list(page) if page is not None else []
    personas = queries.persona_names(c.pk for c in rows)
    return render(
        request,
        "segments/detail.html",
        {
            "segment": segment,
            "text": readable(segment.conditions),
            "page": page,
            "members": [{"contact": c, "persona": personas.get(c.pk, "")} for c in rows],
            "problem": problem,
            "can_change": request.user.has_perm("segments.change_segment"),
            "can_manage_members": segment.kind == SegmentKind.STATIC
            and request.user.has_perm("segments.add_segmentmember"),
        },
    )


def _fields_help() -> list[dict[str, Any]]:
    rows = []
    for name in field_names():
        spec = field_spec(name)
        if spec is not None:
            rows.append({"name": name, "type": spec.type, "ops": ", ".join(spec.operators())})
    return rows


def _editor(
    request: HttpRequest,
    template: str,
    obj: Any,
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        template,
        {
            "object": obj,
            "values": values,
            "errors": errors,
            "fields_help": _fields_help(),
            "operators": OPERATORS,
            "example": json.dumps(EXAMPLE, indent=2),
            "kinds": SegmentKind.choices,
        },
        status=status,
    )


def _parse_conditions(raw: str) -> Any:
    """The textarea's JSON; left as text when malformed so the language's message names it."""
    raw = raw.strip()
    return raw if raw else {}


@require_http_methods(["GET", "POST"])
@role_required("segments.add_segment")
def segment_new(request: HttpRequest) -> HttpResponse:
    return _segment_form(request, None)


@require_http_methods(["GET", "POST"])
@role_required("segments.change_segment")
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    return _segment_form(request, get_object_or_404(Segment, pk=segment_id))


def _segment_form(request: HttpRequest, segment: Segment | None) -> HttpResponse:
    if request.method == "GET":
        values = {
            "name": segment.name if segment else "",
            "description": segment.description if segment else "",
            "kind": segment.kind if segment else SegmentKind.DYNAMIC,
            "conditions": json.dumps(segment.conditions, indent=2) if segment else "",
        }
        return _editor(request, "segments/segment_form.html", segment, values, {})
    values = {
        "name": request.POST.get("name", ""),
        "description": request.POST.get("description", ""),
        "kind": segment.kind if segment else request.POST.get("kind", SegmentKind.DYNAMIC),
        "conditions": request.POST.get("conditions", ""),
    }
    data = {**values, "conditions": _parse_conditions(values["conditions"])}
    if values["kind"] == SegmentKind.STATIC:
        data["conditions"] = {}
    try:
        if segment is None:
            segment = actions.create_segment(data, actor=acting_user(request))
            messages.success(request, _("Segment created."))
        else:
            actions.update_segment(segment, data, actor=acting_user(request))
            messages.success(request, _("Segment saved."))
    except ValidationFailed as failed:
        return _editor(request, "segments/segment_form.html", segment, values, failed.errors, 422)
    return redirect("segments:detail", segment.pk)


@require_POST
@role_required("segments.delete_segment")
def segment_delete(request: HttpRequest, segment_id: int) -> HttpResponse:
    actions.delete_segment(get_object_or_404(Segment, pk=segment_id), actor=acting_user(request))
    messages.success(request, _("Segment deleted."))
    return redirect("segments:list")


@require_POST
@role_required("segments.add_segmentmember")
def members_add(request: HttpRequest, segment_id: int) -> HttpResponse:
    """Add contacts to a static list by email or id, one or more separated by commas or lines."""
    segment = get_object_or_404(Segment, pk=segment_id)
    tokens = [t.strip() for t in request.POST.get("contacts", "").replace(",", "\n").splitlines()]
    tokens = [t for t in tokens if t]
    visible = crm_queries.visible_contacts(request.user)
    ids = [int(t) for t in tokens if t.isdigit()]
    emails = [t.lower() for t in tokens if not t.isdigit()]
    found = dict(visible.filter(email__in=emails).values_list("email", "pk"))
    unknown = [e for e in emails if e not in found]
    if unknown:
        messages.error(
            request, _("No contact with the email %(emails)s.") % {"emails": ", ".join(unknown[:5])}
        )
        return redirect("segments:detail", segment.pk)
    try:
        added = actions.add_members(
            segment,
            [*ids, *found.values()],
            actor=acting_user(request),
            visible=crm_queries.contact_visibility(request.user),
        )
    except ValidationFailed as failed:
        messages.error(request, "; ".join(m for msgs in failed.errors.values() for m in msgs))
    else:
        messages.success(request, _("%(n)d contacts added.") % {"n": added})
    return redirect("segments:detail", segment.pk)


@require_POST
@role_required("segments.delete_segmentmember")
def members_remove(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = get_object_or_404(Segment, pk=segment_id)
    ids = [int(v) for v in request.POST.getlist("contact_id") if v.isdigit()]
    try:
        removed = actions.remove_members(segment, ids, actor=acting_user(request))
    except ValidationFailed as failed:
        messages.error(request, "; ".join(m for msgs in failed.errors.values() for m in msgs))
    else:
        messages.success(request, _("%(n)d contacts removed.") % {"n": removed})
    return redirect("segments:detail", segment.pk)


# -- personas -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@role_required("segments.add_persona")
def persona_new(request: HttpRequest) -> HttpResponse:
    return _persona_form(request, None)


@require_http_methods(["GET", "POST"])
@role_required("segments.change_persona")
def persona_edit(request: HttpRequest, persona_id: int) -> HttpResponse:
    return _persona_form(request, get_object_or_404(Persona, pk=persona_id))


def _persona_form(request: HttpRequest, persona: Persona | None) -> HttpResponse:
    if request.method == "GET":
        initial = {
            "name": persona.name if persona else "",
            "description": persona.description if persona else "",
            "priority": persona.priority if persona else 100,
            "conditions": json.dumps(persona.conditions, indent=2) if persona else "",
        }
        return _editor(request, "segments/persona_form.html", persona, initial, {})
    values: dict[str, str] = {
        "name": request.POST.get("name", ""),
        "description": request.POST.get("description", ""),
        "priority": request.POST.get("priority", "100"),
        "conditions": request.POST.get("conditions", ""),
    }
    data: dict[str, Any] = {**values, "conditions": _parse_conditions(values["conditions"])}
    try:
        data["priority"] = int(values["priority"])
    except ValueError:
        return _editor(
            request,
            "segments/persona_form.html",
            persona,
            values,
            {"priority": [_("a whole number (lowest first)")]},
            422,
        )
    try:
        if persona is None:
            persona = actions.create_persona(data, actor=acting_user(request))
            messages.success(request, _("Persona created; contacts reassigned."))
        else:
            actions.update_persona(persona, data, actor=acting_user(request))
            messages.success(request, _("Persona saved; contacts reassigned."))
    except ValidationFailed as failed:
        return _editor(request, "segments/persona_form.html", persona, values, failed.errors, 422)
    return redirect("segments:list")


@require_POST
@role_required("segments.delete_persona")
def persona_delete(request: HttpRequest, persona_id: int) -> HttpResponse:
    actions.delete_persona(get_object_or_404(Persona, pk=persona_id), actor=acting_user(request))
    messages.success(request, _("Persona deleted; contacts reassigned."))
    return redirect("segments:list")
