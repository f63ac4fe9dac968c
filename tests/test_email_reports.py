"""The e-mail reports: clicks by link on a send's report (page and API), counted from people's
clicks only; a template's results across its sends (page and API). Run on SQLite and on
PostgreSQL (the send and the link are JSON keys of the click events)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.automation import bounces, consent, engagement, send_reports, sending
from embudo.automation.models import ConsentSource, Delivery, DeliveryState, Send
from embudo.crm import actions as crm
from embudo.crm.models import LifecycleStage, TransitionCause
from tests.factories import make_user
from tests.journeys import Deal, Touch, journey, person
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


def _sent(send: Send) -> list[Delivery]:
    return list(
        Delivery.objects.filter(send=send, state=DeliveryState.SENT)
        .select_related("contact")
        .order_by("id")
    )


def _becomes(delivery: Delivery, stage: str, days: int) -> None:
    assert delivery.contact is not None and delivery.sent_at is not None
    crm.set_lifecycle_stage(
        delivery.contact,
        stage,
        cause=TransitionCause.MANUAL,
        at=delivery.sent_at + dt.timedelta(days=days),
    )


@pytest.fixture
def two_sends(settings: Any) -> Send:
    """Two sends of "Spring news" (3 and 2 recipients) and one of another template: in the
    first, one recipient clicked and became MQL 2 days later, one unsubscribed, one bounced;
    in the second, one opened and became SQL 20 days later; the other template's recipient
    became MQL too, and counts for that template only."""
    first = _delivered(settings, "Spring news", 3)
    second = sending.start_send(
        sending.create_send(
            template=first.template, segment=make_audience(2, name="Later"), actor=None
        ),
        actor=None,
    )
    sending.deliver(second.pk)
    other = _delivered(settings, "Autumn news", 1)

    a, b, c = _sent(first)
    _click(a, 0, PRICING)
    _becomes(a, LifecycleStage.MQL, 2)
    assert b.contact is not None
    consent.unsubscribe(b.contact, None, source=ConsentSource.ONE_CLICK, delivery=b)
    bounces.record_bounce(c.pk, "hard", "550 no such user")
    d, _e = _sent(second)
    later = d.sent_at + dt.timedelta(hours=1) if d.sent_at else None
    engagement.record_open(d, PERSON, now=later)
    _becomes(d, LifecycleStage.SQL, 20)
    _becomes(_sent(other)[0], LifecycleStage.MQL, 1)
    return first


def test_a_templates_report_adds_up_every_send_of_it(two_sends: Send) -> None:
    report = send_reports.template_report(two_sends.template, days=30)

    assert (report.sends, report.delivered, report.opened, report.clicked) == (2, 4, 2, 1)
    assert (report.unsubscribed, report.bounced) == (1, 1)
    effect = report.effect
    assert (effect.recipients, effect.mql, effect.sql, effect.customers) == (4, 1, 1, 0)
    assert effect.attributed_conversions == 0.0 and effect.attributed_revenue == 0.0


def test_a_templates_report_counts_only_moves_within_the_days_asked(two_sends: Send) -> None:
    week = send_reports.template_report(two_sends.template, days=7).effect

    assert (week.mql, week.sql) == (1, 0)


def test_a_send_and_its_templates_report_count_the_same_way(two_sends: Send) -> None:
    send = send_reports.funnel_effect(two_sends, days=30)

    assert (send.recipients, send.mql, send.sql) == (2, 1, 0)


def test_a_templates_report_has_the_revenue_attribution_credits_e_mail_with(
    two_sends: Send,
) -> None:
    # A buyer who came only from e-mail, won a week after the first send: all of it is e-mail's.
    assert two_sends.started_at is not None
    start = two_sends.started_at
    journey(
        person(
            email="buyer@example.org",
            at=start,
            stage="lead",
            touches=[Touch("email", start + dt.timedelta(hours=1))],
            deals=[
                Deal("1500", opened=start + dt.timedelta(days=2), won=start + dt.timedelta(days=7))
            ],
        )
    )

    effect = send_reports.template_report(two_sends.template, days=30).effect

    assert effect.attributed_conversions == 1.0
    assert effect.attributed_revenue == 1500.0


def test_a_template_never_sent_has_an_empty_report(settings: Any) -> None:
    report = send_reports.template_report(make_template("Draft only"), days=30)

    assert (report.sends, report.delivered, report.effect.mql) == (0, 0, 0)
    assert report.effect.attributed_conversions is None


def test_the_template_page_shows_its_results_for_the_days_chosen(
    client: Client, two_sends: Send
) -> None:
    client.force_login(make_user("marketing"))
    url = f"/email/templates/{two_sends.template.pk}/"

    month = client.get(url).content.decode()
    week = client.get(f"{url}?days=7").content.decode()
    nonsense = client.get(f"{url}?days=abc")

    card = month.split('data-testid="template-results"')[1].split("</section>")[0]
    assert 'data-testid="report-sends">2<' in card
    assert 'data-testid="report-delivered">4<' in card
    assert 'data-testid="report-bounced">1<' in card
    assert 'data-testid="report-sql">1<' in card
    assert 'data-testid="report-sql">0<' in week
    assert '<option value="7" selected>' in week
    assert (
        nonsense.status_code == 200 and '<option value="30" selected>' in nonsense.content.decode()
    )


def test_the_template_page_says_when_nothing_was_sent_in_spanish(
    client: Client, settings: Any
) -> None:
    template = make_template("Draft only")
    client.force_login(make_user("marketing"))

    page = client.get(
        f"/email/templates/{template.pk}/", HTTP_ACCEPT_LANGUAGE="es"
    ).content.decode()

    assert "Resultados" in page
    assert "Todavía no ha empezado ningún envío de esta plantilla." in page


def test_the_api_answers_a_templates_report(client: Client, two_sends: Send) -> None:
    secret = create_api_key("tests", ["read"], created_by=make_user("admin")).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    url = f"/api/v1/email/templates/{two_sends.template.pk}/report"

    report = client.get(f"{url}?days=7", **auth)
    bad = client.get(f"{url}?days=0", **auth)
    missing = client.get("/api/v1/email/templates/999999/report", **auth)

    assert report.status_code == 200, report.content
    body = report.json()
    assert (body["sends"], body["delivered"], body["opened"], body["clicked"]) == (2, 4, 2, 1)
    assert body["effect"]["days"] == 7
    assert (body["effect"]["mql"], body["effect"]["sql"]) == (1, 0)
    assert body["first_sent_at"] is not None
    assert bad.status_code == 422
    assert bad.json()["error"]["fields"] == {"days": ["days must be from 1 to 365, not 0"]}
    assert missing.status_code == 404


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_both_reports_fit_a_phone_screen(
    page: Any, live_server: Any, browser_login: Any, settings: Any
) -> None:
    send = _delivered(settings)
    long_link = "https://example.com/" + "a-very-long-landing-page-address/" * 6 + "?utm_source=x"
    _click(_sent(send)[0], 0, long_link)
    browser_login(make_user("marketing"))
    page.set_viewport_size({"width": 390, "height": 844})
    overflow = "document.documentElement.scrollWidth - document.documentElement.clientWidth"

    page.goto(f"{live_server.url}/email/sends/{send.pk}/")
    assert page.inner_text("[data-testid=link-contacts]") == "1"
    assert page.evaluate(overflow) <= 0

    page.goto(f"{live_server.url}/email/templates/{send.template.pk}/?days=7")
    assert page.inner_text("[data-testid=report-delivered]") == "3"
    assert page.evaluate(overflow) <= 0
