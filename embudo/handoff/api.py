"""API endpoints of the handoff app: feedback on a contact, the lead inbox, reassignment,
rep availability, notifications, the settings (rules, policies, hours, reasons, commitments),
commitment tracking and the loop back of rejection reasons."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from ninja import Body, Router, Schema, Status

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.crm import queries as crm_queries
from embudo.errors import ValidationFailed
from embudo.handoff import actions, queries, reports
from embudo.handoff.models import Feedback, Handoff, Notification
from embudo.handoff.setup import KINDS, SettingKind
from embudo.reports import parse_date

router: Router = Router(tags=["Handoff"])


class FeedbackIn(Schema):
    verdict: str  # accepted, rejected or recycled (accept, reject, recycle also understood)
    reason: str | int | None = None  # a reason's id or name (needed to reject or recycle)
    note: str = ""


class ReassignIn(Schema):
    owner_id: int


VERDICT_WORDS = {"accept": "accepted", "reject": "rejected", "recycle": "recycled"}


def _viewer(who: Principal) -> Any:
    return who.user


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date | dt.datetime | dt.time) else value


def handoff_data(h: Handoff) -> dict[str, Any]:
    return {
        "id": h.pk,
        "contact_id": h.contact_id,
        "handed_off_at": _iso(h.handed_off_at),
        "owner_id": h.owner_id,
        "team_id": h.team_id,
        "queued": h.owner_id is None and h.open,
        "rule_id": h.rule_id,
        "policy_id": h.policy_id,
        "routing_note": h.routing_note,
        "open": h.open,
        "source": h.source,
        "campaign": h.campaign,
        "score_band": h.score_band,
        "state": h.state,
        "first_touch": {
            "due": _iso(h.first_touch_due),
            "at": _iso(h.first_touch_at),
            "state": h.first_touch_state,
        },
        "decision": {
            "due": _iso(h.decision_due),
            "at": _iso(h.decided_at),
            "state": h.decision_state,
        },
        "breached_at": _iso(h.breached_at),
        "escalated_to": h.escalated_to_id,
        "verdict": h.verdict or None,
        "reason": h.reason.name if h.reason_id and h.reason else None,
    }


def feedback_data(f: Feedback) -> dict[str, Any]:
    return {
        "id": f.pk,
        "contact_id": f.contact_id,
        "handoff_id": f.handoff_id,
        "verdict": f.verdict,
        "reason": f.reason.name if f.reason else None,
        "note": f.note,
        "from_stage": f.from_stage,
        "to_stage": f.to_stage,
        "actor_id": f.actor_id,
        "created_at": _iso(f.created_at),
    }


@router.post(
    "/contacts/{contact_id}/feedback",
    response={201: dict[str, Any]},
    summary="Accept, reject or recycle an MQL",
)
def give_feedback(
    request: HttpRequest, contact_id: int, payload: FeedbackIn
) -> Status[dict[str, Any]]:
    """`accepted` moves the contact to SQL; `rejected` (with a reason) to disqualified or back to
    nurture as a lead, as the reason says; `recycled` (with a reason) to lead, free to become an
    MQL again. 422 for a contact that is not an MQL or SQL, a missing or unknown reason."""
    who = allow(request, Scope.WRITE, "handoff.add_feedback")
    contact = (
        crm_queries.visible_contacts(who.user if who.user is not None else crm_queries.SYSTEM)
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    verdict = VERDICT_WORDS.get(payload.verdict, payload.verdict)
    feedback = actions.record_feedback(
        contact, verdict, reason=payload.reason, note=payload.note, actor=who.actor
    )
    return Status(201, feedback_data(feedback))


@router.get("/contacts/{contact_id}/feedback", summary="A contact's feedback history")
def list_feedback(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "handoff.view_feedback")
    viewer = who.user if who.user is not None else crm_queries.SYSTEM
    if not crm_queries.visible_contacts(viewer).filter(pk=contact_id).exists():
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    return {
        "items": [feedback_data(f) for f in queries.feedback_of(contact_id)],
        "handoffs": [handoff_data(h) for h in queries.handoffs_of(contact_id)],
    }


@router.get("/handoffs", summary="Open handoffs: the lead inbox, by SLA due time")
def list_handoffs(
    request: HttpRequest,
    owner: str = "",
    team: int | None = None,
    state: str = "",
    limit: int = 100,
) -> dict[str, Any]:
    """`owner`: `me`, `queue` (the fallback queue) or a user id; a rep sees their own and the
    queue; managers and admins everyone's."""
    who = allow(request, Scope.READ, "handoff.view_handoff")
    if not 1 <= limit <= 1000:
        raise ValidationFailed.one("limit", "between 1 and 1000")
    filters = queries.InboxFilter(team_id=team, state=state)
    if owner == "queue":
        filters = queries.InboxFilter(queue=True, team_id=team, state=state)
    elif owner == "me":
        if who.user is None:
            raise ValidationFailed.one("owner", "an API key has no leads of its own")
        filters = queries.InboxFilter(owner_id=who.user.pk, team_id=team, state=state)
    elif owner:
        if not owner.isdigit():
            raise ValidationFailed.one("owner", "me, queue or a user id")
        filters = queries.InboxFilter(owner_id=int(owner), team_id=team, state=state)
    if who.user is None:
        query = queries.Handoff.objects.filter(open=True)
        if filters.queue:
            query = query.filter(owner__isnull=True)
        elif filters.owner_id:
            query = query.filter(owner_id=filters.owner_id)
        query = query.order_by("first_touch_due", "id")
    else:
        query = queries.inbox(who.user, filters)
    total = query.count()
    return {"count": total, "items": [handoff_data(h) for h in query[:limit]]}


