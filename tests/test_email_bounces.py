"""Bounces and complaints: hard bounces and complaints suppress, soft bounces suppress after the
limit in a row; DSNs reach `embudo mail-in` over real SMTP; provider webhooks through anymail."""

from __future__ import annotations

import base64
import smtplib
import socket
from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import include, path

from embudo.automation import bounces, consent, links, mailin
from embudo.automation.mailability import mailable
from embudo.automation.models import (
    Bounce,
    ConsentRecord,
    Delivery,
    EmailTemplate,
    SubscriptionType,
    Suppression,
    TemplateVersion,
)
from embudo.crm.models import Contact
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def make_delivery(contact: Contact, *, state: str = "sent", **kwargs: Any) -> Delivery:
    kind = SubscriptionType.objects.get_or_create(key="news", defaults={"name": "News"})[0]
    template = EmailTemplate.objects.get_or_create(
        name="Welcome", defaults={"subscription_type": kind}
    )[0]
    version = TemplateVersion.objects.get_or_create(template=template, number=1)[0]
    return Delivery.objects.create(
        version=version,
        contact=contact,
        email=contact.email,
        state=state,
        sent_at=kwargs.pop("sent_at", None) or "2026-01-01T10:00:00Z",
        **kwargs,
    )


DIAGNOSTIC = {"5": "550 5.1.1 user unknown", "4": "452 4.2.2 mailbox full"}


def dsn(recipient: str, status: str, action: str = "failed") -> bytes:
    """A bounce message as RFC 3464 says a mail server writes one."""
    return (
        "From: MAILER-DAEMON@mx.example.net\r\n"
        "To: whoever@localhost\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b1"\r\n'
        "\r\n"
        "--b1\r\n"
        "Content-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "--b1\r\n"
        "Content-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {action}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {DIAGNOSTIC[status[0]]}\r\n"
        "--b1--\r\n"
    ).encode()


def complaint(recipient: str) -> bytes:
    return (
        "From: feedback@isp.example\r\n"
        "Subject: complaint\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="b2"\r\n\r\n'
        "--b2\r\nContent-Type: text/plain\r\n\r\nA spam complaint.\r\n"
        "--b2\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: isp/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\n"
        "--b2--\r\n"
    ).encode()


# -- the rules ----------------------------------------------------------------------------------


def test_a_hard_bounce_suppresses_the_address_and_marks_the_delivery() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)

    outcome = bounces.record_bounce(delivery.pk, "hard", "550 user unknown")

    assert outcome.suppressed
    assert Suppression.objects.get(email=contact.email).reason == "hard_bounce"
    delivery.refresh_from_db()
    assert delivery.state == "bounced" and delivery.bounced_at is not None


@override_settings(EMBUDO_SOFT_BOUNCE_LIMIT=3)
def test_soft_bounces_suppress_only_after_the_limit_in_a_row() -> None:
    contact = make_contact()
    first, second, _through, third, fourth, fifth = (make_delivery(contact) for _ in range(6))

    for delivery in (first, second, third, fourth):
        bounces.record_bounce(delivery.pk, "soft", "mailbox full")
    # `_through` got through: four soft bounces, but not three of the latest in a row.
    assert not Suppression.objects.exists()

    outcome = bounces.record_bounce(fifth.pk, "soft", "mailbox full")

    assert outcome.suppressed
    assert Suppression.objects.get(email=contact.email).reason == "soft_bounces"


def test_the_same_bounce_twice_is_recorded_once() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)

    bounces.record_bounce(delivery.pk, "soft")
    again = bounces.record_bounce(delivery.pk, "soft")

    assert again.duplicate
    assert Bounce.objects.count() == 1


def test_a_complaint_suppresses_and_unsubscribes_from_all() -> None:
    contact = make_contact()
    kind = consent.create_subscription_type({"name": "Offers"})
    consent.subscribe(contact, kind, source="import")
    delivery = make_delivery(contact)

    bounces.record_bounce(delivery.pk, "complaint", "abuse report")

    assert Suppression.objects.get(email=contact.email).reason == "complaint"
    record = ConsentRecord.objects.get(contact=contact, action="unsubscribe")
    assert (record.source, record.subscription_type) == ("complaint", None)
    assert mailable([contact.pk], kind).refused == {contact.pk: "unsubscribed"}
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


def test_a_bounce_for_an_unknown_delivery_or_kind_is_refused() -> None:
    with pytest.raises(bounces.BounceError, match="no delivery with id 424242"):
        bounces.record_bounce(424242, "hard")
    with pytest.raises(bounces.BounceError, match="not a bounce kind"):
        bounces.record_bounce("a@example.com", "bouncy")
    assert not Bounce.objects.exists()


# -- DSNs -----------------------------------------------------------------------------------------


def test_a_dsn_is_read_with_its_kind_and_status() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)
    path = links.return_path(delivery.pk)

    (hard,) = bounces.read_bounce_message(dsn(contact.email, "5.1.1"), [path])
    (soft,) = bounces.read_bounce_message(dsn(contact.email, "4.2.2", "delayed"), [path])
    (spam,) = bounces.read_bounce_message(complaint(contact.email), [path])

    assert (hard.delivery_id, hard.kind) == (delivery.pk, "hard")
    assert "5.1.1" in hard.detail
    assert soft.kind == "soft"
    assert spam.kind == "complaint"


