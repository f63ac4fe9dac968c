"""Sends: recipients frozen at start, each message handed to a real SMTP server once, retries
with back-off for temporary refusals, permanent ones failed, pause, resume and cancel."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone

from embudo.automation import links, sending
from embudo.automation.models import (
    Delivery,
    DeliveryState,
    SendState,
    Suppression,
    SuppressionReason,
)
from embudo.crm import actions as crm
from embudo.crm.models import TransitionCause
from embudo.segments import actions as segments
from tests.mailroom import CountingSMTP, make_audience, make_brand, make_template

pytestmark = pytest.mark.django_db


def started(count: int = 5, **audience: Any) -> Any:
    make_brand()
    send = sending.create_send(
        template=make_template(), segment=make_audience(count, **audience), actor=None
    )
    return sending.start_send(send, actor=None)


def states(send: Any) -> dict[str, int]:
    rows = Delivery.objects.filter(send=send).values_list("state", flat=True)
    counted: dict[str, int] = {}
    for state in rows:
        counted[state] = counted.get(state, 0) + 1
    return counted


def test_a_send_mails_every_recipient_once_and_finishes(smtp: CountingSMTP) -> None:
    send = started(7)

    run = sending.deliver(send.pk)

    assert run.outcomes[DeliveryState.SENT] == 7
    assert sorted(smtp.received.values()) == [1] * 7
    send.refresh_from_db()
    assert send.state == SendState.DONE and send.finished_at is not None
    delivery = Delivery.objects.filter(send=send).order_by("id").first()
    assert delivery is not None and delivery.state == DeliveryState.SENT
    assert delivery.message_id.startswith("<") and delivery.sent_at is not None
    message = next(m for m in smtp.messages if m["Message-ID"] == delivery.message_id)
    assert message["Subject"] == f"Hello {delivery.contact.first_name}"
    assert "Acme news" in message["From"]
    mail_from, _to = next(e for e in smtp.envelopes if e[1] == [delivery.email])
    assert mail_from == links.return_path(delivery.pk)
    assert links.read_return_path(mail_from) == delivery.pk


def test_one_connection_carries_the_whole_batch(smtp: CountingSMTP, monkeypatch: Any) -> None:
    send = started(6)
    opened: list[int] = []
    real_open = sending.SmtpBackend.open

    def counting_open(self: Any) -> Any:
        opened.append(1)
        return real_open(self)

    monkeypatch.setattr(sending.SmtpBackend, "open", counting_open)

    sending.deliver(send.pk)

    assert sum(smtp.received.values()) == 6
    assert len(opened) == 1


def test_start_freezes_the_audience_and_skips_refused_contacts_with_their_reason(
    smtp: CountingSMTP,
) -> None:
    make_brand()
    audience = make_audience(3)
    nobody = crm.create_contact({"first_name": "No address"}, cause=TransitionCause.MANUAL)
    blocked = crm.create_contact({"email": "blocked@example.com"}, cause=TransitionCause.MANUAL)
    segments.add_members(audience, [nobody.pk, blocked.pk])
    Suppression.objects.create(email="blocked@example.com", reason="hard_bounce")
    send = sending.create_send(template=make_template(), segment=audience, actor=None)

    send = sending.start_send(send, actor=None)
    later = make_audience(2, name="Later")
    segments.add_members(audience, list(later.members.values_list("contact_id", flat=True)))
    sending.deliver(send.pk)

    assert send.recipients == 3
    skipped = dict(
        Delivery.objects.filter(send=send, state=DeliveryState.SKIPPED).values_list(
            "contact_id", "skip_reason"
        )
    )
    assert skipped == {nobody.pk: "no_address", blocked.pk: "suppressed"}
    assert sum(smtp.received.values()) == 3
    assert "blocked@example.com" not in smtp.received


def test_the_preview_counts_who_would_be_mailed_and_who_skipped(smtp: CountingSMTP) -> None:
    make_brand()
    audience = make_audience(4)
    nobody = crm.create_contact({"first_name": "No address"}, cause=TransitionCause.MANUAL)
    segments.add_members(audience, [nobody.pk])
    send = sending.create_send(template=make_template(), segment=audience, actor=None)

    seen = sending.preview(send)

    assert (seen.total, seen.mailable, seen.skipped) == (5, 4, {"no_address": 1})
    assert Delivery.objects.count() == 0


def test_a_send_that_would_mail_nobody_is_refused_and_writes_nothing() -> None:
    make_brand()
    audience = make_audience(0)
    nobody = crm.create_contact({"first_name": "No address"}, cause=TransitionCause.MANUAL)
    segments.add_members(audience, [nobody.pk])
    send = sending.create_send(template=make_template(), segment=audience, actor=None)

    with pytest.raises(sending.SendError, match=r"would mail nobody.*no e-mail address: 1") as err:
        sending.start_send(send, actor=None)

    assert err.value.code == "no_recipients"
    send.refresh_from_db()
    assert send.state == SendState.DRAFT and Delivery.objects.count() == 0


def test_a_broadcast_is_refused_until_the_brand_has_a_postal_address() -> None:
    make_brand(postal_address="")
    send = sending.create_send(template=make_template(), segment=make_audience(2), actor=None)

    with pytest.raises(sending.SendError, match="postal address") as err:
        sending.start_send(send, actor=None)

    assert err.value.code == "no_postal_address"
    assert Delivery.objects.count() == 0


def test_a_send_starts_once(smtp: CountingSMTP) -> None:
    send = started(2)

    with pytest.raises(sending.SendError, match="only a draft can be started"):
        sending.start_send(send, actor=None)

    assert Delivery.objects.filter(send=send).count() == 2


def test_a_temporary_refusal_is_retried_later_and_then_sent_once(smtp: CountingSMTP) -> None:
    send = started(3)
    first = Delivery.objects.filter(send=send).order_by("id").first()
    assert first is not None
    smtp.answers[first.email] = ["451 4.3.0 Mailbox busy, try later"]

    sending.deliver(send.pk)

    first.refresh_from_db()
    assert first.state == DeliveryState.QUEUED and first.attempts == 1
    assert first.error.startswith("451")
    assert first.retry_at is not None
    wait = (first.retry_at - timezone.now()).total_seconds()
    assert sending.RETRY_BASE_SECONDS - 5 < wait <= sending.RETRY_BASE_SECONDS
    assert smtp.received[first.email] == 0
    send.refresh_from_db()
    assert send.state == SendState.RUNNING

    # Not yet due: a second run leaves it alone.
    sending.deliver(send.pk)
    first.refresh_from_db()
    assert first.state == DeliveryState.QUEUED and first.attempts == 1

    Delivery.objects.filter(pk=first.pk).update(retry_at=timezone.now() - dt.timedelta(seconds=1))
    sending.deliver(send.pk)

    first.refresh_from_db()
    assert first.state == DeliveryState.SENT and first.attempts == 2
    assert smtp.received[first.email] == 1
    send.refresh_from_db()
    assert send.state == SendState.DONE


def test_a_permanent_refusal_fails_the_delivery_without_retrying(smtp: CountingSMTP) -> None:
    send = started(3)
    first = Delivery.objects.filter(send=send).order_by("id").first()
    assert first is not None
    smtp.answers[first.email] = ["550 5.1.1 No such user"]

    sending.deliver(send.pk)
    sending.deliver(send.pk)

    first.refresh_from_db()
    # The server refused the address itself: a hard bounce, and the address is never mailed again.
    assert first.state == DeliveryState.BOUNCED and first.error.startswith("550 5.1.1")
    assert first.attempts == 1 and first.retry_at is None and first.bounced_at is not None
    assert states(send) == {DeliveryState.SENT: 2, DeliveryState.BOUNCED: 1}
    assert Suppression.objects.filter(
        email=first.email.lower(), reason=SuppressionReason.HARD_BOUNCE
    ).exists()
    send.refresh_from_db()
    assert send.state == SendState.DONE


def test_an_unreachable_server_leaves_every_delivery_queued_for_a_retry(settings: Any) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    from tests.embudo_processes import free_port

    settings.EMAIL_PORT = free_port()  # nothing listens there
    send = started(3)

    sending.deliver(send.pk)

    rows = list(Delivery.objects.filter(send=send).values_list("state", "attempts", "error"))
    assert [(state, attempts) for state, attempts, _e in rows] == [(DeliveryState.QUEUED, 1)] * 3
    assert all(error.startswith("cannot reach the mail server") for _s, _a, error in rows)


def test_a_delivery_that_keeps_failing_gives_up_after_the_last_attempt(
    smtp: CountingSMTP,
) -> None:
    send = started(1)
    delivery = Delivery.objects.get(send=send)
    smtp.answers[delivery.email] = ["451 4.3.0 busy"] * (sending.MAX_ATTEMPTS + 1)

    for _attempt in range(sending.MAX_ATTEMPTS):
        Delivery.objects.filter(pk=delivery.pk).update(retry_at=None)
        sending.deliver(send.pk)

    delivery.refresh_from_db()
    assert delivery.state == DeliveryState.FAILED
    assert f"gave up after {sending.MAX_ATTEMPTS} attempts" in delivery.error
    assert smtp.received[delivery.email] == 0


def test_the_per_domain_rate_limit_holds_the_rest_for_the_next_minute(
    smtp: CountingSMTP, settings: Any
) -> None:
    settings.EMBUDO_EMAIL_RATE_PER_DOMAIN = 3
    send = started(8, domains=("busy.test", "busy.test", "busy.test", "quiet.test"))

    sending.deliver(send.pk)

    sent = Delivery.objects.filter(send=send, state=DeliveryState.SENT)
    assert sent.filter(domain="busy.test").count() == 3
    assert sent.filter(domain="quiet.test").count() == 2
    waiting = Delivery.objects.filter(send=send, state=DeliveryState.QUEUED)
    assert waiting.count() == 3 and set(waiting.values_list("domain", flat=True)) == {"busy.test"}
    soonest = min(waiting.values_list("retry_at", flat=True))
    assert timezone.now() + dt.timedelta(seconds=50) < soonest
    assert waiting.filter(attempts=0).count() == 3


def test_pause_stops_the_send_and_resume_finishes_it(smtp: CountingSMTP) -> None:
    send = started(4)

    sending.pause_send(send, actor=None)
    run = sending.deliver(send.pk)

    assert run.stopped == SendState.PAUSED and sum(smtp.received.values()) == 0
    with pytest.raises(sending.SendError, match="cannot be paused"):
        sending.pause_send(send, actor=None)

    sending.resume_send(send, actor=None)
    sending.deliver(send.pk)

    assert sorted(smtp.received.values()) == [1] * 4
    send.refresh_from_db()
    assert send.state == SendState.DONE


def test_cancel_skips_every_queued_delivery(smtp: CountingSMTP) -> None:
    send = started(4)
    first = Delivery.objects.filter(send=send).order_by("id").first()
    assert first is not None
    smtp.answers[first.email] = ["451 4.3.0 busy"]
    sending.deliver(send.pk)  # three sent, one waiting for its retry

    sending.cancel_send(send, actor=None)
    sending.deliver(send.pk)

    assert states(send) == {DeliveryState.SENT: 3, DeliveryState.SKIPPED: 1}
    first.refresh_from_db()
    assert first.skip_reason == "cancelled"
    send.refresh_from_db()
    assert send.state == SendState.CANCELLED and send.finished_at is not None
    with pytest.raises(sending.SendError, match="cannot be resumed"):
        sending.resume_send(send, actor=None)


def test_a_dead_workers_claims_are_recovered_without_sending_twice(smtp: CountingSMTP) -> None:
    send = started(3)
    rows = list(Delivery.objects.filter(send=send).order_by("id"))
    gone = "elsewhere:1:dead"
    long_ago = timezone.now() - dt.timedelta(seconds=sending.LEASE_SECONDS + 1)
    Delivery.objects.filter(pk=rows[0].pk).update(
        state=DeliveryState.CLAIMED, claim=gone, claimed_at=long_ago
    )
    Delivery.objects.filter(pk=rows[1].pk).update(
        state=DeliveryState.SENDING, claim=gone, claimed_at=long_ago
    )

    recovered = sending.recover()
    sending.deliver(send.pk)

    assert (recovered.requeued, recovered.counted_sent) == (1, 1)
    assert smtp.received[rows[0].email] == 1
    assert smtp.received[rows[1].email] == 0  # the dead worker may have handed it over
    assert smtp.received[rows[2].email] == 1
    assert states(send) == {DeliveryState.SENT: 3}


def test_a_live_workers_fresh_claim_is_left_alone(smtp: CountingSMTP) -> None:
    send = started(1)
    Delivery.objects.filter(send=send).update(
        state=DeliveryState.CLAIMED, claim="elsewhere:1:alive", claimed_at=timezone.now()
    )

    assert sending.recover().requeued == 0


def test_without_an_smtp_backend_messages_go_through_the_configured_backend(
    settings: Any,
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    send = started(3)

    sending.deliver(send.pk)

    assert len(mail.outbox) == 3
    assert {m.to[0] for m in mail.outbox} == set(
        Delivery.objects.filter(send=send).values_list("email", flat=True)
    )
    assert states(send) == {DeliveryState.SENT: 3}


def test_a_batch_interrupted_by_an_error_goes_back_to_the_queue_at_once(
    smtp: CountingSMTP, monkeypatch: Any
) -> None:
    send = started(4)
    real = sending.Courier.deliver
    calls: list[int] = []

    def failing(self: Any, delivery: Any) -> str:
        calls.append(delivery.pk)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        return real(self, delivery)

    monkeypatch.setattr(sending.Courier, "deliver", failing)

    with pytest.raises(RuntimeError):
        sending.deliver(send.pk)

    assert states(send) == {DeliveryState.SENT: 1, DeliveryState.QUEUED: 3}
    monkeypatch.setattr(sending.Courier, "deliver", real)
    sending.deliver(send.pk)
    assert sorted(smtp.received.values()) == [1] * 4


def test_skip_reasons_read_in_the_language_of_the_page() -> None:
    from django.utils import translation

    with translation.override("es"):
        assert sending.skip_reason_label("not_subscribed") == "no suscrito"
    with translation.override("en"):
        assert sending.skip_reason_label("not_subscribed") == "not subscribed"
