"""API of e-mail sends: list them with their progress, create one, see who it would mail, start,
pause, resume and cancel it, and read its status."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, allow
from embudo.automation import send_reports, sending
from embudo.automation.models import Send
from embudo.crm.schemas import Error

router: Router = Router(tags=["E-mail sends"])

ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 409: Error, 422: Error}

#: The state a send must be in for each step; asking otherwise is a conflict (409).
_CONFLICTS = {"not_draft", "cannot_pause", "cannot_resume", "cannot_cancel"}
_NOT_FOUND = {"unknown_template", "unknown_segment"}


class SendIn(Schema):
    template: int | str = Field(description="The template's id or name.")
    segment: int | str = Field(description="The segment's or static list's id or name.")
    name: str = Field("", description="Defaults to the template's and segment's names.")


class ProgressOut(Schema):
    recipients: int
    queued: int
    in_flight: int
    sent: int
    skipped: int
    failed: int
    bounced: int
    opened: int
    clicked: int
    unsubscribed: int
    percent: float


class LinkOut(Schema):
    link: int = Field(description="The link's place in the message, from 0.")
    url: str = Field(description="Where it leads.")
    clicks: int
    contacts: int = Field(description="How many contacts clicked it.")


class SendOut(Schema):
    id: int
    name: str
    state: str
    template: int
    version: int | None
    segment: int | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    progress: ProgressOut
    skipped: dict[str, int] = Field(default_factory=dict, description="Skipped, by reason.")
    links: list[LinkOut] = Field(
        default_factory=list,
        description="Clicks by link, most contacts first (bots' clicks not counted); "
        "in the status of one send, not in the list.",
    )


class SendList(Schema):
    items: list[SendOut]


class AudienceOut(Schema):
    total: int
    mailable: int
    skipped: dict[str, int]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def _data(send: Send, progress: send_reports.Progress, detail: bool = False) -> dict[str, Any]:
    return {
        "id": send.pk,
        "name": send.name,
        "state": send.state,
        "template": send.template_id,
        "version": send.version_id,
        "segment": send.segment_id,
        "created_at": send.created_at.isoformat(),
        "started_at": _iso(send.started_at),
        "finished_at": _iso(send.finished_at),
        "progress": progress.as_dict(),
        "skipped": send_reports.skip_reasons(send) if detail else {},
        "links": [asdict(row) for row in send_reports.clicks_by_link(send)] if detail else [],
    }


def _one(send: Send) -> dict[str, Any]:
    return _data(send, send_reports.progress([send.pk])[send.pk], detail=True)


def _send(send_id: int) -> Send:
    send = Send.objects.filter(pk=send_id).first()
    if send is None:
        raise ApiError(404, "not_found", f"no send with id {send_id}")
    return send


def _refused(error: sending.SendError) -> ApiError:
    status = 409 if error.code in _CONFLICTS else 404 if error.code in _NOT_FOUND else 422
    return ApiError(status, error.code, str(error))


@router.get("/email/sends", response={200: SendList, **ERRORS}, summary="List sends")
def list_sends(request: HttpRequest) -> dict[str, Any]:
    """Newest first (the latest 200), each with its progress."""
    allow(request, Scope.READ, "automation.view_send")
    sends = list(Send.objects.all()[:200])
    shown = send_reports.progress(s.pk for s in sends)
    return {"items": [_data(s, shown[s.pk]) for s in sends]}


@router.post("/email/sends", response={201: SendOut, **ERRORS}, summary="Create a send")
def create_send(request: HttpRequest, payload: SendIn) -> Status[dict[str, Any]]:
    """A draft: nothing is mailed until it is started."""
    who = allow(request, Scope.WRITE, "automation.add_send")
    try:
        send = sending.create_send(
            template=payload.template, segment=payload.segment, name=payload.name, actor=who.actor
        )
    except sending.SendError as error:
        raise _refused(error) from None
    return Status(201, _one(send))


@router.get("/email/sends/{send_id}", response={200: SendOut, **ERRORS}, summary="Send status")
def get_send(request: HttpRequest, send_id: int) -> dict[str, Any]:
    allow(request, Scope.READ, "automation.view_send")
    return _one(_send(send_id))


@router.get(
    "/email/sends/{send_id}/audience",
    response={200: AudienceOut, **ERRORS},
    summary="Who starting it would mail",
)
def audience(request: HttpRequest, send_id: int) -> dict[str, Any]:
    """How many contacts would be mailed now, and how many skipped by reason."""
    allow(request, Scope.READ, "automation.view_send")
    try:
        seen = sending.preview(_send(send_id))
    except sending.SendError as error:
        raise _refused(error) from None
    return {"total": seen.total, "mailable": seen.mailable, "skipped": seen.skipped}


def _step(request: HttpRequest, send_id: int, step: Any) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "automation.change_send")
    try:
        send = step(_send(send_id), actor=who.actor)
    except sending.SendError as error:
        raise _refused(error) from None
    return _one(send)


@router.post(
    "/email/sends/{send_id}/start", response={200: SendOut, **ERRORS}, summary="Start a send"
)
def start_send(request: HttpRequest, send_id: int) -> dict[str, Any]:
    """Freeze the recipients and queue the delivery; refused (422) when nobody would be mailed
    or the brand has no postal address, (409) when the send is not a draft."""
    return _step(request, send_id, sending.start_send)


@router.post(
    "/email/sends/{send_id}/pause", response={200: SendOut, **ERRORS}, summary="Pause a send"
)
def pause_send(request: HttpRequest, send_id: int) -> dict[str, Any]:
    return _step(request, send_id, sending.pause_send)


@router.post(
    "/email/sends/{send_id}/resume", response={200: SendOut, **ERRORS}, summary="Resume a send"
)
def resume_send(request: HttpRequest, send_id: int) -> dict[str, Any]:
    return _step(request, send_id, sending.resume_send)


@router.post(
    "/email/sends/{send_id}/cancel", response={200: SendOut, **ERRORS}, summary="Cancel a send"
)
def cancel_send(request: HttpRequest, send_id: int) -> dict[str, Any]:
    """What is still queued is skipped (reason `cancelled`); what was sent stays sent."""
    return _step(request, send_id, sending.cancel_send)
