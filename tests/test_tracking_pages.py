"""The capture pages: Sources by channel and campaign, settings for keys, forms and rules."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client

from embudo.tracking.actions import create_form, record_events
from embudo.tracking.models import ChannelRule, Form, SiteKey
from tests.factories import make_contact

pytestmark = pytest.mark.django_db


def visits() -> None:
    now = dt.datetime.now(dt.UTC)
    contact = make_contact()
    record_events(
        [
            {
                "type": "page_view",
                "contact_id": contact.pk,
                "utm_source": "google",
                "utm_medium": "cpc",
                "utm_campaign": "spring-sale",
                "occurred_at": (now - dt.timedelta(days=2)).isoformat(),
            },
            {
                "type": "page_view",
                "visitor_id": "anon1",
                "referrer": "https://www.bing.com/",
                "url": "https://acme.test/",
                "occurred_at": (now - dt.timedelta(days=3)).isoformat(),
            },
            {
                "type": "page_view",
                "visitor_id": "anon2",
                "utm_source": "newsletter",
                "utm_medium": "email",
                "occurred_at": (now - dt.timedelta(days=200)).isoformat(),
            },
        ],
        source="api",
    )


def test_sources_page_counts_touchpoints_by_channel_and_campaign(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")
    visits()

    page = client.get("/sources/?period=30")

    assert page.status_code == 200
    rows = {row.channel: row for row in page.context["report"].channels}
    assert (rows["paid_search"].touchpoints, rows["paid_search"].contacts) == (1, 1)
    assert rows["paid_search"].new_contacts == 1
    assert (rows["organic_search"].touchpoints, rows["organic_search"].visitors) == (1, 1)
    assert rows["email"].touchpoints == 0  # 200 days ago: outside the period
    assert [c.name for c in page.context["report"].campaigns] == ["spring-sale"]
    assert "spring-sale" in page.content.decode()

    year = client.get("/sources/?period=365")
    assert {r.channel: r.touchpoints for r in year.context["report"].channels}["email"] == 1


def test_sources_custom_dates(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    visits()
    today = dt.date.today()

    page = client.get(f"/sources/?from={today - dt.timedelta(days=2)}&to={today}")

    rows = {row.channel: row.touchpoints for row in page.context["report"].channels}
    assert rows["paid_search"] == 1 and rows["organic_search"] == 0


def test_sales_reps_cannot_open_capture_settings(client: Client, logged_in: Any) -> None:
    logged_in("sales")

    assert client.get("/settings/capture/").status_code == 403
    assert client.get("/sources/").status_code == 403


def test_marketing_creates_a_site_key_and_sees_the_snippet(client: Client, logged_in: Any) -> None:
    logged_in("marketing")

    client.post(
        "/settings/capture/keys/", {"name": "Main site", "allowed_origins": "https://www.acme.test"}
    )

    key = SiteKey.objects.get()
    page = client.get("/settings/capture/")
    assert f'data-site-key="{key.key}"' in page.content.decode().replace("&quot;", '"')


def test_marketing_builds_a_form_and_gets_its_embed_code(client: Client, logged_in: Any) -> None:
    logged_in("marketing")

    response = client.post(
        "/settings/capture/forms/new/",
        {
            "name": "Newsletter",
            "fields": (
                "email, Email, email, required, email\nfirst_name, First name, text, , first_name"
            ),
            "consent_text": "Send me the newsletter",
            "allowed_origins": "https://www.acme.test",
        },
    )

    form = Form.objects.get()
    assert response.status_code == 302
    assert [f["name"] for f in form.fields] == ["email", "first_name"]
    page = client.get(f"/settings/capture/forms/{form.pk}/")
    embed = page.context["embed_code"]
    assert f"/f/{form.slug}" in embed and 'name="_hp"' in embed and 'name="_consent"' in embed


def test_form_editor_reports_a_bad_field(client: Client, logged_in: Any) -> None:
    logged_in("marketing")

    page = client.post(
        "/settings/capture/forms/new/", {"name": "Bad", "fields": "email, Email, colour"}
    )

    assert page.status_code == 200
    assert "is not one of" in page.content.decode()
    assert Form.objects.count() == 0


def test_channel_rules_page_saves_the_table(client: Client, logged_in: Any) -> None:
    logged_in("admin")

    client.post(
        "/settings/capture/channels/",
        {
            "channel": ["email", "other", ""],
            "source_pattern": ["", "", ""],
            "medium_pattern": ["^mail$", "", ""],
            "campaign_pattern": ["", "", ""],
            "note": ["mail", "rest", ""],
        },
    )

    assert list(ChannelRule.objects.values_list("channel", "medium_pattern")) == [
        ("email", "^mail$"),
        ("other", ""),
    ]


def test_contact_page_timeline_shows_events(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    contact = make_contact()
    create_form({"name": "x", "fields": [{"name": "email", "maps_to": "email"}]})
    record_events(
        [{"type": "page_view", "contact_id": contact.pk, "properties": {"title": "Pricing page"}}],
        source="api",
    )

    page = client.get(f"/contacts/{contact.pk}/")

    assert page.status_code == 200
    assert "Pricing page" in page.content.decode()


def test_admin_lists_events_read_only(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    visits()

    listing = client.get("/admin/tracking/event/")

    assert listing.status_code == 200
    assert "page_view" in listing.content.decode()
    assert client.get("/admin/tracking/event/add/").status_code == 403
