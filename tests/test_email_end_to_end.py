"""One e-mail's whole life across the three parts of e-mail: a template written through the
editor's action, a broadcast to a list, each message received by a real SMTP server with its
tracked links, open pixel, one-click unsubscribe headers and VERP return path; then a click,
an unsubscribe through the header's link and a bounce to the return path, each recorded."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from embudo.automation import authoring, bounces, links, sending
from embudo.automation.models import (
    Delivery,
    DeliveryState,
    SubscriptionStatus,
    Suppression,
)
from embudo.automation.models import Subscription as SubscriptionRow
from embudo.tracking.models import Event
from tests.mailroom import CountingSMTP, make_audience, make_brand

pytestmark = pytest.mark.django_db


def _html(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("the message has no HTML part")


def test_a_template_sent_to_a_list_arrives_tracked_and_its_links_work(
    smtp: CountingSMTP, settings: Any
) -> None:
    settings.EMBUDO_PUBLIC_URL = "http://testserver"
    from embudo.automation.models import SubscriptionType

    make_brand()
    kind = SubscriptionType.objects.create(key="news", name="News", opt_in_required=False)
    template = authoring.create_template(
        name="Spring news",
        subscription_type=kind.pk,
        content={
            "en": {
                "subject": "Hi {{ contact.first_name|default:'there' }}",
                "preheader": "",
                "body": '<p>Read <a href="https://example.com/spring?utm_source=news">this</a></p>',
            }
        },
        actor=None,
    )
    send = sending.create_send(template=template, segment=make_audience(3), actor=None)
    sending.start_send(send, actor=None)
    sending.deliver(send.pk)

    deliveries = list(Delivery.objects.filter(send=send).order_by("id"))
    assert [d.state for d in deliveries] == [DeliveryState.SENT] * 3
    assert sorted(smtp.received.values()) == [1, 1, 1]
    by_recipient = {rcpt[0].lower(): sender for sender, rcpt in smtp.envelopes}

    first = deliveries[0]
    message = next(m for m in smtp.messages if m["To"].lower().endswith(first.email.lower()))
    assert message["Subject"] == "Hi Person0"
    assert links.read_return_path(by_recipient[first.email.lower()]) == first.pk
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = re.search(r"<(http[^>]+)>", message["List-Unsubscribe"])
    assert unsubscribe is not None
    html = _html(message)
    assert links.open_path(first.pk) in html
    click = re.search(r'href="(http://testserver/e/c/[^"]+)"', html)
    assert click is not None

    client = Client(HTTP_USER_AGENT="Mozilla/5.0 (Macintosh) AppleWebKit Safari")
    # A person clicks minutes later; a link scanner clicks within seconds (flagged, not counted).
    Delivery.objects.filter(pk=first.pk).update(sent_at=timezone.now() - dt.timedelta(minutes=5))
    answer = client.get(urlsplit(click.group(1)).path)
    assert answer.status_code == 302
    assert answer["Location"] == "https://example.com/spring?utm_source=news"
    assert Event.objects.filter(type="email_click", contact_id=first.contact_id).count() == 1

    one_click = client.post(urlsplit(unsubscribe.group(1)).path, {"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    row = SubscriptionRow.objects.get(contact_id=first.contact_id, subscription_type=kind)
    assert row.status == SubscriptionStatus.UNSUBSCRIBED

    second = deliveries[1]
    bounces.record_bounce(links.read_return_path(by_recipient[second.email.lower()]), "hard")
    second.refresh_from_db()
    assert second.state == DeliveryState.BOUNCED
    assert Suppression.objects.filter(email=second.email.lower()).exists()

    # The next send skips both: one unsubscribed from the type, one suppressed.
    again = sending.create_send(template=template, segment=send.segment_id, actor=None)
    sending.start_send(again, actor=None)
    skipped = dict(
        Delivery.objects.filter(send=again, state=DeliveryState.SKIPPED).values_list(
            "contact_id", "skip_reason"
        )
    )
    assert skipped == {first.contact_id: "unsubscribed", second.contact_id: "suppressed"}
