"""API endpoints of e-mail templates: list, create, read, update (every content change is a new
version), their versions, and the preview of a template — saved or being written — as any
contact, in English or Spanish."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema, Status
from pydantic import Field

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.automation import authoring, send_reports
from embudo.automation.models import EmailTemplate, TemplateVersion
from embudo.crm import queries as crm_queries
from embudo.crm.schemas import Error

router: Router = Router(tags=["E-mail templates"])

ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}
VIEW = "automation.view_emailtemplate"
CHANGE = "automation.change_emailtemplate"
ADD = "automation.add_emailtemplate"


class Parts(Schema):
    subject: str = ""
    preheader: str = ""
    body: str = Field("", description="HTML with personal fields, e.g. {{ contact.first_name }}")


class Content(Schema):
    en: Parts
    es: Parts | None = None


class TemplateIn(Schema):
    name: str
    subscription_type: str = Field(description="The subscription type's key or id.")
    description: str = ""
    content: Content


class TemplatePatch(Schema):
    name: str | None = None
    subscription_type: str | None = None
    description: str | None = None
    content: Content | None = None
    archived: bool | None = None


class VersionOut(Schema):
    number: int
    created_at: str
    content: dict[str, Any]


class TemplateOut(Schema):
    id: int
    name: str
    description: str
    subscription_type: str
    archived: bool
    version: int | None
    languages: list[str]
    content: dict[str, Any]
    updated_at: str


class FunnelEffectOut(Schema):
    days: int
    recipients: int = Field(description="Contacts who were sent it.")
    mql: int = Field(description="Recipients who became MQL within `days` of their message.")
    sql: int
    customers: int
    attributed_conversions: float | None = Field(
        description="The `email` channel's conversions (linear attribution) from the first "
        "send's day to `days` after the last one's; null when nothing was sent."
    )
    attributed_revenue: float | None
    currency: str


class TemplateReportOut(Schema):
    sends: int = Field(description="Started sends of the template.")
    first_sent_at: str | None
    last_sent_at: str | None
    delivered: int
    opened: int
    clicked: int
    unsubscribed: int
    bounced: int
    effect: FunnelEffectOut


class TemplateList(Schema):
    results: list[TemplateOut]


class VersionList(Schema):
    results: list[VersionOut]


class PreviewIn(Schema):
    contact_id: int | None = None
    language: str = "en"
    version: int | None = Field(None, description="A version number; the current one if absent.")


class DraftPreviewIn(Schema):
    content: Content
    contact_id: int | None = None
    language: str = "en"


class PreviewOut(Schema):
    language: str
    subject: str
    html: str
    text: str


def _template_data(template: EmailTemplate) -> dict[str, Any]:
    version = template.current
    return {
        "id": template.pk,
        "name": template.name,
        "description": template.description,
        "subscription_type": template.subscription_type.key,
        "archived": template.archived,
        "version": version.number if version else None,
        "languages": sorted(version.content) if version else [],
        "content": version.content if version else {},
        "updated_at": template.updated_at.isoformat(),
    }


def _template(template_id: int) -> EmailTemplate:
    found = (
        EmailTemplate.objects.select_related("current", "subscription_type")
        .filter(pk=template_id)
        .first()
    )
    if found is None:
        raise ApiError(404, "not_found", f"no template with id {template_id}")
    return found


def _contact(who: Principal, contact_id: int | None) -> Any:
    if contact_id is None:
        return None
    viewer = who.user if who.user is not None else crm_queries.SYSTEM
    contact = (
        crm_queries.visible_contacts(viewer)
        .select_related("company", "owner")
        .filter(pk=contact_id)
        .first()
    )
    if contact is None:
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    return contact


def _content(content: Content) -> dict[str, Any]:
    return content.model_dump(exclude_none=True)


@router.get("/email/templates", response={200: TemplateList, **ERRORS})
def list_templates(request: HttpRequest, archived: bool = False) -> dict[str, Any]:
    allow(request, Scope.READ, VIEW)
    rows = EmailTemplate.objects.select_related("current", "subscription_type").filter(
        archived=archived
    )
    return {"results": [_template_data(t) for t in rows]}


@router.post("/email/templates", response={201: TemplateOut, **ERRORS})
def create_template(request: HttpRequest, payload: TemplateIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, ADD)
    template = authoring.create_template(
        name=payload.name,
        subscription_type=payload.subscription_type,
        description=payload.description,
        content=_content(payload.content),
        actor=who.actor,
    )
    return Status(201, _template_data(_template(template.pk)))


# Before the "{template_id}" paths, which would take "preview" for an id.
@router.post("/email/templates/preview", response={200: PreviewOut, **ERRORS})
def preview_draft(request: HttpRequest, payload: DraftPreviewIn) -> Any:
    who = allow(request, Scope.READ, VIEW)
    shown = authoring.preview(
        _content(payload.content),
        contact=_contact(who, payload.contact_id),
        language=payload.language,
    )
    return shown.__dict__


@router.get("/email/templates/{template_id}", response={200: TemplateOut, **ERRORS})
def get_template(request: HttpRequest, template_id: int) -> dict[str, Any]:
    allow(request, Scope.READ, VIEW)
    return _template_data(_template(template_id))


@router.get(
    "/email/templates/{template_id}/report",
    response={200: TemplateReportOut, **ERRORS},
    summary="A template's results across its sends",
)
def template_report(request: HttpRequest, template_id: int, days: int = 30) -> dict[str, Any]:
    """Every started send of the template together: delivered, opened, clicked, unsubscribed,
    bounced, the recipients who became MQL, SQL or customer within `days` (1 to 365) of their
    message, and the conversions and revenue attribution credits e-mail with."""
    allow(request, Scope.READ, VIEW)
    template = _template(template_id)
    if not 1 <= days <= 365:
        problem = f"days must be from 1 to 365, not {days}"
        raise ApiError(422, "validation_error", problem, {"days": [problem]})
    report = send_reports.template_report(template, days).as_dict()
    for moment in ("first_sent_at", "last_sent_at"):
        report[moment] = report[moment].isoformat() if report[moment] else None
    return report


@router.patch("/email/templates/{template_id}", response={200: TemplateOut, **ERRORS})
def update_template(request: HttpRequest, template_id: int, payload: TemplatePatch) -> Any:
    who = allow(request, Scope.WRITE, CHANGE)
    template = _template(template_id)
    authoring.update_template(
        template,
        name=payload.name,
        description=payload.description,
        subscription_type=payload.subscription_type,
        content=_content(payload.content) if payload.content is not None else None,
        actor=who.actor,
    )
    if payload.archived is not None:
        authoring.archive_template(template, archived=payload.archived, actor=who.actor)
    return _template_data(_template(template_id))


@router.get("/email/templates/{template_id}/versions", response={200: VersionList, **ERRORS})
def list_versions(request: HttpRequest, template_id: int) -> dict[str, Any]:
    allow(request, Scope.READ, VIEW)
    template = _template(template_id)
    return {
        "results": [
            {"number": v.number, "created_at": v.created_at.isoformat(), "content": v.content}
            for v in template.versions.order_by("-number")
        ]
    }


@router.post("/email/templates/{template_id}/preview", response={200: PreviewOut, **ERRORS})
def preview_template(request: HttpRequest, template_id: int, payload: PreviewIn) -> Any:
    who = allow(request, Scope.READ, VIEW)
    template = _template(template_id)
    version: TemplateVersion | None = template.current
    if payload.version is not None:
        version = template.versions.filter(number=payload.version).first()
    if version is None:
        raise ApiError(404, "not_found", f"template {template_id} has no such version")
    shown = authoring.preview(
        version=version, contact=_contact(who, payload.contact_id), language=payload.language
    )
    return shown.__dict__
