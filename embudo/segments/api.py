"""API endpoints of the segments app: segments (CRUD, count, members, CSV export, static list
members), the editor's live preview, and personas.

Members and counts are those the caller may see: a user's role narrows them as the contact
list does; an API key sees every contact.
"""

from __future__ import annotations

import io
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import Query, Router, Status

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.crm import queries as crm_queries
from embudo.crm.exporting import export_csv
from embudo.crm.schemas import Error, PageQuery
from embudo.segments import actions, queries
from embudo.segments.conditions import ConditionError, describe_condition, validate_condition
from embudo.segments.models import Persona, Segment
from embudo.segments.schemas import (
    Count,
    MemberPage,
    MembersChanged,
    MembersIn,
    PersonaIn,
    PersonaList,
    PersonaOut,
    PreviewIn,
    PreviewOut,
    SegmentIn,
    SegmentList,
    SegmentOut,
    persona_data,
    segment_data,
)

router: Router = Router(tags=["Segments"])

ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}
MAX_MEMBER_IDS = 10_000


def _viewer(who: Principal) -> Any:
    return who.user if who.user is not None else crm_queries.SYSTEM


def _segment(segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise ApiError(404, "not_found", f"no segment with id {segment_id}")
    return segment


def _persona(persona_id: int) -> Persona:
    persona = Persona.objects.filter(pk=persona_id).first()
    if persona is None:
        raise ApiError(404, "not_found", f"no persona with id {persona_id}")
    return persona


def _count(segment: Segment, who: Principal) -> int:
    try:
        return queries.segment_count(segment, _viewer(who))
    except ConditionError as error:
        raise ApiError(
            422, "invalid_conditions", f"this segment's conditions no longer hold: {error}"
        ) from None


def _data(payload: Any) -> dict[str, Any]:
    return {k: v for k, v in payload.model_dump(exclude_unset=True).items()}


# -- segments -----------------------------------------------------------------------------------


@router.get("/segments", response={200: SegmentList, **ERRORS}, summary="List segments")
def list_segments(request: HttpRequest) -> dict[str, Any]:
    """Every segment by name, without counts (ask one segment, or its `/count`, for that)."""
    allow(request, Scope.READ, "segments.view_segment")
    return {"items": [segment_data(s) for s in Segment.objects.order_by("name", "id")]}


@router.post("/segments", response={201: SegmentOut, **ERRORS}, summary="Create a segment")
def create_segment(request: HttpRequest, payload: SegmentIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "segments.add_segment")
    segment = actions.create_segment(_data(payload), actor=who.actor)
    return Status(201, segment_data(segment, _count(segment, who)))


@router.post(
    "/segments/preview", response={200: PreviewOut, **ERRORS}, summary="Check and count conditions"
)
def preview(request: HttpRequest, payload: PreviewIn) -> dict[str, Any]:
    """What the editor shows as you type: whether the conditions are valid (and if not, which
    part is wrong), their readable text, and how many contacts match now."""
    who = allow(request, Scope.READ, "segments.view_segment")
    try:
        condition = validate_condition(payload.conditions if payload.conditions is not None else {})
    except ConditionError as error:
        return {"valid": False, "error": str(error)}
    count = queries.condition_count(condition, _viewer(who))
    return {"valid": True, "count": count, "text": describe_condition(condition)}


@router.get("/segments/{segment_id}", response={200: SegmentOut, **ERRORS}, summary="Get a segment")
def get_segment(request: HttpRequest, segment_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "segments.view_segment")
    segment = _segment(segment_id)
    return segment_data(segment, _count(segment, who))


@router.patch(
    "/segments/{segment_id}", response={200: SegmentOut, **ERRORS}, summary="Update a segment"
)
def update_segment(request: HttpRequest, segment_id: int, payload: SegmentIn) -> dict[str, Any]:
    """Send only what changes; a segment's kind cannot change."""
    who = allow(request, Scope.WRITE, "segments.change_segment")
    segment = actions.update_segment(_segment(segment_id), _data(payload), actor=who.actor)
    return segment_data(segment, _count(segment, who))


@router.delete("/segments/{segment_id}", response={204: None, **ERRORS}, summary="Delete a segment")
def delete_segment(request: HttpRequest, segment_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "segments.delete_segment")
    actions.delete_segment(_segment(segment_id), actor=who.actor)
    return Status(204, None)


@router.get(
    "/segments/{segment_id}/count", response={200: Count, **ERRORS}, summary="Count members"
)
def count_members(request: HttpRequest, segment_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "segments.view_segment")
    return {"count": _count(_segment(segment_id), who)}


@router.get(
    "/segments/{segment_id}/members", response={200: MemberPage, **ERRORS}, summary="List members"
)
def list_members(request: HttpRequest, segment_id: int, page: Query[PageQuery]) -> dict[str, Any]:
    """Newest contacts first; follow `next` for the following page."""
    who = allow(request, Scope.READ, "segments.view_segment")
    segment = _segment(segment_id)
    count = _count(segment, who)
    rows = list(
        queries.segment_contacts(segment, _viewer(who)).select_related("company")[
            page.offset : page.offset + page.limit
        ]
    )
    personas = queries.persona_names(c.pk for c in rows)
    end = page.offset + len(rows)
    next_url = None
    if rows and end < count:
        params = request.GET.copy()
        params["offset"] = str(end)
        next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return {
        "items": [
            {
                "id": c.pk,
                "email": c.email,
                "name": c.full_name,
                "lifecycle_stage": c.lifecycle_stage,
                "company": c.company.name if c.company else None,
                "persona": personas.get(c.pk),
            }
            for c in rows
        ],
        "count": count,
        "next": next_url,
    }


@router.get(
    "/segments/{segment_id}/export",
    response={200: None, **ERRORS},
    summary="Export members as CSV",
)
def export_members(request: HttpRequest, segment_id: int) -> HttpResponse:
    """The members with every column of the contact export (scores, persona… included)."""
    who = allow(request, Scope.READ, "segments.view_segment")
    segment = _segment(segment_id)
    _count(segment, who)  # refuses conditions that no longer hold, before any CSV is written
    out = io.StringIO()
    export_csv(
        "contacts",
        out,
        user=who.user,
        actor=who.actor,
        where=queries.segment_q(segment),
    )
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}.csv"'
    return response


