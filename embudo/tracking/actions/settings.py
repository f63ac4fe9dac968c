"""The capture settings an admin keeps: site keys for the snippet, form definitions, and the
channel rules that classify touchpoints.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm.models import ObjectType, PropertyDefinition
from embudo.errors import ValidationFailed
from embudo.tracking.channels import DEFAULT_RULES, RULEBOOK, compile_pattern
from embudo.tracking.models import Channel, ChannelRule, Form, SiteKey

FIELD_TYPES = ("text", "email", "tel", "textarea", "checkbox", "select")


CONTACT_TARGETS = ("email", "first_name", "last_name", "phone", "job_title")


RESERVED_NAMES = ("_vid", "_hp", "_consent", "_url", "_referrer")


def _clean_origins(raw: Any) -> list[str]:
    """Origins as browsers send them: ``scheme://host[:port]``, lower-case, no path."""
    if isinstance(raw, str):
        raw = [line for line in re.split(r"[\s,]+", raw) if line]
    if not isinstance(raw, list):
        raise ValidationFailed.one("allowed_origins", "give a list of origins")
    origins: list[str] = []
    for item in raw:
        text = str(item).strip().rstrip("/").lower()
        parts = urlsplit(text)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ValidationFailed.one(
                "allowed_origins",
                f"{item!r} is not an origin (like https://www.example.com, without a path)",
            )
        if text not in origins:
            origins.append(text)
    return origins


