"""The shapes the CRM API reads and writes, and the functions that turn records into them.

Input schemas forbid unknown fields, so a typo (``"emial"``) is a 422 naming the field instead of
a silent no-op. Values are checked for type here; business rules (valid email, unique email,
known owner, defined custom property) are checked by ``crm.actions``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from django.contrib.auth.models import User
from django.utils import timezone
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict

from embudo.crm.models import (
    Activity,
    ActivityKind,
    Company,
    Contact,
    LeadStatus,
    LifecycleStage,
    LifecycleTransition,
    ObjectType,
    PropertyDefinition,
    PropertyType,
)


def _aware(value: dt.datetime) -> dt.datetime:
    # A date-time without an offset is read as UTC, as everywhere else in Embudo.
    if timezone.is_naive(value):
        return value.replace(tzinfo=dt.UTC)
    return value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]


class Input(Schema):
    model_config = ConfigDict(extra="forbid")


# A few fields may be left out but not sent as null (a contact always has a stage, a company a
# name): typed without None, defaulted to None to tell "left out" apart. mypy sees the mismatch
# between the type and the default, hence the ignores below.


# -- inputs -------------------------------------------------------------------------------------


class ContactIn(Input):
    """A contact to create, or the fields to change (PATCH sends only what changes)."""

    email: str | None = Field(None, description="Stored lower-cased; unique when present.")
    external_id: str | None = Field(None, description="Your system's id; unique when present.")
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    job_title: str | None = None
    company_id: int | None = None
    owner_id: int | None = Field(None, description="A user id; null leaves it unassigned.")
    lifecycle_stage: LifecycleStage = Field(  # type: ignore[assignment]
        None, description="Changing it records a lifecycle transition with cause `api`."
    )
    lead_status: LeadStatus | Literal[""] | None = None
    original_source: str | None = None
    original_medium: str | None = None
    original_campaign: str | None = None
    properties: dict[str, Any] | None = Field(
        None,
        description="Custom properties by name (defined under /properties); merged on PATCH, "
        "a null value removes one.",
    )


class CompanyCreate(Input):
    name: str
    domain: str | None = None
    external_id: str | None = None
    industry: str | None = None
    employees: int | None = Field(None, ge=0)
    country: str | None = None
    city: str | None = None
    owner_id: int | None = None
    properties: dict[str, Any] | None = None


class CompanyPatch(CompanyCreate):
    name: str = Field(None)  # type: ignore[assignment]


class ActivityCreate(Input):
    contact_id: int
    kind: ActivityKind
    subject: str | None = None
    body: str | None = None
    occurred_at: AwareDatetime | None = Field(None, description="Defaults to now.")
    due_at: AwareDatetime | None = Field(None, description="Tasks only.")
    done: bool = False


class ActivityPatch(Input):
    kind: ActivityKind = Field(None)  # type: ignore[assignment]
    subject: str | None = None
    body: str | None = None
    occurred_at: AwareDatetime | None = None
    due_at: AwareDatetime | None = None
    done: bool = Field(None)  # type: ignore[assignment]


class MergeIn(Input):
    duplicate_id: int = Field(
        description="The contact folded into this one; it is deleted after the merge."
    )


class PropertyIn(Input):
    object_type: ObjectType
    name: str
    type: PropertyType
    label: str = ""
    choices: list[str] | None = None


# -- query strings ------------------------------------------------------------------------------


class PageQuery(Schema):
    limit: int = Field(50, ge=1, le=500, description="Items per page (at most 500).")
    offset: int = Field(0, ge=0, description="Items to skip; for jumping, `next` is faster.")


class ContactQuery(PageQuery):
    cursor: str | None = Field(None, description="Opaque; taken from a previous `next` link.")
    stage: LifecycleStage | None = None
    owner: str | None = Field(None, description="A user id, `me` or `none` (unassigned).")
    company: int | None = None
    updated_since: AwareDatetime | None = Field(
        None, description="ISO 8601 date-time; contacts changed at or after it."
    )
    search: str | None = Field(None, description="Prefix of the name or the email.")


class CompanyQuery(PageQuery):
    search: str | None = Field(None, description="Prefix of the name or the domain.")


class ActivityQuery(PageQuery):
    contact: int | None = None
    kind: ActivityKind | None = None
    done: bool | None = None
    due_before: AwareDatetime | None = Field(None, description="Tasks due before this moment.")


class PropertyQuery(Schema):
    object_type: ObjectType | None = None


# -- outputs ------------------------------------------------------------------------------------


class UserRef(Schema):
    id: int
    username: str
    name: str


class CompanyRef(Schema):
    id: int
    name: str


class ContactOut(Schema):
    id: int
    email: str | None
    external_id: str | None
    first_name: str
    last_name: str
    full_name: str
    phone: str
    job_title: str
    company: CompanyRef | None
    owner: UserRef | None
    lifecycle_stage: str
    lifecycle_stage_changed_at: dt.datetime
    lead_status: str
    original_source: str
    original_medium: str
    original_campaign: str
    properties: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class CompanyOut(Schema):
    id: int
    name: str
    domain: str
    external_id: str | None
    industry: str
    employees: int | None
    country: str
    city: str
    owner: UserRef | None
    properties: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class ActivityOut(Schema):
    id: int
    contact_id: int
    kind: str
    subject: str
    body: str
    occurred_at: dt.datetime
    due_at: dt.datetime | None
    done: bool
    actor: UserRef | None
    created_at: dt.datetime
    updated_at: dt.datetime


class TransitionOut(Schema):
    id: int
    from_stage: str = Field(description="Empty for the contact's first stage.")
    to_stage: str
    changed_at: dt.datetime
    cause: str
    actor: UserRef | None
    note: str


class PropertyOut(Schema):
    id: int
    object_type: str
    name: str
    label: str
    type: str
    choices: list[str]


class ContactPage(Schema):
    items: list[ContactOut]
    count: int = Field(description="Matching items in all pages.")
    next: str | None = Field(description="URL of the next page; null on the last one.")


class CompanyPage(Schema):
    items: list[CompanyOut]
    count: int
    next: str | None


class ActivityPage(Schema):
    items: list[ActivityOut]
    count: int
    next: str | None


class History(Schema):
    items: list[TransitionOut]


class PropertyList(Schema):
    items: list[PropertyOut]


class ErrorBody(Schema):
    code: str = Field(description="Stable: unauthorized, forbidden, not_found, validation_error…")
    message: str
    fields: dict[str, list[str]] | None = None


class Error(Schema):
    error: ErrorBody


# -- records to plain data ----------------------------------------------------------------------
# Plain dicts rather than attribute access through the schemas: a 500-item page stays cheap.


def user_ref(user: User | None) -> dict[str, Any] | None:
    if user is None:
        return None
    name = f"{user.first_name} {user.last_name}".strip()
    return {"id": user.pk, "username": user.username, "name": name or user.username}


def contact_data(contact: Contact) -> dict[str, Any]:
    company = contact.company if contact.company_id else None
    return {
        "id": contact.pk,
        "email": contact.email,
        "external_id": contact.external_id,
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "full_name": contact.full_name,
        "phone": contact.phone,
        "job_title": contact.job_title,
        "company": {"id": company.pk, "name": company.name} if company else None,
        "owner": user_ref(contact.owner) if contact.owner_id else None,
        "lifecycle_stage": contact.lifecycle_stage,
        "lifecycle_stage_changed_at": contact.lifecycle_stage_changed_at,
        "lead_status": contact.lead_status,
        "original_source": contact.original_source,
        "original_medium": contact.original_medium,
        "original_campaign": contact.original_campaign,
        "properties": contact.properties,
        "created_at": contact.created_at,
        "updated_at": contact.updated_at,
    }


def company_data(company: Company) -> dict[str, Any]:
    return {
        "id": company.pk,
        "name": company.name,
        "domain": company.domain,
        "external_id": company.external_id,
        "industry": company.industry,
        "employees": company.employees,
        "country": company.country,
        "city": company.city,
        "owner": user_ref(company.owner) if company.owner_id else None,
        "properties": company.properties,
        "created_at": company.created_at,
        "updated_at": company.updated_at,
    }


def activity_data(activity: Activity) -> dict[str, Any]:
    return {
        "id": activity.pk,
        "contact_id": activity.contact_id,
        "kind": activity.kind,
        "subject": activity.subject,
        "body": activity.body,
        "occurred_at": activity.occurred_at,
        "due_at": activity.due_at,
        "done": activity.done,
        "actor": user_ref(activity.actor) if activity.actor_id else None,
        "created_at": activity.created_at,
        "updated_at": activity.updated_at,
    }


def transition_data(transition: LifecycleTransition) -> dict[str, Any]:
    return {
        "id": transition.pk,
        "from_stage": transition.from_stage,
        "to_stage": transition.to_stage,
        "changed_at": transition.changed_at,
        "cause": transition.cause,
        "actor": user_ref(transition.actor) if transition.actor_id else None,
        "note": transition.note,
    }


def property_data(definition: PropertyDefinition) -> dict[str, Any]:
    return {
        "id": definition.pk,
        "object_type": definition.object_type,
        "name": definition.name,
        "label": definition.label,
        "type": definition.type,
        "choices": definition.choices,
    }
