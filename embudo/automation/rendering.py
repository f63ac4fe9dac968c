"""The finished message of one delivery.

Sends' minimal version of the messages area's contract (the messages area owns this module,
with compiling, link tracking and the open pixel): the version's ``compiled[language]``
subject, HTML and text rendered with Django templates for the contact, the brand's From, the
delivery's VERP return path as envelope sender (``message.envelope_sender``, which anymail
reads too), the one-click unsubscribe headers and a Message-ID the caller stores.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import make_msgid
from django.template import Context, Template
from django.urls import NoReverseMatch

from embudo import caches
from embudo.automation import links
from embudo.automation.models import Brand, Delivery

#: How long a worker keeps the brand (From, reply-to) before reading it again.
BRAND_SECONDS = 30.0

_brand: tuple[float, Brand] | None = None


def _current_brand() -> Brand:
    global _brand
    now = time.monotonic()
    if _brand is None or now - _brand[0] > BRAND_SECONDS:
        _brand = (now, Brand.objects.filter(pk=1).first() or Brand())
    return _brand[1]


def _forget_brand() -> None:
    global _brand
    _brand = None


@lru_cache(maxsize=256)
def _templates(
    version_id: int, language: str, source: tuple[str, str, str]
) -> tuple[Template, ...]:
    # Versions never change, so a version's compiled templates are kept for the process.
    return tuple(Template(part) for part in source)


caches.register("automation.rendering.templates", _templates.cache_clear)
caches.register("automation.rendering.brand", _forget_brand)


def _parts(delivery: Delivery) -> tuple[Template, ...]:
    compiled = delivery.version.compiled
    language = delivery.language if delivery.language in compiled else next(iter(compiled))
    part = compiled[language]
    source = (part.get("subject", ""), part.get("html", ""), part.get("text", ""))
    return _templates(delivery.version_id, language, source)


def _from(brand: Brand) -> str:
    address = brand.from_email or settings.DEFAULT_FROM_EMAIL
    return f"{brand.from_name} <{address}>" if brand.from_name else address


def build_message(delivery: Delivery, *, connection: Any = None) -> EmailMultiAlternatives:
    brand = _current_brand()
    subject, html, text = _parts(delivery)
    contact = delivery.contact
    context = Context(
        {
            "contact": contact,
            "company": getattr(contact, "company", None),
            "owner": getattr(contact, "owner", None),
            "brand": brand,
        }
    )
    headers = {"Message-ID": make_msgid(f"d{delivery.id}", settings.EMBUDO_BOUNCE_DOMAIN)}
    try:
        unsubscribe = links.absolute(links.unsubscribe_path(delivery.id))
    except NoReverseMatch:
        # The unsubscribe view belongs to the consent area; without it there is no link yet.
        pass
    else:
        headers["List-Unsubscribe"] = f"<{unsubscribe}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message = EmailMultiAlternatives(
        subject=" ".join(subject.render(context).split()),
        body=text.render(context),
        from_email=_from(brand),
        to=[delivery.email],
        reply_to=[brand.reply_to] if brand.reply_to else None,
        headers=headers,
        connection=connection,
    )
    if html.source.strip():
        message.attach_alternative(html.render(context), "text/html")
    message.envelope_sender = links.return_path(delivery.id)  # type: ignore[attr-defined]
    return message
