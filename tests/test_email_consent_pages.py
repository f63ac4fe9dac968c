"""The consent pages: what a contact opens from a message (one-click unsubscribe, preferences,
confirmation) and what users open (subscription types, suppressions, a contact's card)."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from embudo.automation import consent, links
from embudo.automation.models import (
    ConsentRecord,
    Delivery,
    Subscription,
    SubscriptionType,
    Suppression,
)
from embudo.crm.models import Contact
from tests.factories import make_contact
from tests.test_email_bounces import make_delivery

pytestmark = pytest.mark.django_db


def spanish(contact: Contact) -> Contact:
    Contact.objects.filter(pk=contact.pk).update(language="es")
    contact.refresh_from_db()
    return contact


def subscribed_delivery(**kwargs: Any) -> Delivery:
    contact = make_contact(**kwargs)
    delivery = make_delivery(contact)
    consent.subscribe(contact, delivery.version.template.subscription_type, source="import")
    return delivery


def state(delivery: Delivery) -> str:
    return Subscription.objects.get(
        contact=delivery.contact, subscription_type=delivery.version.template.subscription_type
    ).status


# -- one-click unsubscribe ----------------------------------------------------------------------


def test_a_one_click_post_unsubscribes_without_a_page_or_a_session() -> None:
    delivery = subscribed_delivery()
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        links.unsubscribe_path(delivery.pk),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
        REMOTE_ADDR="203.0.113.9",
    )

    assert response.status_code == 200
    assert state(delivery) == "unsubscribed"
    record = ConsentRecord.objects.get(action="unsubscribe")
    assert (record.source, record.ip_address, record.detail) == (
        "one_click",
        "203.0.113.9",
        {"delivery": delivery.pk},
    )
    delivery.refresh_from_db()
    assert delivery.unsubscribed_at is not None


def test_a_second_one_click_post_is_answered_the_same_and_writes_nothing() -> None:
    delivery = subscribed_delivery()
    path = links.unsubscribe_path(delivery.pk)
    body = {"List-Unsubscribe": "One-Click"}

    first = Client().post(path, body)
    second = Client().post(path, body)

    assert first.status_code == second.status_code == 200
    assert ConsentRecord.objects.filter(action="unsubscribe").count() == 1


def test_opening_the_unsubscribe_link_asks_first_in_the_contacts_language() -> None:
    delivery = subscribed_delivery()
    spanish(delivery.contact)
    SubscriptionType.objects.filter(pk=delivery.version.template.subscription_type_id).update(
        name_es="Noticias"
    )

    page = Client().get(links.unsubscribe_path(delivery.pk))

    assert page.status_code == 200
    assert page["Content-Language"] == "es"
    text = page.content.decode()
    assert "Darme de baja de Noticias" in text
    assert state(delivery) == "subscribed"

    done = Client().post(links.unsubscribe_path(delivery.pk), {"scope": "type"})

    assert "Ya no recibirás Noticias" in done.content.decode()
    assert state(delivery) == "unsubscribed"
    assert ConsentRecord.objects.get(action="unsubscribe").source == "preferences"


def test_unsubscribing_from_all_from_the_page_suppresses_the_address() -> None:
    delivery = subscribed_delivery()

    Client().post(links.unsubscribe_path(delivery.pk), {"scope": "all"})

    assert Suppression.objects.get(email=delivery.email).reason == "unsubscribed"


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_forged_unsubscribe_link_changes_nothing(method: str) -> None:
    delivery = subscribed_delivery()
    other = links.unsubscribe_path(delivery.pk + 1).rstrip("/").rsplit("/", 1)[1]
    forged = reverse("automation:unsubscribe", args=[delivery.pk, other])

    response = getattr(Client(), method)(forged, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 404
    assert "does not work" in response.content.decode()
    assert state(delivery) == "subscribed"


# -- the preference page --------------------------------------------------------------------------


def test_the_preference_page_changes_each_type_and_records_it() -> None:
    contact = spanish(make_contact())
    news = consent.create_subscription_type({"name": "News", "name_es": "Novedades"})
    events = consent.create_subscription_type({"name": "Events", "name_es": "Eventos"})
    consent.subscribe(contact, news, source="import")
    path = links.preferences_path(contact.pk)

    page = Client().get(path)
    assert "Tus preferencias de correo" in page.content.decode()
    assert "Novedades" in page.content.decode() and "Eventos" in page.content.decode()

    Client().post(path, {"action": "save", "subscription_type": [str(events.pk)]})

    states = dict(
        Subscription.objects.filter(contact=contact).values_list("subscription_type", "status")
    )
    assert states == {news.pk: "unsubscribed", events.pk: "subscribed"}
    assert set(
        ConsentRecord.objects.filter(source="preferences").values_list("action", flat=True)
    ) == {"subscribe", "unsubscribe"}


def test_the_preference_page_unsubscribes_from_all_and_lets_the_contact_come_back() -> None:
    contact = make_contact()
    news = consent.create_subscription_type({"name": "News"})
    consent.subscribe(contact, news, source="import")
    path = links.preferences_path(contact.pk)

    after = Client().post(path, {"action": "unsubscribe_all"})
    assert 'data-testid="all-off"' in after.content.decode()
    assert Suppression.objects.filter(email=contact.email, reason="unsubscribed").exists()

    Client().post(path, {"action": "save", "subscription_type": [str(news.pk)]})
    assert not Suppression.objects.filter(email=contact.email).exists()
    assert Subscription.objects.get(contact=contact).status == "subscribed"


def test_a_forged_preference_link_is_refused() -> None:
    contact = make_contact()
    response = Client().get(reverse("automation:preferences", args=[contact.pk, "forged"]))
    assert response.status_code == 404


# -- double opt-in confirmation ---------------------------------------------------------------


def test_the_confirmation_page_confirms_and_then_says_so_again() -> None:
    contact = make_contact()
    kind = consent.create_subscription_type({"name": "News", "double_opt_in": True})
    consent.subscribe(contact, kind, source="form")
    path = links.confirm_path(contact.pk, kind.pk)

    first = Client().get(path)
    second = Client().get(path)

    assert first.status_code == second.status_code == 200
    assert "Subscription confirmed" in first.content.decode()
    assert Subscription.objects.get(contact=contact).status == "subscribed"
    assert ConsentRecord.objects.filter(action="confirm").count() == 1


def test_a_forged_confirmation_link_is_refused() -> None:
    response = Client().get(reverse("automation:confirm", args=["1.1:forged:token"]))
    assert response.status_code == 404
    assert not Subscription.objects.exists()


def test_a_confirmation_after_the_contact_left_is_refused_with_a_reason() -> None:
    contact = make_contact()
    kind = consent.create_subscription_type({"name": "News", "double_opt_in": True})
    consent.subscribe(contact, kind, source="form")
    consent.unsubscribe(contact, kind, source="manual")

    response = Client().get(links.confirm_path(contact.pk, kind.pk))

    assert response.status_code == 409
    assert "cancelled" in response.content.decode()


# -- users' pages -------------------------------------------------------------------------------


def test_marketing_creates_a_subscription_type_and_a_bad_one_is_explained(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")
    url = reverse("automation:subscription_types")

    bad = client.post(url, {"name": "", "name_es": "Boletín"})
    good = client.post(
        url, {"name": "Newsletter", "name_es": "Boletín", "opt_in_required": "on"}, follow=True
    )

    assert bad.status_code == 422 and "needs a name" in bad.content.decode()
    assert "Newsletter" in good.content.decode()
    created = SubscriptionType.objects.get()
    assert (created.key, created.name_es, created.opt_in_required) == (
        "newsletter",
        "Boletín",
        True,
    )


def test_archiving_a_type_stops_offering_it(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    kind = consent.create_subscription_type({"name": "Events"})

    client.post(reverse("automation:subscription_type", args=[kind.pk]), {"archive": "1"})

    kind.refresh_from_db()
    assert not kind.active


def test_sales_may_not_open_the_suppression_list(client: Client, logged_in: Any) -> None:
    logged_in("sales")
    assert client.get(reverse("automation:suppressions")).status_code == 403


def test_the_suppression_list_adds_searches_and_removes_after_confirmation(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")
    url = reverse("automation:suppressions")

    client.post(url, {"email": "Ana@Example.com", "detail": "asked by phone"})
    client.post(url, {"email": "bob@example.com"})
    bad = client.post(url, {"email": "not-an-address"})
    found = client.get(url, {"q": "ana"})

    assert bad.status_code == 422 and "not a valid e-mail address" in bad.content.decode()
    assert "ana@example.com" in found.content.decode()
    assert "bob@example.com" not in found.content.decode()

    row = Suppression.objects.get(email="ana@example.com")
    remove = reverse("automation:suppression_remove", args=[row.pk])
    ask = client.get(remove)
    assert ask.status_code == 200 and Suppression.objects.filter(pk=row.pk).exists()
    client.post(remove)
    assert not Suppression.objects.filter(pk=row.pk).exists()


def test_the_contact_page_shows_and_changes_subscriptions_in_the_ledger(
    client: Client, logged_in: Any
) -> None:
    user = logged_in("sales_manager")
    contact = make_contact()
    news = consent.create_subscription_type({"name": "News"})
    consent.create_subscription_type({"name": "Events"})

    client.post(
        reverse("automation:contact_subscriptions", args=[contact.pk]),
        {"subscription_type": [str(news.pk)], "note": "Asked at the fair"},
    )
    page = client.get(reverse("crm:contact", args=[contact.pk]))

    record = ConsentRecord.objects.get(contact=contact)
    assert (record.source, record.actor, record.text) == ("manual", user, "Asked at the fair")
    text = page.content.decode()
    assert 'data-testid="ledger"' in text and "Asked at the fair" in text
    assert Subscription.objects.get(contact=contact).subscription_type == news


def test_a_spanish_page_names_subscription_types_in_spanish(client: Client, logged_in: Any) -> None:
    logged_in("marketing")
    contact = make_contact()
    news = consent.create_subscription_type({"name": "Newsletter", "name_es": "Boletín"})
    consent.subscribe(contact, news, source="manual")
    client.cookies["django_language"] = "es"

    page = client.get(reverse("crm:contact", args=[contact.pk])).content.decode()
    listing = client.get(reverse("automation:subscription_type", args=[news.pk])).content.decode()

    assert "Boletín" in page and "Newsletter" not in page
    assert "<h1>Boletín</h1>" in listing


# -- a form's consent box ---------------------------------------------------------------------


def test_a_forms_ticked_consent_box_subscribes_with_the_words_shown(
    client: Client, logged_in: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.core import mail

    from embudo.tracking.actions import create_form

    form = create_form(
        {
            "name": "Newsletter signup",
            "fields": [{"name": "email", "type": "email", "required": True, "maps_to": "email"}],
            "consent_text": "Send me the monthly newsletter",
            "allowed_origins": ["https://www.acme.test"],
        }
    )
    news = consent.create_subscription_type({"name": "News", "double_opt_in": True})
    logged_in("marketing")
    client.post(
        reverse("automation:subscription_type", args=[news.pk]),
        {"name": "News", "opt_in_required": "on", "double_opt_in": "on", "forms": [form.pk]},
    )
    client.logout()

    with django_capture_on_commit_callbacks(execute=True):
        for data in ({"email": "new@example.com", "_consent": "yes"}, {"email": "q@example.com"}):
            Client().post(f"/f/{form.slug}", data, HTTP_ORIGIN="https://www.acme.test")

    record = ConsentRecord.objects.get()
    assert (record.email, record.source, record.action, record.text) == (
        "new@example.com",
        "form",
        "request",
        "Send me the monthly newsletter",
    )
    assert Subscription.objects.get().status == "pending"
    assert [m.to for m in mail.outbox] == [["new@example.com"]]


def test_the_preference_page_of_a_contact_without_an_address_explains_and_writes_nothing() -> None:
    contact = make_contact(email=None)
    news = consent.create_subscription_type({"name": "News"})

    response = Client().post(
        links.preferences_path(contact.pk), {"action": "save", "subscription_type": [news.pk]}
    )

    assert response.status_code == 200
    assert "no e-mail address" in response.content.decode()
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()


def test_a_sales_manager_reads_the_types_but_may_not_create_one(
    client: Client, logged_in: Any
) -> None:
    logged_in("sales_manager")
    url = reverse("automation:subscription_types")

    assert client.get(url).status_code == 200
    assert client.post(url, {"name": "Sneaky"}).status_code == 403
    assert not SubscriptionType.objects.exists()


def test_a_search_with_a_nul_byte_finds_nothing_and_a_non_ascii_digit_is_no_form_id(
    client: Client, logged_in: Any
) -> None:
    logged_in("admin")
    consent.suppress("ana@example.com", "manual")
    kind = consent.create_subscription_type({"name": "Events"})

    found = client.get(reverse("automation:suppressions"), {"q": "ana\x00"})
    saved = client.post(
        reverse("automation:subscription_type", args=[kind.pk]),
        {"name": "Events renamed", "forms": ["²"]},
    )

    assert found.status_code == 200 and "ana@example.com" not in found.content.decode()
    assert saved.status_code == 302
    kind.refresh_from_db()
    assert kind.name == "Events renamed"
