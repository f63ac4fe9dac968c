"""Consent pages in headless Chromium: a Spanish-speaking contact changes their preferences;
marketing takes an address off the suppression list after confirming."""

from __future__ import annotations

import re
from typing import Any

import pytest

from embudo.automation import consent, links
from embudo.automation.models import Subscription, Suppression
from embudo.crm.models import Contact
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_contact_changes_their_preferences_in_their_own_language(
    live_server: Any, page: Any
) -> None:
    contact = make_contact()
    Contact.objects.filter(pk=contact.pk).update(language="es")
    news = consent.create_subscription_type({"name": "News", "name_es": "Novedades"})
    events = consent.create_subscription_type({"name": "Events", "name_es": "Eventos"})
    consent.subscribe(contact, news, source="import")

    page.goto(live_server.url + links.preferences_path(contact.pk))

    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_role("heading").inner_text() == "Tus preferencias de correo"
    assert page.get_by_label("Novedades").is_checked()
    page.get_by_label("Novedades").uncheck()
    page.get_by_label("Eventos").check()
    page.get_by_role("button", name="Guardar mis preferencias").click()

    assert page.get_by_test_id("saved").inner_text() == "Tus preferencias se han guardado."
    states = dict(
        Subscription.objects.filter(contact=contact).values_list("subscription_type", "status")
    )
    assert states == {news.pk: "unsubscribed", events.pk: "subscribed"}


def test_marketing_removes_a_suppressed_address_after_confirming(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    consent.suppress("ana@example.com", "hard_bounce", detail="550 user unknown")
    browser_login(make_user("marketing"))

    page.goto(f"{live_server.url}/email/suppressions/")
    table = page.get_by_test_id("suppressions")
    assert "ana@example.com" in table.inner_text() and "Hard bounce" in table.inner_text()
    table.get_by_role("link", name="Remove").click()
    assert Suppression.objects.filter(email="ana@example.com").exists()
    page.get_by_role("button", name="Remove it").click()

    page.wait_for_url(re.compile(r"/email/suppressions/$"))
    assert "may be mailed again" in page.locator(".messages").inner_text()
    assert not Suppression.objects.exists()
