"""The demo company's e-mail: its brand, two subscription types (product news, which customers
get unless they leave it, and a newsletter people opt in to), the newsletter's subscribers with
their consent, and two templates in English and Spanish, ready for a first send."""

from __future__ import annotations

from typing import Any

from embudo.automation import authoring, consent
from embudo.automation.models import (
    ConsentAction,
    ConsentRecord,
    ConsentSource,
    Subscription,
    SubscriptionStatus,
)

BATCH = 2000
NEWSLETTER_CONSENT = "Send me the monthly newsletter (you can leave it at any time)."
SHARE_SUBSCRIBED = 0.45

NEWSLETTER = {
    "en": {
        "subject": "{{ contact.first_name|default:'Hello' }}, this month at Embudo",
        "preheader": "One funnel for marketing and sales: what is new",
        "body": (
            "<h1>Hi {{ contact.first_name|default:'there' }},</h1>\n"
            "<p>This month: how teams at companies like {{ contact.company.name|default:'yours' }}"
            " agree on what a qualified lead is, and keep the promise on both sides.</p>\n"
            '<p><a href="https://example.com/blog/smarketing-sla?utm_source=newsletter">'
            "Read the guide to the smarketing SLA</a></p>\n"
            "<p>{{ contact.owner.first_name|default:'The Embudo team' }}</p>"
        ),
    },
    "es": {
        "subject": "{{ contact.first_name|default:'Hola' }}, este mes en Embudo",
        "preheader": "Un solo embudo para marketing y ventas: novedades",
        "body": (
            "<h1>Hola, {{ contact.first_name|default:'' }}</h1>\n"
            "<p>Este mes: cómo equipos de empresas como "
            "{{ contact.company.name|default:'la tuya' }} acuerdan qué es un lead cualificado y "
            "cumplen lo prometido por ambas partes.</p>\n"
            '<p><a href="https://example.com/es/blog/sla-smarketing?utm_source=newsletter">'
            "Lee la guía del SLA entre marketing y ventas</a></p>\n"
            "<p>{{ contact.owner.first_name|default:'El equipo de Embudo' }}</p>"
        ),
    },
}

PRODUCT_NEWS = {
    "en": {
        "subject": "New in Embudo: e-mail that is sent exactly once",
        "preheader": "Templates, sends, tracking and consent",
        "body": (
            "<p>Hi {{ contact.first_name|default:'there' }},</p>\n"
            "<p>Embudo now writes, sends and tracks your e-mail, and keeps every consent.</p>\n"
            '<p><a href="https://example.com/product/email">See what is new</a></p>'
        ),
    },
    "es": {
        "subject": "Novedad en Embudo: correo que se envía una sola vez",
        "preheader": "Plantillas, envíos, seguimiento y consentimiento",
        "body": (
            "<p>Hola, {{ contact.first_name|default:'' }}:</p>\n"
            "<p>Embudo ya escribe, envía y sigue tu correo, y guarda cada consentimiento.</p>\n"
            '<p><a href="https://example.com/es/producto/correo">Descubre las novedades</a></p>'
        ),
    },
}


def seed_email(ctx: Any) -> None:
    authoring.save_brand(
        {
            "name": "Embudo Demo",
            "postal_address": "Calle de Alcalá 1, 28014 Madrid, Spain",
            "footer": "You get this because you asked us for news, or because you are a customer.",
            "from_name": "Embudo Demo",
            "from_email": "news@demo.embudo.example",
            "reply_to": "hello@demo.embudo.example",
        },
        actor=None,
    )
    product = consent.create_subscription_type(
        {
            "key": "product-news",
            "name": "Product news",
            "name_es": "Novedades del producto",
            "description": "What changes in the product you use.",
            "description_es": "Lo que cambia en el producto que usas.",
            "opt_in_required": False,
        }
    )
    newsletter = consent.create_subscription_type(
        {
            "key": "newsletter",
            "name": "Newsletter",
            "name_es": "Boletín",
            "description": "A monthly letter on marketing and sales working as one team.",
            "description_es": "Una carta al mes sobre marketing y ventas como un solo equipo.",
            "opt_in_required": True,
            "double_opt_in": True,
        }
    )
    rng = ctx.rng("email")
    subscribers = [c for c in ctx.contacts if rng.random() < SHARE_SUBSCRIBED]
    Subscription.objects.bulk_create(
        [
            Subscription(
                contact=c,
                subscription_type=newsletter,
                status=SubscriptionStatus.SUBSCRIBED,
                changed_at=c.created_at,
            )
            for c in subscribers
        ],
        batch_size=BATCH,
    )
    ConsentRecord.objects.bulk_create(
        [
            ConsentRecord(
                contact=c,
                email=c.email,
                subscription_type=newsletter,
                action=ConsentAction.SUBSCRIBE,
                source=ConsentSource.FORM,
                text=NEWSLETTER_CONSENT,
                at=c.created_at,
            )
            for c in subscribers
        ],
        batch_size=BATCH,
    )
    authoring.create_template(
        name="Monthly newsletter",
        subscription_type=newsletter.pk,
        description="The monthly letter, in English and Spanish.",
        content=NEWSLETTER,
        actor=None,
    )
    authoring.create_template(
        name="Product update",
        subscription_type=product.pk,
        description="Announcing what is new to every contact who has not left product news.",
        content=PRODUCT_NEWS,
        actor=None,
    )
    ctx.counts["newsletter_subscribers"] = len(subscribers)
    ctx.counts["email_templates"] = 2
