"""Consent: subscribing (with double opt-in), unsubscribing, the ledger, the suppression list and
who may be mailed a subscription type's messages."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import freezegun
import pytest
from django.core import mail

from embudo.automation import consent, links
from embudo.automation.mailability import mailable
from embudo.automation.models import (
    ConsentRecord,
    Subscription,
    SubscriptionStatus,
    SubscriptionType,
    Suppression,
)
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def newsletter(**kwargs: Any) -> SubscriptionType:
    data = {"name": "Newsletter", "name_es": "Boletín", **kwargs}
    return consent.create_subscription_type(data)


def spanish(contact: Contact) -> Contact:
    Contact.objects.filter(pk=contact.pk).update(language="es")
    contact.refresh_from_db()
    return contact


def status(contact: Contact, subscription_type: SubscriptionType) -> str | None:
    row = Subscription.objects.filter(contact=contact, subscription_type=subscription_type).first()
    return row.status if row else None


# -- mailability --------------------------------------------------------------------------------


def test_mailable_sorts_every_contact_with_the_first_reason_that_applies() -> None:
    kind = newsletter()
    subscribed = make_contact(email="Yes@Example.com")
    consent.subscribe(subscribed, kind, source="manual")
    no_address = make_contact(email=None)
    never = make_contact()
    left = make_contact()
    consent.subscribe(left, kind, source="manual")
    consent.unsubscribe(left, kind, source="manual")
    bounced = make_contact()
    consent.subscribe(bounced, kind, source="manual")
    consent.suppress(bounced.email, "hard_bounce")
    pending = make_contact()
    consent.create_subscription_type({"name": "Events", "double_opt_in": True})
    Subscription.objects.create(contact=pending, subscription_type=kind, status="pending")
    broken = make_contact()
    Contact.objects.filter(pk=broken.pk).update(email="not an address")
    gone = make_contact()
    consent.subscribe(gone, kind, source="manual")
    consent.unsubscribe(gone, None, source="one_click")

    ids = [c.pk for c in (subscribed, no_address, never, left, bounced, pending, broken, gone)]
    result = mailable(ids, kind)

    assert result.mailable == {subscribed.pk: "yes@example.com"}
    assert result.refused == {
        no_address.pk: "no_address",
        never.pk: "not_subscribed",
        left.pk: "unsubscribed",
        bounced.pk: "suppressed",
        pending.pk: "pending_confirmation",
        broken.pk: "invalid_address",
        gone.pk: "unsubscribed",
    }
    assert result.counts() == {
        "mailable": 1,
        "no_address": 1,
        "invalid_address": 1,
        "unsubscribed": 2,
        "suppressed": 1,
        "pending_confirmation": 1,
        "not_subscribed": 1,
    }


def test_an_opt_out_type_mails_everyone_who_did_not_leave_it() -> None:
    product = consent.create_subscription_type({"name": "Product news", "opt_in_required": False})
    quiet, left = make_contact(), make_contact()
    consent.unsubscribe(left, product, source="preferences")

    result = mailable(Contact.objects.filter(pk__in=[quiet.pk, left.pk]), product)

    assert result.mailable == {quiet.pk: quiet.email}
    assert result.refused == {left.pk: "unsubscribed"}


def test_mailable_reads_a_queryset_and_ids_alike_with_a_bounded_number_of_queries(
    django_assert_max_num_queries: Any,
) -> None:
    kind = newsletter()
    contacts = [make_contact() for _ in range(30)]
    for contact in contacts[::2]:
        consent.subscribe(contact, kind, source="import")

    with django_assert_max_num_queries(2):
        by_query = mailable(Contact.objects.all(), kind)
    by_ids = mailable(iter([c.pk for c in contacts]), kind)

    assert by_query == by_ids
    assert sorted(by_query.mailable) == sorted(c.pk for c in contacts[::2])


# -- subscribing and the ledger -----------------------------------------------------------------


def test_a_manual_subscribe_is_recorded_with_its_user_source_and_text() -> None:
    kind = newsletter(double_opt_in=True)
    user = make_user("marketing")
    contact = make_contact()

    consent.subscribe(contact, kind, source="manual", actor=user, text="Asked on the phone")

    assert status(contact, kind) == SubscriptionStatus.SUBSCRIBED
    record = ConsentRecord.objects.get(contact=contact)
    assert (record.action, record.source, record.actor, record.text, record.email) == (
        "subscribe",
        "manual",
        user,
        "Asked on the phone",
        contact.email,
    )


def test_a_double_opt_in_from_a_form_waits_and_mails_a_confirmation_in_the_contacts_language(
    django_capture_on_commit_callbacks: Any,
) -> None:
    kind = newsletter(double_opt_in=True)
    contact = spanish(make_contact())

    with django_capture_on_commit_callbacks(execute=True):
        consent.subscribe(contact, kind, source="form", text="Quiero el boletín", ip="10.0.0.7")

    assert status(contact, kind) == SubscriptionStatus.PENDING
    assert mailable([contact.pk], kind).refused == {contact.pk: "pending_confirmation"}
    (message,) = mail.outbox
    assert message.to == [contact.email]
    assert "Boletín" in message.subject and "confirma" in message.subject.lower()
    (token,) = re.findall(r"http://127\.0\.0\.1:8000/e/confirm/([^/\s]+)/", message.body)
    assert links.read_confirmation(token) == links.Confirmation(contact.pk, kind.pk)
    record = ConsentRecord.objects.get(contact=contact)
    assert (record.action, record.ip_address, record.text) == (
        "request",
        "10.0.0.7",
        "Quiero el boletín",
    )


def test_confirming_subscribes_once_and_a_second_confirmation_changes_nothing() -> None:
    kind = newsletter(double_opt_in=True)
    contact = make_contact()
    consent.subscribe(contact, kind, source="api")
    token = links.confirm_path(contact.pk, kind.pk).rstrip("/").rsplit("/", 1)[1]

    consent.confirm(token, ip="10.0.0.8")
    consent.confirm(token, ip="10.0.0.8")

    assert status(contact, kind) == SubscriptionStatus.SUBSCRIBED
    assert list(ConsentRecord.objects.filter(contact=contact).values_list("action", "source")) == [
        ("request", "api"),
        ("confirm", "double_opt_in"),
    ]
    assert mailable([contact.pk], kind).mailable == {contact.pk: contact.email}


def test_an_expired_confirmation_is_refused_and_leaves_the_subscription_pending() -> None:
    kind = newsletter(double_opt_in=True)
    contact = make_contact()
    with freezegun.freeze_time("2026-01-01"):
        consent.subscribe(contact, kind, source="form")
        token = links.confirm_path(contact.pk, kind.pk).rstrip("/").rsplit("/", 1)[1]

    with freezegun.freeze_time("2026-01-01") as frozen:
        frozen.tick(dt.timedelta(days=links.CONFIRM_MAX_AGE_DAYS, seconds=1))
        with pytest.raises(links.BadLink):
            consent.confirm(token)

    assert status(contact, kind) == SubscriptionStatus.PENDING


def test_a_second_unsubscribe_is_idempotent() -> None:
    kind = newsletter()
    contact = make_contact()
    consent.subscribe(contact, kind, source="import")

    first = consent.unsubscribe(contact, kind, source="preferences")
    second = consent.unsubscribe(contact, kind, source="preferences")

    assert (first, second) == (True, False)
    assert ConsentRecord.objects.filter(contact=contact, action="unsubscribe").count() == 1


def test_unsubscribing_from_all_suppresses_the_address_and_resubscribing_lifts_only_that() -> None:
    kind = newsletter()
    later = consent.create_subscription_type({"name": "Webinars", "opt_in_required": False})
    contact = make_contact()
    consent.subscribe(contact, kind, source="import")

    consent.unsubscribe(contact, None, source="one_click")

    assert Suppression.objects.get(email=contact.email).reason == "unsubscribed"
    assert status(contact, later) == SubscriptionStatus.UNSUBSCRIBED
    assert mailable([contact.pk], later).refused == {contact.pk: "unsubscribed"}

    assert consent.resubscribe(contact, source="preferences") is True
    assert not Suppression.objects.filter(email=contact.email).exists()
    # Each type it left stays left until the contact chooses it again.
    assert mailable([contact.pk], kind).refused == {contact.pk: "unsubscribed"}
    consent.subscribe(contact, kind, source="preferences")
    assert mailable([contact.pk], kind).mailable == {contact.pk: contact.email}


def test_subscribing_to_an_archived_type_or_with_no_address_is_refused() -> None:
    kind = newsletter()
    consent.archive_subscription_type(kind)
    with pytest.raises(consent.ConsentError, match="archived"):
        consent.subscribe(make_contact(), kind, source="manual")
    with pytest.raises(consent.ConsentError, match="no e-mail address"):
        consent.subscribe(
            make_contact(email=None),
            consent.create_subscription_type({"name": "Other"}),
            source="manual",
        )


def test_set_subscriptions_refuses_an_unknown_type_before_writing_anything() -> None:
    kind = newsletter()
    contact = make_contact()

    with pytest.raises(ValidationFailed) as failed:
        consent.set_subscriptions(contact, {kind.pk: True, 9999: True}, source="manual")

    assert "9999" in str(failed.value)
    assert status(contact, kind) is None
    assert not ConsentRecord.objects.exists()


def test_a_user_cannot_lift_a_contacts_unsubscribe_from_all_but_can_lift_a_bounce() -> None:
    contact = make_contact()
    consent.unsubscribe(contact, None, source="one_click")
    consent.suppress("Bounced@Example.com", "hard_bounce")

    with pytest.raises(consent.ConsentError, match="only the contact"):
        consent.unsuppress(contact.email)
    assert consent.unsuppress("bounced@example.com") is True
    assert list(Suppression.objects.values_list("email", flat=True)) == [contact.email]


def test_a_bad_address_or_reason_is_not_suppressed() -> None:
    with pytest.raises(ValidationFailed, match="not a valid e-mail"):
        consent.suppress("nobody", "manual")
    with pytest.raises(ValidationFailed, match="not a reason"):
        consent.suppress("a@example.com", "because")
    assert not Suppression.objects.exists()


def test_merging_two_contacts_keeps_the_latest_choice_per_type_and_both_ledgers() -> None:
    from embudo.crm.actions import merge_contacts

    kind = newsletter()
    primary, duplicate = make_contact(), make_contact()
    with freezegun.freeze_time("2026-01-01"):
        consent.subscribe(primary, kind, source="import")
    with freezegun.freeze_time("2026-02-01"):
        consent.subscribe(duplicate, kind, source="import")
        consent.unsubscribe(duplicate, kind, source="one_click")

    merge_contacts(primary, duplicate)

    assert status(primary, kind) == SubscriptionStatus.UNSUBSCRIBED
    assert ConsentRecord.objects.filter(contact=primary).count() == 3


def test_the_confirmation_reaches_a_real_mail_server_from_the_brand_sender(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from django.test import override_settings

    from embudo.automation.models import Brand
    from tests.embudo_processes import MailSink

    Brand.objects.update_or_create(
        pk=1, defaults={"from_name": "Acme", "from_email": "news@acme.test"}
    )
    kind = newsletter(double_opt_in=True)
    contact = make_contact()

    with (
        MailSink() as sink,
        override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=sink.port,
        ),
    ):
        with django_capture_on_commit_callbacks(execute=True):
            consent.subscribe(contact, kind, source="form")
        (message,) = sink.wait_for(1)

    assert message["To"] == contact.email
    assert message["From"] == "Acme <news@acme.test>"
    body = message.get_payload(decode=True).decode()
    (token,) = re.findall(r"/e/confirm/([^/\s]+)/", body)
    consent.confirm(token)
    assert status(contact, kind) == SubscriptionStatus.SUBSCRIBED