def _handoff(who: Principal, handoff_id: int) -> Handoff:
    handoff = queries.handoff_detail(_viewer(who), handoff_id)
    if handoff is None:
        raise ApiError(404, "not_found", f"no handoff with id {handoff_id}")
    return handoff


@router.get("/handoffs/{handoff_id}", summary="One handoff with its SLA clocks")
def get_handoff(request: HttpRequest, handoff_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "handoff.view_handoff")
    return handoff_data(_handoff(who, handoff_id))


@router.post("/handoffs/{handoff_id}/reassign", summary="Give a lead to another rep")
def reassign(request: HttpRequest, handoff_id: int, payload: ReassignIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "handoff.delete_handoff")
    handoff = _handoff(who, handoff_id)
    return handoff_data(actions.reassign(handoff, payload.owner_id, actor=who.actor))


@router.put("/reps/{user_id}/availability", summary="A rep's hours, absence and capacity")
def set_availability(
    request: HttpRequest, user_id: int, payload: Body[dict[str, Any]]
) -> dict[str, Any]:
    """A rep may set their own; managers and admins anyone's. Fields: `takes_leads`,
    `time_zone`, `weekdays` (0=Monday), `works_from`, `works_until`, `away_from`,
    `away_until`, `capacity` (open MQLs at most)."""
    who = allow(request, Scope.WRITE, "handoff.view_repavailability")
    own = who.user is not None and who.user.pk == user_id
    if not own:
        who = allow(request, Scope.ADMIN, "handoff.change_repavailability")
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
    record = actions.set_availability(user, payload, actor=who.actor)
    return _record_data(record)


@router.post("/reps/{user_id}/release", summary="Route a departing rep's open leads again")
def release(request: HttpRequest, user_id: int) -> dict[str, Any]:
    who = allow(request, Scope.ADMIN, "handoff.delete_handoff")
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise ApiError(404, "not_found", f"no user with id {user_id}")
    return {"rerouted": actions.release_leads(user, actor=who.actor)}


@router.get("/notifications", summary="My notifications (new leads, breaches, the queue)")
def list_notifications(request: HttpRequest, unread: bool = False) -> dict[str, Any]:
    who = allow(request, Scope.READ, "handoff.view_notification")
    if who.user is None:
        raise ApiError(403, "forbidden", "notifications belong to users, not API keys")
    items = queries.notifications(who.user, unread_only=unread)[:200]
    return {
        "items": [
            {
                "id": n.pk,
                "kind": n.kind,
                "message": n.message,
                "contact_id": n.contact_id,
                "handoff_id": n.handoff_id,
                "created_at": _iso(n.created_at),
                "read": n.read_at is not None,
            }
            for n in items
        ]
    }


@router.post("/notifications/{notification_id}/read", summary="Mark a notification read")
def read_notification(request: HttpRequest, notification_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "handoff.view_notification")
    if who.user is None:
        raise ApiError(403, "forbidden", "notifications belong to users, not API keys")
    done = Notification.objects.filter(
        pk=notification_id, user=who.user, read_at__isnull=True
    ).update(read_at=timezone.now())
    if not done and not Notification.objects.filter(pk=notification_id, user=who.user).exists():
        raise ApiError(404, "not_found", f"no notification with id {notification_id}")
    return {"id": notification_id, "read": True}


# -- commitments and the loop back ---------------------------------------------------------------


@router.get("/handoff/commitments/status", summary="Marketing's commitments, tracked live")
def commitments_status(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "handoff.view_marketingcommitment")
    return {"items": [s.to_dict() for s in reports.current_commitments()]}


