"""What e-mail send tests share: a brand, a template with a version, an audience, and a real SMTP
server on 127.0.0.1 that counts what each recipient got and can answer like a real one
(temporary 4xx, permanent 5xx) for chosen addresses."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from embudo.automation.models import (
    Brand,
    EmailTemplate,
    SubscriptionType,
    TemplateVersion,
)
from embudo.crm import actions as crm
from embudo.crm.models import TransitionCause
from embudo.segments import actions as segments
from embudo.segments.models import Segment
from tests.embudo_processes import MailSink

SUBJECT = "Hello {{ contact.first_name|default:'there' }}"
HTML = "<p>Hi {{ contact.first_name|default:'there' }}, news from {{ brand.name }}.</p>"
TEXT = "Hi {{ contact.first_name|default:'there' }}, news from {{ brand.name }}."


def make_brand(postal_address: str = "Calle Mayor 1, 28013 Madrid") -> Brand:
    brand, _ = Brand.objects.update_or_create(
        pk=1,
        defaults={
            "name": "Acme",
            "from_name": "Acme news",
            "from_email": "news@acme.test",
            "postal_address": postal_address,
        },
    )
    return brand


def make_template(name: str = "Spring news", *, opt_in_required: bool = False) -> EmailTemplate:
    kind, _ = SubscriptionType.objects.get_or_create(
        key="newsletter",
        defaults={"name": "Newsletter", "opt_in_required": opt_in_required},
    )
    template = EmailTemplate.objects.create(name=name, subscription_type=kind)
    compiled = {
        "en": {"subject": SUBJECT, "html": HTML, "text": TEXT},
        "es": {
            "subject": "Hola {{ contact.first_name|default:'' }}",
            "html": "<p>Hola {{ contact.first_name }}</p>",
            "text": "Hola {{ contact.first_name }}",
        },
    }
    version = TemplateVersion.objects.create(
        template=template, number=1, content=compiled, compiled=compiled
    )
    template.current = version
    template.save(update_fields=["current"])
    return template


def make_audience(
    count: int, *, name: str = "Customers", domains: tuple[str, ...] = ("example.com",)
) -> Segment:
    """A static list of ``count`` new contacts, their addresses spread over ``domains``."""
    start = Segment.objects.count() * 1_000_000
    rows = [
        {
            "email": f"person{start + n}@{domains[n % len(domains)]}",
            "first_name": f"Person{n}",
        }
        for n in range(count)
    ]
    contacts = crm.create_contacts(rows, cause=TransitionCause.MANUAL) if rows else []
    audience = segments.create_segment({"name": name, "kind": "static"})
    segments.add_members(audience, [c.pk for c in contacts])
    return audience


class CountingSMTP(MailSink):
    """The test SMTP server that also counts the messages each recipient got and keeps each
    envelope (sender, recipients).

    ``answers`` maps an address to the replies its RCPT TO gets, one per attempt, before it is
    accepted (``["451 4.3.0 try later"]``: refused once, then taken)."""

    def __init__(self) -> None:
        super().__init__()
        self.received: Counter[str] = Counter()
        self.envelopes: list[tuple[str, list[str]]] = []
        self.answers: dict[str, list[str]] = {}
        self._lock = threading.Lock()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        with self._lock:
            queued = self.answers.get(address.lower())
            if queued:
                # A temporary refusal is used up; a permanent one stays.
                reply = queued[0]
                if reply.startswith("4"):
                    queued.pop(0)
                return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            for address in envelope.rcpt_tos:
                self.received[address.lower()] += 1
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        await super().handle_DATA(server, session, envelope)
        return "250 2.0.0 Accepted"

    def __enter__(self) -> CountingSMTP:
        super().__enter__()
        return self
