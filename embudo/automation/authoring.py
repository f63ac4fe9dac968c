"""Every write of writing e-mail: the brand, templates and their versions, and the test send.

A template is never edited in place: every save checks and compiles what was written
(:mod:`embudo.automation.rendering`) and adds a new immutable :class:`TemplateVersion`, which
``current`` then points at, so a delivery always shows what was sent.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.validators import URLValidator, validate_email
from django.db import transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.automation import rendering
from embudo.automation.models import Brand, EmailTemplate, SubscriptionType, TemplateVersion
from embudo.errors import ValidationFailed

COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
TEMPLATE_SYNTAX = re.compile(r"\{[{%#]")
BRAND_TEXT = ("name", "postal_address", "footer", "from_name")
BRAND_COLOURS = ("primary_color", "background_color", "text_color")
BRAND_FIELDS = (*BRAND_TEXT, *BRAND_COLOURS, "logo_url", "from_email", "reply_to")
MAX_LENGTHS = {"name": 128, "postal_address": 500, "footer": 2000, "from_name": 128}


# -- the brand -------------------------------------------------------------------------------------


def save_brand(data: Mapping[str, Any], *, actor: Actor) -> Brand:
    """Change the brand's look and sender; the fields not in ``data`` keep their value. New
    template versions carry it; versions already saved keep the look they were sent with."""
    unknown = set(data) - set(BRAND_FIELDS)
    if unknown:
        raise ValidationFailed.one(sorted(unknown)[0], _("not a brand setting"))
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    for name, raw in data.items():
        if not isinstance(raw, str):
            errors[name] = [_("must be text")]
            continue
        value = raw.strip()
        values[name] = value
        if "\x00" in value:  # PostgreSQL stores no NUL
            errors[name] = [_("may not contain a NUL character")]
        elif name in BRAND_TEXT:
            if TEMPLATE_SYNTAX.search(value):
                errors[name] = [_("may not hold template syntax ({{, {% or {#)")]
            elif len(value) > MAX_LENGTHS[name]:
                errors[name] = [_("is longer than %(n)d characters") % {"n": MAX_LENGTHS[name]}]
        elif name in BRAND_COLOURS:
            if not COLOUR.fullmatch(value):
                errors[name] = [_("%(value)r is not a colour like #1f6feb") % {"value": value}]
        elif name == "logo_url" and value:
            try:
                URLValidator(schemes=["http", "https"])(value)
            except ValidationError:
                errors[name] = [_("%(value)r is not a web address") % {"value": value}]
        elif name in ("from_email", "reply_to") and value:
            try:
                validate_email(value)
            except ValidationError:
                errors[name] = [_("%(value)r is not an e-mail address") % {"value": value}]
            values[name] = value.lower()
    if "name" in values and not values["name"]:
        errors["name"] = [_("a name is required")]
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        brand, _created = Brand.objects.select_for_update().get_or_create(pk=1)
        changes = {k: v for k, v in values.items() if getattr(brand, k) != v}
        for name, value in values.items():
            setattr(brand, name, value)
        brand.updated_at = timezone.now()
        brand.save()
        record_audit("brand.update", "brand", brand.pk, actor=actor, changes=changes)
    rendering.forget_brand()
    return brand


# -- templates -------------------------------------------------------------------------------------


def _subscription_type(value: Any) -> SubscriptionType:
    if isinstance(value, SubscriptionType):
        return value
    found = None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        found = SubscriptionType.objects.filter(pk=int(value)).first()
    elif isinstance(value, str) and value:
        found = SubscriptionType.objects.filter(key=value).first()
    if found is None:
        raise ValidationFailed.one(
            "subscription_type", _("choose the subscription type this e-mail belongs to")
        )
    return found


def _name(value: Any, template: EmailTemplate | None) -> str:
    name = value.strip() if isinstance(value, str) else ""
    if not name:
        raise ValidationFailed.one("name", _("a name is required"))
    if len(name) > 128:
        raise ValidationFailed.one("name", _("is longer than 128 characters"))
    if "\x00" in name:
        raise ValidationFailed.one("name", _("may not contain a NUL character"))
    taken = EmailTemplate.objects.filter(name=name)
    if template is not None:
        taken = taken.exclude(pk=template.pk)
    if taken.exists():
        raise ValidationFailed.one(
            "name", _("another template is called %(name)r") % {"name": name}
        )
    return name


def _description(value: str) -> str:
    if "\x00" in value:
        raise ValidationFailed.one("description", _("may not contain a NUL character"))
    return value.strip()[:500]


def _new_version(
    template: EmailTemplate, content: Mapping[str, Any], actor: Actor
) -> TemplateVersion:
    cleaned = rendering.check_content(content)
    compiled = rendering.compile_version(cleaned, rendering.current_brand())
    number = (template.versions.aggregate(n=Max("number"))["n"] or 0) + 1
    version = TemplateVersion.objects.create(
        template=template,
        number=number,
        content=cleaned,
        compiled=compiled,
        created_by=actor,
    )
    template.current = version
    return version


@transaction.atomic
def create_template(
    *,
    name: Any,
    subscription_type: Any,
    content: Mapping[str, Any],
    description: str = "",
    actor: Actor,
) -> EmailTemplate:
    """A new template with its first version; refused whole (nothing saved) if any part of it
    does not render."""
    template = EmailTemplate(
        name=_name(name, None),
        description=_description(description or ""),
        subscription_type=_subscription_type(subscription_type),
        created_by=actor,
    )
    rendering.check_content(content)  # refuse before anything is written
    template.save()
    version = _new_version(template, content, actor)
    template.save(update_fields=["current"])
    record_audit(
        "email_template.create",
        "email_template",
        template.pk,
        actor=actor,
        changes={"name": template.name, "version": version.number},
    )
    return template


@transaction.atomic
def update_template(
    template: EmailTemplate,
    *,
    content: Mapping[str, Any] | None = None,
    name: Any = None,
    description: str | None = None,
    subscription_type: Any = None,
    actor: Actor,
) -> EmailTemplate:
    """Save a template: new content becomes a new version (the old ones stay, unchanged); a
    name, description or subscription type applies to the template itself."""
    template = EmailTemplate.objects.select_for_update().get(pk=template.pk)
    changes: dict[str, Any] = {}
    if name is not None:
        template.name = changes["name"] = _name(name, template)
    if description is not None:
        template.description = changes["description"] = _description(description)
    if subscription_type is not None:
        template.subscription_type = _subscription_type(subscription_type)
        changes["subscription_type"] = template.subscription_type.key
    if content is not None:
        version = _new_version(template, content, actor)
        changes["version"] = version.number
    template.updated_at = timezone.now()
    template.save()
    record_audit(
        "email_template.update", "email_template", template.pk, actor=actor, changes=changes
    )
    return template


@transaction.atomic
def archive_template(template: EmailTemplate, *, archived: bool = True, actor: Actor) -> None:
    """Archive a template (it leaves the list and can start no new send) or bring it back."""
    EmailTemplate.objects.filter(pk=template.pk).update(
        archived=archived, updated_at=timezone.now()
    )
    template.archived = archived
    record_audit(
        "email_template.archive" if archived else "email_template.restore",
        "email_template",
        template.pk,
        actor=actor,
    )


# -- preview and test send ------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    language: str
    subject: str
    html: str
    text: str


def preview(
    content: Mapping[str, Any] | None = None,
    *,
    version: TemplateVersion | None = None,
    contact: Any = None,
    language: str = "en",
) -> Preview:
    """A message as ``contact`` would get it (``None``: a contact with no field filled), from a
    saved version or from content being written (checked first: :class:`ValidationFailed`)."""
    if version is not None:
        compiled = version.compiled
    else:
        compiled = rendering.compile_version(
            rendering.check_content(content or {}), rendering.current_brand()
        )
    chosen = rendering.language_for(compiled, language)
    out = rendering.render_preview(compiled[chosen], contact, rendering.current_brand())
    return Preview(chosen, out.subject, out.html, out.text)


def send_test(
    version: TemplateVersion,
    *,
    to: str,
    contact: Any = None,
    language: str = "en",
    actor: Actor,
) -> str:
    """Mail ``version`` as ``contact`` would get it to ``to`` (through the configured e-mail
    backend), its subject marked as a test; returns the subject sent."""
    address = (to or "").strip().lower()
    try:
        validate_email(address)
    except ValidationError:
        raise ValidationFailed.one(
            "to", _("%(value)r is not an e-mail address") % {"value": to}
        ) from None
    shown = preview(version=version, contact=contact, language=language)
    brand = rendering.current_brand()
    subject = _("[Test] %(subject)s") % {"subject": shown.subject}
    message = EmailMultiAlternatives(
        subject=subject,
        body=shown.text,
        from_email=rendering.sender(brand),
        to=[address],
        reply_to=[brand.reply_to] if brand.reply_to else None,
        headers={"Message-ID": rendering.message_id()},
        connection=get_connection(),
    )
    message.attach_alternative(shown.html, "text/html")
    message.send()
    record_audit(
        "email_template.test_send",
        "email_template",
        version.template_id,
        actor=actor,
        changes={"to": address, "version": version.number, "language": shown.language},
    )
    return subject
