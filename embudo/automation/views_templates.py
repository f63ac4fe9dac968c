"""Pages for writing e-mail: the brand settings, the template list, the editor (body with a
toolbar, English and Spanish, live preview as any contact, test send), and old versions.

Thin views: check access, call one action, render. The live preview comes from
``POST /api/v1/email/templates/preview``, called by ``automation/editor.js`` as you type.
"""

from __future__ import annotations

import logging
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from django.views.decorators.http import require_http_methods, require_POST

from embudo.automation import authoring, rendering, send_reports
from embudo.automation.models import EmailTemplate, SubscriptionType, TemplateVersion
from embudo.automation.send_views import DAY_CHOICES, days_asked
from embudo.crm import queries as crm_queries
from embudo.errors import ValidationFailed
from embudo.web.access import acting_user, role_required

logger = logging.getLogger(__name__)

PERSONAL_FIELDS = (
    ('contact.first_name|default:"there"', gettext_noop("First name")),
    ("contact.last_name", gettext_noop("Last name")),
    ("contact.name", gettext_noop("Full name")),
    ("contact.email", gettext_noop("E-mail")),
    ("contact.job_title", gettext_noop("Job title")),
    ("contact.company.name", gettext_noop("Company")),
    ("contact.owner.name", gettext_noop("Owner's name")),
    ("contact.owner.email", gettext_noop("Owner's e-mail")),
    ("brand.name", gettext_noop("Brand name")),
)


@require_http_methods(["GET", "POST"])
@role_required("automation.change_brand")
def brand(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    current = rendering.current_brand()
    values: dict[str, Any] = {name: getattr(current, name) for name in authoring.BRAND_FIELDS}
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in authoring.BRAND_FIELDS}
        try:
            authoring.save_brand(values, actor=acting_user(request))
        except ValidationFailed as error:
            errors = error.errors
        else:
            messages.success(request, _("The brand was saved; new template versions use it."))
            return redirect("automation:brand")
    return render(
        request,
        "automation/brand.html",
        {"values": values, "errors": errors},
        status=422 if errors else 200,
    )


@role_required("automation.view_emailtemplate")
def template_list(request: HttpRequest) -> HttpResponse:
    archived = request.GET.get("archived") == "1"
    templates = EmailTemplate.objects.select_related("current", "subscription_type").filter(
        archived=archived
    )
    return render(
        request,
        "automation/templates.html",
        {
            "templates": templates,
            "archived": archived,
            "can_add": request.user.has_perm("automation.add_emailtemplate"),
        },
    )


def _form_content(post: Any) -> dict[str, dict[str, str]]:
    return {
        language: {part: post.get(f"{part}_{language}", "") for part in rendering.PARTS}
        for language in rendering.LANGUAGES
    }


def _editor(
    request: HttpRequest,
    template: EmailTemplate | None,
    values: dict[str, Any],
    errors: dict[str, list[str]],
) -> HttpResponse:
    versions = (
        template.versions.select_related("created_by").order_by("-number")[:50] if template else []
    )
    days = days_asked(request)
    return render(
        request,
        "automation/editor.html",
        {
            "template": template,
            "values": values,
            "errors": errors,
            "languages": [("en", _("English")), ("es", _("Spanish"))],
            "subscription_types": SubscriptionType.objects.filter(active=True),
            "fields": [(name, _(label)) for name, label in PERSONAL_FIELDS],
            "versions": versions,
            "report": send_reports.template_report(template, days) if template else None,
            "days": days,
            "day_choices": DAY_CHOICES,
            "can_change": request.user.has_perm("automation.change_emailtemplate"),
        },
        status=422 if errors else 200,
    )


def _values_of(template: EmailTemplate) -> dict[str, Any]:
    content = template.current.content if template.current else {}
    values: dict[str, Any] = {
        "name": template.name,
        "description": template.description,
        "subscription_type": str(template.subscription_type_id),
    }
    for language in rendering.LANGUAGES:
        for part in rendering.PARTS:
            values[f"{part}_{language}"] = (content.get(language) or {}).get(part, "")
    return values