@router.get("/handoff/rejections", summary="Verdicts and reasons by source, campaign, band…")
def rejections(
    request: HttpRequest, by: str = "source", date_from: str = "", date_to: str = ""
) -> dict[str, Any]:
    allow(request, Scope.READ, "handoff.view_feedback")
    if by not in reports.FEEDBACK_BREAKDOWNS:
        raise ValidationFailed.one("by", f"one of {', '.join(reports.FEEDBACK_BREAKDOWNS)}")
    start, end = _dates(date_from, date_to)
    return {"by": by, "rows": reports.rejections_by(by, start, end)}


@router.get("/handoff/fit-suggestions", summary="Values mostly rejected as a bad fit")
def fit_suggestions(request: HttpRequest, date_from: str = "", date_to: str = "") -> dict[str, Any]:
    allow(request, Scope.READ, "handoff.view_feedback")
    start, end = _dates(date_from, date_to)
    return {"items": reports.fit_suggestions(start, end)}


def _dates(date_from: str, date_to: str) -> tuple[dt.date | None, dt.date | None]:
    from embudo.reports import ReportError

    try:
        return parse_date(date_from, "date_from"), parse_date(date_to, "date_to")
    except ReportError as error:
        raise ValidationFailed.one("date", str(error)) from None


# -- settings: one set of endpoints per kind ----------------------------------------------------


def _record_data(record: models.Model) -> dict[str, Any]:
    data: dict[str, Any] = {"id": record.pk}
    for f in record._meta.concrete_fields:
        if f.primary_key:
            continue
        value = getattr(record, f.attname)
        if isinstance(value, models.Model):
            value = value.pk
        data[f.attname] = float(value) if type(value).__name__ == "Decimal" else _iso(value)
    return data


def _apply(kind: SettingKind, record: models.Model, payload: dict[str, Any]) -> None:
    allowed = {name: name for name in kind.fields}
    for name in kind.fields:
        field = kind.model._meta.get_field(name)
        if field.is_relation:
            allowed[f"{name}_id"] = allowed[name] = f"{name}_id"
    unknown = sorted(set(payload) - set(allowed))
    if unknown:
        raise ValidationFailed(
            {
                name: [f"unknown field; {kind.slug} take {', '.join(kind.fields)}"]
                for name in unknown
            }
        )
    for name, value in payload.items():
        setattr(record, allowed[name], value)


def _kind_routes(kind: SettingKind) -> None:
    path = f"/handoff/{kind.slug}"

    def listing(request: HttpRequest) -> dict[str, Any]:
        allow(request, Scope.READ, kind.perm("view"))
        return {"items": [_record_data(r) for r in kind.model._default_manager.all()]}

    def create(request: HttpRequest, payload: Body[dict[str, Any]]) -> Status[dict[str, Any]]:
        who = allow(request, Scope.ADMIN, kind.perm("add"))
        record = kind.model()
        _apply(kind, record, payload)
        return Status(201, _record_data(actions.save_setting(record, actor=who.actor)))

    def update(request: HttpRequest, pk: int, payload: Body[dict[str, Any]]) -> dict[str, Any]:
        who = allow(request, Scope.ADMIN, kind.perm("change"))
        record = _get(kind, pk)
        _apply(kind, record, payload)
        return _record_data(actions.save_setting(record, actor=who.actor))

    def delete(request: HttpRequest, pk: int) -> Status[None]:
        who = allow(request, Scope.ADMIN, kind.perm("delete"))
        actions.delete_setting(_get(kind, pk), actor=who.actor)
        return Status(204, None)

    name = str(kind.model._meta.verbose_name)
    router.get(
        path,
        summary=f"List {kind.model._meta.verbose_name_plural}",
        operation_id=f"list_{kind.slug}",
    )(listing)
    router.post(
        path,
        response={201: dict[str, Any]},
        summary=f"Create a {name}",
        operation_id=f"create_{kind.slug}",
    )(create)
    router.patch(f"{path}/{{pk}}", summary=f"Change a {name}", operation_id=f"update_{kind.slug}")(
        update
    )
    router.delete(
        f"{path}/{{pk}}",
        response={204: None},
        summary=f"Delete a {name}",
        operation_id=f"delete_{kind.slug}",
    )(delete)


def _get(kind: SettingKind, pk: int) -> models.Model:
    record = kind.model._default_manager.filter(pk=pk).first()
    if record is None:
        raise ApiError(404, "not_found", f"no {kind.model._meta.verbose_name} with id {pk}")
    return record


for _kind in KINDS.values():
    _kind_routes(_kind)