def test_a_dsn_to_a_forged_return_path_or_for_an_unknown_delivery_records_nothing() -> None:
    contact = make_contact()
    forged = f"bounces+1-abcdef123456@{'localhost'}"

    assert bounces.read_bounce_message(dsn(contact.email, "5.1.1"), [forged]) == []
    assert (
        bounces.process_bounce_message(dsn(contact.email, "5.1.1"), [links.return_path(999)]) == []
    )
    assert not Bounce.objects.exists() and not Suppression.objects.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.django_db(transaction=True)
def test_mail_in_receives_a_bounce_over_smtp_and_suppresses_the_address() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)
    port = _free_port()
    server = mailin.controller("127.0.0.1", port)
    server.start()
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
            smtp.sendmail("", [links.return_path(delivery.pk)], dsn(contact.email, "5.1.1"))
            # Anyone else's address is refused: no open relay, no forged bounces.
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                smtp.sendmail("", ["someone@example.com"], dsn(contact.email, "5.1.1"))
    finally:
        server.stop()

    assert Suppression.objects.get(email=contact.email).reason == "hard_bounce"
    delivery.refresh_from_db()
    assert delivery.state == "bounced"


# -- provider webhooks ------------------------------------------------------------------------


def test_an_anymail_bounce_event_finds_the_delivery_by_its_metadata() -> None:
    from anymail.signals import AnymailTrackingEvent, tracking

    contact = make_contact()
    delivery = make_delivery(contact)
    event = AnymailTrackingEvent(
        event_type="bounced",
        recipient=contact.email,
        metadata={"embudo_delivery": str(delivery.pk)},
        description="Mailbox does not exist",
    )

    tracking.send(sender=object, event=event, esp_name="Postmark")

    assert Suppression.objects.get(email=contact.email).reason == "hard_bounce"
    assert Bounce.objects.get().delivery == delivery


def test_an_anymail_complaint_with_only_an_address_unsubscribes_the_contact() -> None:
    from anymail.signals import AnymailTrackingEvent, tracking

    contact = make_contact()
    event = AnymailTrackingEvent(event_type="complained", recipient=contact.email.upper())

    tracking.send(sender=object, event=event, esp_name="SendGrid")

    assert Suppression.objects.get(email=contact.email).reason == "complaint"
    assert ConsentRecord.objects.filter(contact=contact, source="complaint").exists()


# A URL configuration with the provider webhooks mounted, as EMBUDO_ANYMAIL_WEBHOOK_SECRET does.
urlpatterns = [
    path("anymail/", include("anymail.urls")),
    path("", include("embudo.urls")),
]


@pytest.mark.urls("tests.test_email_bounces")
@override_settings(ANYMAIL={"WEBHOOK_SECRET": "embudo:s3cret"})
def test_a_providers_bounce_webhook_suppresses_the_address_over_http() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)
    event = {
        "RecordType": "Bounce",
        "Type": "HardBounce",
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
        "Email": contact.email,
        "Description": "The server was unable to deliver your message",
        "Metadata": {"embudo_delivery": str(delivery.pk)},
        "BouncedAt": "2026-12-06T10:00:00Z",
    }
    url = "/anymail/postmark/tracking/"
    auth = "Basic " + base64.b64encode(b"embudo:s3cret").decode()

    forged = Client().post(url, event, content_type="application/json")
    response = Client().post(url, event, content_type="application/json", HTTP_AUTHORIZATION=auth)

    assert forged.status_code in (400, 401, 403)
    assert response.status_code == 200
    assert Suppression.objects.get(email=contact.email).reason == "hard_bounce"
    assert Bounce.objects.get().delivery == delivery


def test_a_webhook_secret_without_a_password_is_a_clear_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from embudo import config

    monkeypatch.setenv("EMBUDO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("EMBUDO_ANYMAIL_WEBHOOK_SECRET", "justaword")
    with pytest.raises(config.ConfigError, match="EMBUDO_ANYMAIL_WEBHOOK_SECRET must be"):
        config.load()


def test_mail_in_refuses_a_port_out_of_range() -> None:
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="not a port number"):
        call_command("mail-in", "--port", "70000")


def test_a_dsn_with_a_nul_byte_is_recorded_and_a_malformed_message_reports_nothing() -> None:
    contact = make_contact()
    delivery = make_delivery(contact)
    path = links.return_path(delivery.pk)
    with_nul = dsn(contact.email, "5.1.1").replace(b"user unknown", b"user\x00unknown")

    outcomes = bounces.process_bounce_message(with_nul, [path])
    garbage = bounces.process_bounce_message(b"\x00\xff not a message", [path])

    assert [o.kind for o in outcomes] == ["hard"]
    assert Bounce.objects.get().detail == "5.1.1 smtp; 550 5.1.1 userunknown"
    assert Suppression.objects.get(email=contact.email).reason == "hard_bounce"
    assert garbage == []
