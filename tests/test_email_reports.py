"""The e-mail reports: clicks by link on a send's report (page and API), counted from people's
clicks only; run on SQLite and on PostgreSQL (the send and the link are JSON keys of the click
events)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.automation import engagement, send_reports, sending
from embudo.automation.models import Delivery, DeliveryState, Send
from tests.factories import make_user
from tests.mailroom import make_audience, make_brand, make_template

pytestmark = pytest.mark.django_db

PERSON = engagement.Hit(user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
SCANNER = engagement.Hit(user_agent="Mimecast URL protect")
PRICING = "https://example.com/pricing"
START = "https://example.com/start"


def _delivered(settings: Any, name: str = "Spring news", people: int = 3) -> Send:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_brand()
    send = sending.start_send(
        sending.create_send(
            template=make_template(name), segment=make_audience(people, name=name), actor=None
        ),
        actor=None,
    )
    sending.deliver(send.pk)
    return send


def _click(delivery: Delivery, link: int, url: str, hit: engagement.Hit = PERSON) -> None:
    assert delivery.sent_at is not None
    later = delivery.sent_at + dt.timedelta(minutes=5)
    engagement.record_click(delivery, link, url, hit, now=later)


@pytest.fixture
def clicked(settings: Any) -> Send:
    """Three recipients: all clicked the pricing link (one twice), one the start link, and a
    link scanner 'clicked' the start link in the other two messages."""
    send = _delivered(settings)
    first, second, third = Delivery.objects.filter(send=send, state=DeliveryState.SENT).order_by(
        "id"
    )
    for delivery in (first, second, third):
        _click(delivery, 0, PRICING)
    _click(first, 0, PRICING)  # a second click on the same link is the same event
    _click(first, 1, START)
    _click(second, 1, START, SCANNER)
    _click(third, 1, START, SCANNER)
    return send


def test_clicks_by_link_count_people_not_scanners_most_clickers_first(clicked: Send) -> None:
    rows = send_reports.clicks_by_link(clicked)

    assert rows == [
        send_reports.LinkClicks(link=0, url=PRICING, clicks=3, contacts=3),
        send_reports.LinkClicks(link=1, url=START, clicks=1, contacts=1),
    ]


def test_clicks_of_another_send_of_the_same_template_stay_there(
    settings: Any, clicked: Send
) -> None:
    other = sending.start_send(
        sending.create_send(template=clicked.template, segment=clicked.segment, actor=None),
        actor=None,
    )
    sending.deliver(other.pk)
    _click(Delivery.objects.filter(send=other).order_by("id")[0], 1, START)

    assert [(r.link, r.contacts) for r in send_reports.clicks_by_link(other)] == [(1, 1)]
    assert [(r.link, r.contacts) for r in send_reports.clicks_by_link(clicked)] == [(0, 3), (1, 1)]


def test_clicks_by_link_is_one_query(clicked: Send, django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(1):
        send_reports.clicks_by_link(clicked)


def test_the_send_report_shows_clicks_by_link(client: Client, clicked: Send) -> None:
    client.force_login(make_user("marketing"))

    page = client.get(f"/email/sends/{clicked.pk}/").content.decode()

    table = page.split('data-testid="clicks-by-link"')[1].split("</section>")[0]
    assert table.index(PRICING) < table.index(START)
    assert table.count('data-testid="link-row"') == 2
    assert 'data-testid="link-contacts">3<' in table and 'data-testid="link-clicks">3<' in table
    assert 'data-testid="link-contacts">1<' in table


def test_a_send_nobody_clicked_says_so_in_both_languages(client: Client, settings: Any) -> None:
    send = _delivered(settings)
    client.force_login(make_user("marketing"))

    english = client.get(f"/email/sends/{send.pk}/").content.decode()
    spanish = client.get(f"/email/sends/{send.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert "Nobody has clicked a link of this message yet." in english
    assert "Clicks by link" in english
    assert "Nadie ha hecho clic todavía en un enlace de este mensaje." in spanish
    assert "Clics por enlace" in spanish


def test_the_api_status_of_a_send_has_its_clicks_by_link(client: Client, clicked: Send) -> None:
    secret = create_api_key("tests", ["read"], created_by=make_user("admin")).secret

    status = client.get(f"/api/v1/email/sends/{clicked.pk}", HTTP_AUTHORIZATION=f"Bearer {secret}")
    listed = client.get("/api/v1/email/sends", HTTP_AUTHORIZATION=f"Bearer {secret}")

    assert status.status_code == 200, status.content
    assert status.json()["links"] == [
        {"link": 0, "url": PRICING, "clicks": 3, "contacts": 3},
        {"link": 1, "url": START, "clicks": 1, "contacts": 1},
    ]
    assert json.loads(listed.content)["items"][0]["links"] == []
