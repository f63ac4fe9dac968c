"""API endpoints for contacts, companies, activities, custom properties and the lifecycle history.

Each endpoint checks access (an API key's scope, or a user's role permission and which contacts
that user may see), then calls one query or one action. A contact the caller may not see
answers 404 exactly as a missing one does, so ids reveal nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from django.db.models import QuerySet
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.crm import actions, queries
from embudo.crm.models import Activity, Company, Contact, ObjectType, TransitionCause
from embudo.crm.schemas import (
    ActivityCreate,
    ActivityOut,
    ActivityPage,
    ActivityPatch,
    ActivityQuery,
    CompanyCreate,
    CompanyOut,
    CompanyPage,
    CompanyPatch,
    CompanyQuery,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactQuery,
    Error,
    History,
    MergeIn,
    PageQuery,
    PropertyIn,
    PropertyList,
    PropertyOut,
    PropertyQuery,
    activity_data,
    company_data,
    contact_data,
    property_data,
    transition_data,
)
from embudo.errors import ValidationFailed

router: Router = Router(tags=["crm"])

ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}


# -- access -------------------------------------------------------------------------------------


def viewer(who: Principal) -> Any:
    """Whose row visibility applies: the user's, or every row for an API key."""
    return who.user if who.user is not None else queries.SYSTEM


def _contact(who: Principal, contact_id: int) -> Contact:
    contact = (
        queries.visible_contacts(viewer(who))
        .select_related("company", "owner")
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    return contact


def _company(company_id: int) -> Company:
    company = Company.objects.select_related("owner").filter(pk=company_id).first()
    if company is None:
        raise ApiError(404, "not_found", f"no company with id {company_id}")
    return company


def _activity(who: Principal, activity_id: int) -> Activity:
    activity = (
        queries.visible_activities(viewer(who))
        .select_related("actor", "contact")
        .filter(pk=activity_id)
        .first()
    )
    if activity is None:
        raise ApiError(404, "not_found", f"no activity with id {activity_id}")
    return activity


def _known_params(request: HttpRequest, schema: type[Schema]) -> None:
    """A misspelt filter (``?stgae=mql``) is an error, not a silently unfiltered list."""
    unknown = sorted(set(request.GET) - set(schema.model_fields))
    if unknown:
        raise ValidationFailed(
            {
                name: [f"unknown query parameter; this list takes {', '.join(schema.model_fields)}"]
                for name in unknown
            }
        )


def _reload(contact: Contact) -> Contact:
    return Contact.objects.select_related("company", "owner").get(pk=contact.pk)


def _changes(payload: Any) -> dict[str, Any]:
    """Only the fields the caller sent: PATCH leaves everything else as it is."""
    return payload.model_dump(exclude_unset=True)


# -- paging -------------------------------------------------------------------------------------
# Contacts page by id (keyset): the `next` link carries a cursor, so page 2,000 costs what page 1
# costs. `offset` stays available for jumping. Companies and activities, ordered by name and by
# date, page by offset.


def _encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"before": last_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))["before"]
        if not isinstance(value, int):
            raise TypeError
        return value
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise ValidationFailed.one(
            "cursor", "not a cursor this API gave out (follow the `next` link as it is)"
        ) from None


def _next_url(request: HttpRequest, **position: Any) -> str:
    params = request.GET.copy()
    for name in ("offset", "cursor"):
        params.pop(name, None)
    for name, value in position.items():
        params[name] = str(value)
    return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


def _contact_page(
    request: HttpRequest, who: Principal, filters: queries.ContactFilter, page: ContactQuery
) -> dict[str, Any]:
    """One page of contacts, newest first, with the total and the next link (a cursor)."""
    if page.cursor and page.offset:
        raise ValidationFailed.one("cursor", "give either a cursor or an offset, not both")
    before = _decode_cursor(page.cursor) if page.cursor else None
    rows = queries.contact_rows(
        viewer(who), filters, before=before, offset=page.offset, limit=page.limit + 1
    )
    more, rows = len(rows) > page.limit, rows[: page.limit]
    return {
        "items": [contact_data(c) for c in rows],
        "count": queries.contact_list(viewer(who), filters).count(),
        "next": _next_url(request, cursor=_encode_cursor(rows[-1].pk)) if more else None,
    }


def _offset_page(
    request: HttpRequest, query: QuerySet[Any], page: PageQuery
) -> tuple[list[Any], int, str | None]:
    count = query.count()
    rows = list(query[page.offset : page.offset + page.limit])
    end = page.offset + len(rows)
    next_url = _next_url(request, offset=end) if end < count and rows else None
    return rows, count, next_url


# -- contacts -----------------------------------------------------------------------------------


def _contact_filter(who: Principal, params: ContactQuery) -> queries.ContactFilter:
    owner_id: int | None = None
    unassigned = False
    owner = (params.owner or "").strip().lower()
    if owner == "me":
        if who.user is None:
            raise ValidationFailed.one(
                "owner", "'me' needs a logged-in user; an API key owns no contacts"
            )
        owner_id = who.user.pk
    elif owner == "none":
        unassigned = True
    elif owner:
        if not owner.isdigit():
            raise ValidationFailed.one(
                "owner", f"{params.owner!r} is not a user id, 'me' or 'none'"
            )
        owner_id = int(owner)
    return queries.ContactFilter(
        search=params.search or "",
        stage=params.stage or "",
        owner_id=owner_id,
        unassigned=unassigned,
        company_id=params.company,
        updated_since=params.updated_since,
    )


