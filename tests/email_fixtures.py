"""Shared set-up of the e-mail template tests: a subscription type, a template, a delivery."""

from __future__ import annotations

from typing import Any

from embudo.automation import authoring
from embudo.automation.models import Delivery, EmailTemplate, SubscriptionType
from embudo.crm.models import ObjectType, PropertyDefinition

BODY_EN = (
    '<h1>Hi {{ contact.first_name|default:"there" }}</h1>\n'
    '<p>{{ contact.company.name|default:"your team" }} on the {{ contact.properties.plan }} plan.'
    ' <a href="https://example.com/pricing?utm_source=newsletter&amp;utm_campaign=spring">'
    "See prices</a></p>\n"
    '<p><a class="button" href="https://example.com/start">Start</a></p>\n'
    "<p>{{ contact.owner.name }}</p>"
)
BODY_ES = '<h1>Hola {{ contact.first_name|default:"amigo" }}</h1>\n<p><a href="https://example.com/es">Ver</a></p>'


def newsletter() -> SubscriptionType:
    found, _ = SubscriptionType.objects.get_or_create(key="newsletter", defaults={"name": "News"})
    return found


def make_template(name: str = "Spring news", **content: Any) -> EmailTemplate:
    PropertyDefinition.objects.get_or_create(
        object_type=ObjectType.CONTACT, name="plan", defaults={"label": "Plan", "type": "text"}
    )
    return authoring.create_template(
        name=name,
        subscription_type=newsletter(),
        content=content
        or {
            "en": {
                "subject": 'Hello {{ contact.first_name|default:"there" }}',
                "preheader": "",
                "body": BODY_EN,
            },
            "es": {
                "subject": 'Hola {{ contact.first_name|default:"amigo" }}',
                "preheader": "",
                "body": BODY_ES,
            },
        },
        actor=None,
    )


def make_delivery(template: EmailTemplate, contact: Any, **kwargs: Any) -> Delivery:
    assert template.current is not None
    return Delivery.objects.create(
        version=template.current,
        contact=contact,
        email=contact.email,
        language=contact.language or "en",
        **kwargs,
    )