def _clean_form_fields(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed.one("fields", "a form needs at least one field")
    custom = set(
        PropertyDefinition.objects.filter(object_type=ObjectType.CONTACT).values_list(
            "name", flat=True
        )
    )
    cleaned: list[dict[str, Any]] = []
    errors: dict[str, list[str]] = {}
    seen: set[str] = set()
    for position, item in enumerate(raw):
        key = f"fields.{position}"
        if not isinstance(item, dict):
            errors[key] = ["each field is an object with a name, a label and a type"]
            continue
        name = slugify(str(item.get("name") or "")).replace("-", "_")
        type_ = str(item.get("type") or "text")
        maps_to = str(item.get("maps_to") or "")
        problems: list[str] = []
        if not name:
            problems.append("a field needs a name")
        elif name in seen:
            problems.append(f"two fields are named {name!r}")
        elif name in RESERVED_NAMES:
            problems.append(f"{name!r} is reserved")
        if type_ not in FIELD_TYPES:
            problems.append(f"type {type_!r} is not one of {', '.join(FIELD_TYPES)}")
        if maps_to and maps_to not in CONTACT_TARGETS and maps_to not in custom:
            problems.append(
                f"maps_to {maps_to!r} is neither a contact field "
                f"({', '.join(CONTACT_TARGETS)}) nor a defined custom property"
            )
        choices = item.get("choices") or []
        if type_ == "select" and not choices:
            problems.append("a select field needs its choices")
        if problems:
            errors[key] = problems
            continue
        seen.add(name)
        cleaned.append(
            {
                "name": name,
                "label": str(item.get("label") or name.replace("_", " ").capitalize()),
                "type": type_,
                "required": bool(item.get("required")),
                "maps_to": maps_to,
                "choices": [str(c) for c in choices],
            }
        )
    if not errors and not any(f["maps_to"] == "email" for f in cleaned):
        errors["fields"] = ["one field must map to the contact's email"]
    if errors:
        raise ValidationFailed(errors)
    return cleaned


def _form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    if "name" in data:
        values["name"] = str(data["name"] or "").strip()
        if not values["name"]:
            errors["name"] = ["a form needs a name"]
    for key in ("thank_you_message", "redirect_url", "consent_text"):
        if key in data:
            values[key] = str(data[key] or "").strip()
    if values.get("redirect_url"):
        parts = urlsplit(values["redirect_url"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors["redirect_url"] = ["the redirect must be an http(s) URL"]
    if "consent_required" in data:
        values["consent_required"] = bool(data["consent_required"])
    if "is_active" in data:
        values["is_active"] = bool(data["is_active"])
    try:
        if "fields" in data:
            values["fields"] = _clean_form_fields(data["fields"])
        if "allowed_origins" in data:
            values["allowed_origins"] = _clean_origins(data["allowed_origins"])
    except ValidationFailed as failed:
        errors.update(failed.errors)
    if values.get("consent_required") and not values.get("consent_text", "x"):
        errors["consent_text"] = ["a required consent needs its text"]
    if errors:
        raise ValidationFailed(errors)
    return values


def create_form(data: Mapping[str, Any], *, actor: Actor = None) -> Form:
    values = _form_values(data)
    if "name" not in values:
        raise ValidationFailed.one("name", "a form needs a name")
    if "fields" not in values:
        raise ValidationFailed.one("fields", "a form needs at least one field")
    with transaction.atomic():
        base = slugify(values["name"])[:40] or "form"
        form = Form.objects.create(
            slug=f"{base}-{secrets.token_hex(3)}",
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            **values,
        )
        record_audit("form.create", "form", form.pk, actor=actor, changes={"name": form.name})
    return form


def update_form(form: Form, data: Mapping[str, Any], *, actor: Actor = None) -> Form:
    values = _form_values(data)
    with transaction.atomic():
        for name, value in values.items():
            setattr(form, name, value)
        form.updated_at = timezone.now()
        form.save()
        record_audit("form.update", "form", form.pk, actor=actor, changes={"fields": list(values)})
    return form


def create_site_key(name: str, allowed_origins: Any, *, actor: Actor = None) -> SiteKey:
    if not name.strip():
        raise ValidationFailed.one("name", "a site key needs a name")
    origins = _clean_origins(allowed_origins)
    if not origins:
        raise ValidationFailed.one(
            "allowed_origins", "list at least one origin the snippet will run on"
        )
    with transaction.atomic():
        site_key = SiteKey.objects.create(
            name=name.strip(),
            key=f"pk_{secrets.token_urlsafe(18)}",
            allowed_origins=origins,
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
        )
        record_audit(
            "sitekey.create", "sitekey", site_key.pk, actor=actor, changes={"origins": origins}
        )
    return site_key


def update_site_key(site_key: SiteKey, allowed_origins: Any, *, actor: Actor = None) -> SiteKey:
    origins = _clean_origins(allowed_origins)
    with transaction.atomic():
        site_key.allowed_origins = origins
        site_key.save(update_fields=["allowed_origins"])
        record_audit(
            "sitekey.update", "sitekey", site_key.pk, actor=actor, changes={"origins": origins}
        )
    return site_key


def revoke_site_key(site_key: SiteKey, *, actor: Actor = None) -> None:
    with transaction.atomic():
        site_key.revoked_at = timezone.now()
        site_key.save(update_fields=["revoked_at"])
        record_audit("sitekey.revoke", "sitekey", site_key.pk, actor=actor)


def save_channel_rules(rows: Sequence[Mapping[str, Any]], *, actor: Actor = None) -> None:
    """Replace the channel rules with ``rows``, in that order, after checking every pattern."""
    errors: dict[str, list[str]] = {}
    cleaned: list[ChannelRule] = []
    for position, row in enumerate(rows):
        channel = str(row.get("channel") or "")
        if channel not in Channel.values:
            errors[f"rules.{position}.channel"] = [
                f"{channel!r} is not one of {', '.join(Channel.values)}"
            ]
        patterns = {}
        for name in ("source_pattern", "medium_pattern", "campaign_pattern"):
            pattern = str(row.get(name) or "").strip()
            try:
                compile_pattern(pattern)
            except re.error as error:
                errors[f"rules.{position}.{name}"] = [
                    f"{pattern!r} is not a regular expression: {error}"
                ]
            patterns[name] = pattern
        cleaned.append(
            ChannelRule(
                position=(position + 1) * 10,
                channel=channel,
                note=str(row.get("note") or "")[:255],
                **patterns,
            )
        )
    if not cleaned:
        errors["rules"] = ["keep at least one rule (an empty rule matches everything)"]
    if errors:
        raise ValidationFailed(errors)
    with transaction.atomic():
        ChannelRule.objects.all().delete()
        ChannelRule.objects.bulk_create(cleaned)
        record_audit(
            "channelrules.save", "channelrule", "", actor=actor, changes={"rules": len(cleaned)}
        )
    # Reload now (this process sees its own writes) and again once committed, when an outer
    # transaction was open.
    RULEBOOK.forget()
    transaction.on_commit(RULEBOOK.forget)


def reset_channel_rules(*, actor: Actor = None) -> None:
    save_channel_rules(
        [
            {
                "channel": c,
                "source_pattern": s,
                "medium_pattern": m,
                "campaign_pattern": k,
                "note": n,
            }
            for c, s, m, k, n in DEFAULT_RULES
        ],
        actor=actor,
    )