def _posted_values(request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {
        name: request.POST.get(name, "") for name in ("name", "description", "subscription_type")
    }
    for language, parts in _form_content(request.POST).items():
        for part, value in parts.items():
            values[f"{part}_{language}"] = value
    return values


@require_http_methods(["GET", "POST"])
@role_required("automation.add_emailtemplate")
def template_new(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        values = {
            "subject_en": _("News from {{ brand.name }}"),
            "body_en": '<p>Hi {{ contact.first_name|default:"there" }},</p>\n<p></p>',
        }
        return _editor(request, None, values, {})
    values = _posted_values(request)
    try:
        template = authoring.create_template(
            name=values["name"],
            subscription_type=values["subscription_type"],
            description=values["description"],
            content=_form_content(request.POST),
            actor=acting_user(request),
        )
    except ValidationFailed as error:
        return _editor(request, None, values, error.errors)
    messages.success(request, _("Template saved as version 1."))
    return redirect("automation:template", template_id=template.pk)


@require_http_methods(["GET", "POST"])
@role_required("automation.view_emailtemplate")
def template_edit(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(
        EmailTemplate.objects.select_related("current", "subscription_type"), pk=template_id
    )
    if request.method == "GET":
        return _editor(request, template, _values_of(template), {})
    if not request.user.has_perm("automation.change_emailtemplate"):
        messages.error(request, _("Your role does not allow this."))
        return redirect("automation:template", template_id=template.pk)
    values = _posted_values(request)
    try:
        template = authoring.update_template(
            template,
            name=values["name"],
            description=values["description"],
            subscription_type=values["subscription_type"],
            content=_form_content(request.POST),
            actor=acting_user(request),
        )
    except ValidationFailed as error:
        return _editor(request, template, values, error.errors)
    number = template.current.number if template.current else 1
    messages.success(request, _("Template saved as version %(n)d.") % {"n": number})
    return redirect("automation:template", template_id=template.pk)


@role_required("automation.view_emailtemplate")
def version_detail(request: HttpRequest, template_id: int, number: int) -> HttpResponse:
    version = get_object_or_404(
        TemplateVersion.objects.select_related("template", "created_by"),
        template_id=template_id,
        number=number,
    )
    shown = [
        (language, authoring.preview(version=version, language=language))
        for language in rendering.LANGUAGES
        if language in version.compiled
    ]
    return render(
        request,
        "automation/version.html",
        {"version": version, "template": version.template, "shown": shown},
    )


@require_POST
@role_required("automation.change_emailtemplate")
def template_archive(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(EmailTemplate, pk=template_id)
    archived = request.POST.get("archived", "1") == "1"
    authoring.archive_template(template, archived=archived, actor=acting_user(request))
    if archived:
        messages.success(request, _("The template was archived."))
    else:
        messages.success(request, _("The template is back in the list."))
    return redirect("automation:template", template_id=template.pk)


@require_POST
@role_required("automation.view_emailtemplate")
def template_test_send(request: HttpRequest, template_id: int) -> HttpResponse:
    template = get_object_or_404(EmailTemplate.objects.select_related("current"), pk=template_id)
    contact = None
    contact_id = request.POST.get("contact", "").strip()
    if contact_id.isdigit():
        contact = (
            crm_queries.visible_contacts(request.user)
            .select_related("company", "owner")
            .filter(pk=int(contact_id))
            .first()
        )
    if template.current is None:
        messages.error(request, _("Save the template before sending a test."))
        return redirect("automation:template", template_id=template.pk)
    try:
        authoring.send_test(
            template.current,
            to=request.POST.get("to", ""),
            contact=contact,
            language=request.POST.get("language", "en"),
            actor=acting_user(request),
        )
    except ValidationFailed as error:
        messages.error(request, " ".join(m for msgs in error.errors.values() for m in msgs))
    except Exception as error:  # the mail server or service refused, or is not there
        logger.warning("test send of template %s failed: %s", template.pk, error)
        messages.error(request, _("The test could not be sent: %(error)s") % {"error": error})
    else:
        messages.success(
            request, _("A test was sent to %(to)s.") % {"to": request.POST.get("to", "").strip()}
        )
    return redirect("automation:template", template_id=template.pk)