@router.get("/contacts", response={200: ContactPage, **ERRORS}, summary="List contacts")
def list_contacts(request: HttpRequest, params: Query[ContactQuery]) -> dict[str, Any]:
    """Newest first. Follow `next` for the following page; filters combine with AND."""
    who = allow(request, Scope.READ, "crm.view_contact")
    _known_params(request, ContactQuery)
    return _contact_page(request, who, _contact_filter(who, params), params)


@router.post("/contacts", response={201: ContactOut, **ERRORS}, summary="Create a contact")
def create_contact(request: HttpRequest, payload: ContactIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "crm.add_contact")
    contact = actions.create_contact(_changes(payload), actor=who.actor, cause=TransitionCause.API)
    return Status(201, contact_data(_reload(contact)))


@router.get("/contacts/{contact_id}", response={200: ContactOut, **ERRORS}, summary="Get a contact")
def get_contact(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "crm.view_contact")
    return contact_data(_contact(who, contact_id))


@router.patch(
    "/contacts/{contact_id}", response={200: ContactOut, **ERRORS}, summary="Update a contact"
)
def update_contact(request: HttpRequest, contact_id: int, payload: ContactIn) -> dict[str, Any]:
    """Send only the fields to change. A new `lifecycle_stage` is recorded in the history."""
    who = allow(request, Scope.WRITE, "crm.change_contact")
    contact = _contact(who, contact_id)
    actions.update_contact(contact, _changes(payload), actor=who.actor, cause=TransitionCause.API)
    return contact_data(_reload(contact))


@router.delete("/contacts/{contact_id}", response={204: None, **ERRORS}, summary="Delete a contact")
def delete_contact(request: HttpRequest, contact_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "crm.delete_contact")
    actions.delete_contact(_contact(who, contact_id), actor=who.actor)
    return Status(204, None)


@router.get(
    "/contacts/{contact_id}/history",
    response={200: History, **ERRORS},
    summary="A contact's lifecycle history",
)
def contact_history(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    """Every stage move, oldest first, with its time, cause and actor."""
    who = allow(request, Scope.READ, "crm.view_contact")
    contact = _contact(who, contact_id)
    return {"items": [transition_data(t) for t in queries.lifecycle_history(contact)]}


@router.get(
    "/contacts/{contact_id}/activities",
    response={200: ActivityPage, **ERRORS},
    summary="A contact's activities",
)
def contact_activities(
    request: HttpRequest, contact_id: int, params: Query[PageQuery]
) -> dict[str, Any]:
    who = allow(request, Scope.READ, "crm.view_activity")
    _known_params(request, PageQuery)
    contact = _contact(who, contact_id)
    query = queries.activity_list(viewer(who), queries.ActivityFilter(contact_id=contact.pk))
    rows, count, next_url = _offset_page(request, query, params)
    return {"items": [activity_data(a) for a in rows], "count": count, "next": next_url}


@router.post(
    "/contacts/{contact_id}/merge",
    response={200: ContactOut, **ERRORS},
    summary="Merge a duplicate into a contact",
)
def merge_contact(request: HttpRequest, contact_id: int, payload: MergeIn) -> dict[str, Any]:
    """The duplicate's activities and history move to this contact, its blank fields are
    filled from the duplicate, and the duplicate is deleted."""
    who = allow(request, Scope.WRITE, "crm.change_contact")
    # The duplicate disappears, so merging takes the right to delete contacts too.
    who.require_perm("crm.delete_contact")
    primary = _contact(who, contact_id)
    duplicate = queries.visible_contacts(viewer(who)).filter(pk=payload.duplicate_id).first()
    if duplicate is None:
        raise ValidationFailed.one("duplicate_id", f"no contact with id {payload.duplicate_id}")
    merged = actions.merge_contacts(primary, duplicate, actor=who.actor)
    return contact_data(_reload(merged))


# -- companies ----------------------------------------------------------------------------------


@router.get("/companies", response={200: CompanyPage, **ERRORS}, summary="List companies")
def list_companies(request: HttpRequest, params: Query[CompanyQuery]) -> dict[str, Any]:
    """In name order."""
    allow(request, Scope.READ, "crm.view_company")
    _known_params(request, CompanyQuery)
    query = queries.company_list(params.search or "").select_related("owner")
    rows, count, next_url = _offset_page(request, query, params)
    return {"items": [company_data(c) for c in rows], "count": count, "next": next_url}


@router.post("/companies", response={201: CompanyOut, **ERRORS}, summary="Create a company")
def create_company(request: HttpRequest, payload: CompanyCreate) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "crm.add_company")
    company = actions.create_company(_changes(payload), actor=who.actor)
    return Status(201, company_data(_company(company.pk)))


