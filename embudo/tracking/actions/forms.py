"""Form submissions: a visitor's answers create or update a contact and record a ``form_submit``
event, which stitches the visitor's earlier anonymous visits to that contact.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import transaction

from embudo.crm import actions as crm
from embudo.crm.models import Contact, TransitionCause
from embudo.errors import ValidationFailed
from embudo.tracking.actions.ingest import record_events, retrying_if_locked
from embudo.tracking.actions.settings import CONTACT_TARGETS
from embudo.tracking.models import EventSource, Form


@dataclass(frozen=True)
class Submission:
    contact: Contact
    created: bool
    event_id: str


def submit_form(
    form: Form,
    data: Mapping[str, Any],
    *,
    visitor_id: str = "",
    page_url: str = "",
    referrer: str = "",
) -> Submission:
    """Record a submission: create or update the contact, record ``form_submit`` and attach the
    visitor's earlier anonymous events and touchpoints to the contact."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for spec in form.fields:
        name = spec["name"]
        raw = data.get(name)
        if spec["type"] == "checkbox":
            value: Any = raw not in (None, "", "0", "false", "off", False)
        else:
            value = str(raw if raw is not None else "").strip()[:2000]
        if spec["required"] and value in ("", False):
            errors[name] = [f"{spec['label']} is required"]
            continue
        if spec["type"] == "email" and value:
            try:
                validate_email(value)
            except DjangoValidationError:
                errors[name] = [f"{value!r} is not a valid email address"]
                continue
        if spec["type"] == "select" and value and value not in spec["choices"]:
            errors[name] = [f"{value!r} is not one of the choices"]
            continue
        values[name] = value
    consent = data.get("_consent") not in (None, "", "0", "false", "off", False)
    if form.consent_text and form.consent_required and not consent:
        errors["_consent"] = ["please give your consent to continue"]
    email_field = next(f["name"] for f in form.fields if f["maps_to"] == "email")
    if not values.get(email_field) and email_field not in errors:
        errors[email_field] = ["an email address is required"]
    if visitor_id and not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", visitor_id):
        visitor_id = ""
    if errors:
        raise ValidationFailed(errors)

    email = str(values[email_field]).lower()
    contact_data: dict[str, Any] = {}
    properties: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for spec in form.fields:
        value = values.get(spec["name"])
        if value in (None, ""):
            continue
        target = spec["maps_to"]
        if target in CONTACT_TARGETS:
            contact_data[target] = value
        elif target:
            properties[target] = value
        else:
            extra[spec["name"]] = value
    if properties:
        contact_data["properties"] = properties
    return retrying_if_locked(
        lambda: _record_submission(
            form, email, contact_data, extra, consent, visitor_id, page_url, referrer
        )
    )


def _record_submission(
    form: Form,
    email: str,
    contact_data: dict[str, Any],
    extra: dict[str, Any],
    consent: bool,
    visitor_id: str,
    page_url: str,
    referrer: str,
) -> Submission:
    with transaction.atomic():
        contact = Contact.objects.filter(email=email).first()
        created = contact is None
        if contact is None:
            contact = crm.create_contact(contact_data, cause=TransitionCause.API)
        else:
            crm.update_contact(
                contact,
                {k: v for k, v in contact_data.items() if k != "email"},
                cause=TransitionCause.API,
            )
        event: dict[str, Any] = {
            "type": "form_submit",
            "contact_id": contact.pk,
            "properties": {"form": form.slug, "form_name": form.name, "fields": extra},
        }
        if form.consent_text:
            event["properties"]["consent"] = consent
            event["properties"]["consent_text"] = form.consent_text
        if visitor_id:
            event["visitor_id"] = visitor_id
        if page_url:
            event["url"] = page_url[:2048]
        if referrer:
            event["referrer"] = referrer[:2048]
        outcome = record_events([event], source=EventSource.FORM)
        if outcome.rejected:
            raise ValidationFailed.one("form", outcome.errors[0]["reason"])
        if consent and form.consent_text:
            # E-mail consent: the ticked box subscribes to the types the form offers.
            from embudo.automation.consent import subscribe_from_form

            subscribe_from_form(contact, form.pk, form.consent_text)
    return Submission(
        contact=contact, created=created, event_id=str(uuid.UUID(outcome.event_ids[0]))
    )
