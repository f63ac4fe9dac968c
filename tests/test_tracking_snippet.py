"""The public side of the snippet: /t.js, the collect endpoint and the /t.gif pixel."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from embudo.tracking import queries
from embudo.tracking.actions import create_site_key, revoke_site_key
from embudo.tracking.models import Event, SiteKey
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

SITE = "https://www.acme.test"


@pytest.fixture
def site_key() -> SiteKey:
    return create_site_key("Website", [SITE + "/"])


def beacon(client: Client, body: Any, origin: str = SITE) -> Any:
    # sendBeacon posts JSON as text/plain, which needs no CORS preflight.
    return client.post(
        "/t/collect", data=json.dumps(body), content_type="text/plain", HTTP_ORIGIN=origin
    )


def test_snippet_is_small_javascript_that_anyone_may_load(client: Client) -> None:
    response = client.get("/t.js")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/javascript")
    body = response.content.decode()
    assert len(response.content) < 12_000
    for api in ("identify", "track", "consent", "sendBeacon", "doNotTrack"):
        assert api in body


def test_beacon_from_an_allowed_origin_is_stored_for_its_visitor(
    client: Client, site_key: SiteKey
) -> None:
    response = beacon(
        client,
        {
            "site_key": site_key.key,
            "visitor_id": "abc123",
            "events": [
                {"type": "page_view", "url": SITE + "/", "properties": {"title": "Home"}},
                {"type": "video_played", "visitor_id": "someone-else"},
            ],
        },
    )

    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert response["Access-Control-Allow-Origin"] == SITE
    assert set(Event.objects.values_list("visitor_id", "source")) == {("abc123", "snippet")}


def test_beacon_from_another_origin_is_refused(client: Client, site_key: SiteKey) -> None:
    response = beacon(
        client,
        {"site_key": site_key.key, "visitor_id": "v", "events": [{"type": "page_view"}]},
        origin="https://evil.test",
    )

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert Event.objects.count() == 0


def test_unknown_or_revoked_site_key_is_refused(client: Client, site_key: SiteKey) -> None:
    revoke_site_key(site_key)
    queries.forget_site_keys()  # as the settings page does after revoking

    for key in (site_key.key, "pk_made_up"):
        response = beacon(
            client, {"site_key": key, "visitor_id": "v", "events": [{"type": "page_view"}]}
        )
        assert response.status_code == 401
    assert Event.objects.count() == 0


def test_site_key_cannot_name_contacts_by_id(client: Client, site_key: SiteKey) -> None:
    contact = make_contact()

    response = beacon(
        client,
        {
            "site_key": site_key.key,
            "visitor_id": "v",
            "events": [{"type": "page_view", "contact_id": contact.pk}],
        },
    )

    assert response.json()["errors"][0]["reason"] == "unknown field 'contact_id'"
    assert Event.objects.count() == 0


def test_malformed_beacon_is_a_bad_request(client: Client, site_key: SiteKey) -> None:
    response = client.post(
        "/t/collect", data="{not json", content_type="text/plain", HTTP_ORIGIN=SITE
    )

    assert response.status_code == 400


def test_preflight_answers_with_cors_headers(client: Client) -> None:
    response = client.options("/t/collect", HTTP_ORIGIN=SITE)

    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == SITE


def test_signed_pixel_records_an_email_open_on_the_contact(client: Client) -> None:
    contact = make_contact()

    response = client.get(queries.pixel_path(contact.pk, "email_open", email="welcome"))

    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    event = Event.objects.get()
    assert (event.contact_id, event.type, event.source) == (contact.pk, "email_open", "pixel")
    assert event.properties == {"email": "welcome"}


def test_tampered_pixel_token_records_nothing(client: Client) -> None:
    contact = make_contact()
    path = queries.pixel_path(contact.pk)

    response = client.get(path[:-3] + "AAA")

    assert response.status_code == 400
    assert Event.objects.count() == 0


def test_site_key_pixel_for_pages_without_javascript(client: Client, site_key: SiteKey) -> None:
    response = client.get(
        f"/t.gif?k={site_key.key}&v=nojs1&u={SITE}/about", HTTP_REFERER=SITE + "/about"
    )

    assert response.status_code == 200
    assert Event.objects.get().visitor_id == "nojs1"