def _member_ids(payload: MembersIn) -> list[int]:
    if len(payload.contact_ids) > MAX_MEMBER_IDS:
        raise ApiError(
            422,
            "validation_error",
            f"at most {MAX_MEMBER_IDS} contact ids per call",
            {"contact_ids": [f"at most {MAX_MEMBER_IDS} per call"]},
        )
    return payload.contact_ids


@router.post(
    "/segments/{segment_id}/members",
    response={200: MembersChanged, **ERRORS},
    summary="Add contacts to a static list",
)
def add_members(request: HttpRequest, segment_id: int, payload: MembersIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "segments.add_segmentmember")
    segment = _segment(segment_id)
    visible = None if who.user is None else crm_queries.contact_visibility(who.user)
    added = actions.add_members(segment, _member_ids(payload), actor=who.actor, visible=visible)
    return {"changed": added, "count": _count(segment, who)}


@router.post(
    "/segments/{segment_id}/members/remove",
    response={200: MembersChanged, **ERRORS},
    summary="Remove contacts from a static list",
)
def remove_members(request: HttpRequest, segment_id: int, payload: MembersIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "segments.delete_segmentmember")
    segment = _segment(segment_id)
    removed = actions.remove_members(segment, _member_ids(payload), actor=who.actor)
    return {"changed": removed, "count": _count(segment, who)}


# -- personas -----------------------------------------------------------------------------------


@router.get("/personas", response={200: PersonaList, **ERRORS}, summary="List personas")
def list_personas(request: HttpRequest) -> dict[str, Any]:
    """In priority order (the first matching persona is the contact's), with how many contacts
    have each."""
    allow(request, Scope.READ, "segments.view_persona")
    counts = queries.persona_counts()
    return {"items": [persona_data(p, counts.get(p.pk, 0)) for p in queries.personas()]}


@router.post("/personas", response={201: PersonaOut, **ERRORS}, summary="Create a persona")
def create_persona(request: HttpRequest, payload: PersonaIn) -> Status[dict[str, Any]]:
    """Contacts are (re)assigned before this answers."""
    who = allow(request, Scope.WRITE, "segments.add_persona")
    persona = actions.create_persona(_data(payload), actor=who.actor)
    return Status(201, persona_data(persona, queries.persona_counts().get(persona.pk, 0)))


@router.get("/personas/{persona_id}", response={200: PersonaOut, **ERRORS}, summary="Get a persona")
def get_persona(request: HttpRequest, persona_id: int) -> dict[str, Any]:
    allow(request, Scope.READ, "segments.view_persona")
    persona = _persona(persona_id)
    return persona_data(persona, queries.persona_counts().get(persona.pk, 0))


@router.patch(
    "/personas/{persona_id}", response={200: PersonaOut, **ERRORS}, summary="Update a persona"
)
def update_persona(request: HttpRequest, persona_id: int, payload: PersonaIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "segments.change_persona")
    persona = actions.update_persona(_persona(persona_id), _data(payload), actor=who.actor)
    return persona_data(persona, queries.persona_counts().get(persona.pk, 0))


@router.delete("/personas/{persona_id}", response={204: None, **ERRORS}, summary="Delete a persona")
def delete_persona(request: HttpRequest, persona_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "segments.delete_persona")
    actions.delete_persona(_persona(persona_id), actor=who.actor)
    return Status(204, None)
