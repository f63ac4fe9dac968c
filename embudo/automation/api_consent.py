"""API endpoints of e-mail consent: subscription types, a contact's subscriptions and consent
ledger, and the suppression list. Each checks access, then calls one action or query."""

from __future__ import annotations

from typing import Any

from django.db.models import Q
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.automation import consent
from embudo.automation.models import (
    ConsentRecord,
    ConsentSource,
    Subscription,
    SubscriptionType,
    Suppression,
    SuppressionReason,
)
from embudo.crm import queries as crm_queries
from embudo.crm.models import Contact
from embudo.crm.schemas import Error

router: Router = Router(tags=["E-mail consent"])

ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}


class SubscriptionTypeIn(Schema):
    key: str | None = Field(None, description="A slug; made from the name when left out.")
    name: str | None = None
    name_es: str | None = None
    description: str | None = None
    description_es: str | None = None
    opt_in_required: bool | None = None
    double_opt_in: bool | None = None
    active: bool | None = Field(None, description="false archives the type.")


class SubscriptionsIn(Schema):
    subscriptions: dict[str, bool] = Field(
        default_factory=dict,
        description="Subscription type key → subscribed. A double opt-in type stays pending "
        "until the contact follows the link mailed to them.",
    )
    unsubscribe_all: bool = Field(False, description="Unsubscribe from every e-mail.")
    text: str = Field("", description="The consent text the contact saw or agreed to.")
    ip_address: str | None = Field(None, description="The contact's IP address, if known.")


class SuppressionIn(Schema):
    email: str
    detail: str = ""


class SuppressionQuery(Schema):
    q: str = Field("", description="Part of the address or detail.")
    reason: SuppressionReason | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


def _type_data(t: SubscriptionType) -> dict[str, Any]:
    return {
        "id": t.pk,
        "key": t.key,
        "name": t.name,
        "name_es": t.name_es,
        "description": t.description,
        "description_es": t.description_es,
        "opt_in_required": t.opt_in_required,
        "double_opt_in": t.double_opt_in,
        "active": t.active,
    }


def _suppression_data(s: Suppression) -> dict[str, Any]:
    return {
        "email": s.email,
        "reason": s.reason,
        "detail": s.detail,
        "created_at": s.created_at.isoformat(),
    }


def _consent_error(error: consent.ConsentError) -> ApiError:
    return ApiError(422, "validation_error", str(error))


# -- subscription types ------------------------------------------------------------------------


@router.get("/email/subscription-types", summary="Subscription types")
def list_types(request: HttpRequest) -> list[dict[str, Any]]:
    allow(request, Scope.READ, "automation.view_subscriptiontype")
    return [_type_data(t) for t in SubscriptionType.objects.all()]


@router.post(
    "/email/subscription-types",
    response={201: dict[str, Any], **ERRORS},
    summary="Create a subscription type",
)
def create_type(request: HttpRequest, payload: SubscriptionTypeIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.ADMIN, "automation.add_subscriptiontype")
    data = payload.dict(exclude_none=True, exclude={"active"})
    return Status(201, _type_data(consent.create_subscription_type(data, actor=who.actor)))


def _type(type_id: int) -> SubscriptionType:
    found = SubscriptionType.objects.filter(pk=type_id).first()
    if found is None:
        raise ApiError(404, "not_found", f"no subscription type with id {type_id}")
    return found


@router.patch(
    "/email/subscription-types/{type_id}",
    response={200: dict[str, Any], **ERRORS},
    summary="Change or archive a subscription type",
)
def update_type(request: HttpRequest, type_id: int, payload: SubscriptionTypeIn) -> dict[str, Any]:
    who = allow(request, Scope.ADMIN, "automation.change_subscriptiontype")
    found = _type(type_id)
    data = payload.dict(exclude_none=True, exclude={"active", "key"})
    if data:
        found = consent.update_subscription_type(found, data, actor=who.actor)
    if payload.active is not None and payload.active != found.active:
        found = consent.archive_subscription_type(
            found, archived=not payload.active, actor=who.actor
        )
    return _type_data(found)


# -- a contact's subscriptions -------------------------------------------------------------------


def _contact(who: Principal, contact_id: int) -> Contact:
    viewer = who.user if who.user is not None else crm_queries.SYSTEM
    found = crm_queries.visible_contacts(viewer).filter(pk=contact_id).first()
    if found is None:
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    return found