@router.get(
    "/companies/{company_id}", response={200: CompanyOut, **ERRORS}, summary="Get a company"
)
def get_company(request: HttpRequest, company_id: int) -> dict[str, Any]:
    allow(request, Scope.READ, "crm.view_company")
    return company_data(_company(company_id))


@router.patch(
    "/companies/{company_id}", response={200: CompanyOut, **ERRORS}, summary="Update a company"
)
def update_company(request: HttpRequest, company_id: int, payload: CompanyPatch) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "crm.change_company")
    company = actions.update_company(_company(company_id), _changes(payload), actor=who.actor)
    return company_data(_company(company.pk))


@router.delete(
    "/companies/{company_id}", response={204: None, **ERRORS}, summary="Delete a company"
)
def delete_company(request: HttpRequest, company_id: int) -> Status[None]:
    """Its contacts stay, without a company."""
    who = allow(request, Scope.WRITE, "crm.delete_company")
    actions.delete_company(_company(company_id), actor=who.actor)
    return Status(204, None)


@router.get(
    "/companies/{company_id}/contacts",
    response={200: ContactPage, **ERRORS},
    summary="A company's contacts",
)
def company_contacts(
    request: HttpRequest, company_id: int, params: Query[ContactQuery]
) -> dict[str, Any]:
    """The company's contacts the caller may see; takes the same filters as /contacts."""
    who = allow(request, Scope.READ, "crm.view_contact")
    _known_params(request, ContactQuery)
    company = _company(company_id)
    filters = _contact_filter(who, params.model_copy(update={"company": company.pk}))
    return _contact_page(request, who, filters, params)


# -- activities ---------------------------------------------------------------------------------


@router.get("/activities", response={200: ActivityPage, **ERRORS}, summary="List activities")
def list_activities(request: HttpRequest, params: Query[ActivityQuery]) -> dict[str, Any]:
    """Most recent first; only activities on contacts the caller may see."""
    who = allow(request, Scope.READ, "crm.view_activity")
    _known_params(request, ActivityQuery)
    filters = queries.ActivityFilter(
        contact_id=params.contact,
        kind=params.kind or "",
        done=params.done,
        due_before=params.due_before,
    )
    query = queries.activity_list(viewer(who), filters)
    rows, count, next_url = _offset_page(request, query, params)
    return {"items": [activity_data(a) for a in rows], "count": count, "next": next_url}


@router.post("/activities", response={201: ActivityOut, **ERRORS}, summary="Log an activity")
def create_activity(request: HttpRequest, payload: ActivityCreate) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "crm.add_activity")
    data = _changes(payload)
    contact_id = data.pop("contact_id")
    contact = queries.visible_contacts(viewer(who)).filter(pk=contact_id).first()
    if contact is None:
        raise ValidationFailed.one("contact_id", f"no contact with id {contact_id}")
    activity = actions.log_activity(contact, data, actor=who.actor)
    return Status(201, activity_data(_activity(who, activity.pk)))


@router.get(
    "/activities/{activity_id}", response={200: ActivityOut, **ERRORS}, summary="Get an activity"
)
def get_activity(request: HttpRequest, activity_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "crm.view_activity")
    return activity_data(_activity(who, activity_id))


@router.patch(
    "/activities/{activity_id}",
    response={200: ActivityOut, **ERRORS},
    summary="Update an activity",
)
def update_activity(
    request: HttpRequest, activity_id: int, payload: ActivityPatch
) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "crm.change_activity")
    activity = actions.update_activity(
        _activity(who, activity_id), _changes(payload), actor=who.actor
    )
    return activity_data(activity)


@router.delete(
    "/activities/{activity_id}", response={204: None, **ERRORS}, summary="Delete an activity"
)
def delete_activity(request: HttpRequest, activity_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "crm.delete_activity")
    actions.delete_activity(_activity(who, activity_id), actor=who.actor)
    return Status(204, None)


# -- custom property definitions ----------------------------------------------------------------


@router.get("/properties", response={200: PropertyList, **ERRORS}, summary="List custom properties")
def list_properties(request: HttpRequest, params: Query[PropertyQuery]) -> dict[str, Any]:
    allow(request, Scope.READ, "crm.view_propertydefinition")
    _known_params(request, PropertyQuery)
    types = [params.object_type] if params.object_type else list(ObjectType.values)
    items = [property_data(d) for kind in types for d in queries.property_definitions(kind)]
    return {"items": items}


@router.post(
    "/properties", response={201: PropertyOut, **ERRORS}, summary="Define a custom property"
)
def create_property(request: HttpRequest, payload: PropertyIn) -> Status[dict[str, Any]]:
    """Admins and marketing (API keys: the `admin` scope). The name is slugged: `Lead Score`
    becomes `lead_score`; values of the property are then checked against its type."""
    who = allow(request, Scope.ADMIN, "crm.add_propertydefinition")
    definition = actions.define_property(
        payload.object_type,
        payload.name,
        payload.type,
        label=payload.label,
        choices=payload.choices,
        actor=who.actor,
    )
    return Status(201, property_data(definition))