def _subscriptions(contact: Contact) -> dict[str, Any]:
    states = dict(
        Subscription.objects.filter(contact=contact).values_list("subscription_type_id", "status")
    )
    suppression = (
        Suppression.objects.filter(email=contact.email.lower()).first() if contact.email else None
    )
    ledger = ConsentRecord.objects.filter(contact=contact).select_related("subscription_type")
    return {
        "contact_id": contact.pk,
        "email": contact.email,
        "suppressed": suppression.reason if suppression else None,
        "subscriptions": [
            {
                "key": t.key,
                "name": t.name,
                "status": states.get(t.pk)
                or (
                    "not_subscribed"
                    if t.opt_in_required
                    else "subscribed_unless_opted_out"  # an opt-out type
                ),
            }
            for t in SubscriptionType.objects.filter(active=True)
        ],
        "consents": [
            {
                "at": r.at.isoformat(),
                "subscription_type": r.subscription_type.key if r.subscription_type else None,
                "action": r.action,
                "source": r.source,
                "text": r.text,
                "email": r.email,
                "ip_address": r.ip_address,
                "actor_id": r.actor_id,
            }
            for r in ledger.order_by("-at", "-id")[:200]
        ],
    }


@router.get(
    "/contacts/{contact_id}/subscriptions",
    response={200: dict[str, Any], **ERRORS},
    summary="A contact's subscriptions and consent ledger",
)
def get_subscriptions(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "automation.view_subscription")
    return _subscriptions(_contact(who, contact_id))


@router.patch(
    "/contacts/{contact_id}/subscriptions",
    response={200: dict[str, Any], **ERRORS},
    summary="Subscribe or unsubscribe a contact",
)
def change_subscriptions(
    request: HttpRequest, contact_id: int, payload: SubscriptionsIn
) -> dict[str, Any]:
    """Each change is written to the consent ledger with source `api`, the text and the IP
    address given. An unknown type key changes nothing and answers 422."""
    who = allow(request, Scope.WRITE, "automation.change_subscription")
    contact = _contact(who, contact_id)
    keys = [k for k in payload.subscriptions if "\x00" not in k]  # no key holds a NUL byte
    types = {t.key: t for t in SubscriptionType.objects.filter(key__in=keys)}
    unknown = sorted(set(payload.subscriptions) - set(types))
    if unknown:
        raise ApiError(
            422,
            "validation_error",
            "unknown subscription type",
            {"subscriptions": [f"no subscription type with key {k!r}" for k in unknown]},
        )
    text, ip = consent.clean_evidence(payload.text, payload.ip_address)
    try:
        if payload.unsubscribe_all:
            consent.unsubscribe(
                contact, None, source=ConsentSource.API, actor=who.actor, text=text, ip=ip
            )
        wanted = {types[key].pk: on for key, on in payload.subscriptions.items()}
        consent.set_subscriptions(
            contact, wanted, source=ConsentSource.API, actor=who.actor, text=text, ip=ip
        )
    except consent.ConsentError as error:
        raise _consent_error(error) from None
    return _subscriptions(contact)


# -- the suppression list -----------------------------------------------------------------------


@router.get("/email/suppressions", summary="The suppression list")
def list_suppressions(request: HttpRequest, filters: Query[SuppressionQuery]) -> dict[str, Any]:
    allow(request, Scope.READ, "automation.view_suppression")
    rows = Suppression.objects.order_by("-created_at", "-id")
    if "\x00" in filters.q:  # no stored address or detail holds a NUL byte
        rows = rows.none()
    elif filters.q:
        rows = rows.filter(Q(email__icontains=filters.q) | Q(detail__icontains=filters.q))
    if filters.reason:
        rows = rows.filter(reason=filters.reason)
    page = rows[filters.offset : filters.offset + filters.limit]
    return {"items": [_suppression_data(s) for s in page], "count": rows.count()}


@router.post(
    "/email/suppressions",
    response={201: dict[str, Any], 200: dict[str, Any], **ERRORS},
    summary="Never mail an address again",
)
def add_suppression(request: HttpRequest, payload: SuppressionIn) -> Status[dict[str, Any]]:
    """201 when added, 200 when the address was already suppressed (its first reason stays)."""
    who = allow(request, Scope.WRITE, "automation.add_suppression")
    row, created = consent.suppress(
        payload.email, SuppressionReason.MANUAL, detail=payload.detail, actor=who.actor
    )
    return Status(201 if created else 200, _suppression_data(row))


@router.delete(
    "/email/suppressions/{email}",
    response={204: None, **ERRORS},
    summary="Take an address off the suppression list",
)
def remove_suppression(request: HttpRequest, email: str) -> Status[None]:
    """An unsubscribe from all is the contact's own: only the contact takes it back (422)."""
    who = allow(request, Scope.WRITE, "automation.delete_suppression")
    try:
        removed = consent.unsuppress(email, actor=who.actor)
    except consent.ConsentError as error:
        raise _consent_error(error) from None
    if not removed:
        raise ApiError(404, "not_found", f"{email} is not on the suppression list")
    return Status(204, None)
