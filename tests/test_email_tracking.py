"""Opens and clicks: the pixel and tracked links record engagement once, through the capture
path (events, touchpoints), keep the link's UTM, flag robots, and refuse forged links."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from embudo.automation import links
from embudo.automation.models import Delivery
from embudo.tracking.models import Channel, Event, Touchpoint
from tests.email_fixtures import make_delivery, make_template
from tests.factories import make_contact

pytestmark = pytest.mark.django_db

BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15"


@pytest.fixture
def delivery() -> Delivery:
    contact = make_contact(first_name="Lucía")
    sent = timezone.now() - dt.timedelta(hours=1)
    return make_delivery(make_template(), contact, state="sent", sent_at=sent)


def test_the_open_pixel_records_one_open_per_delivery(client, delivery):
    path = links.open_path(delivery.pk)
    first = client.get(path, HTTP_USER_AGENT=BROWSER)
    assert first.status_code == 200
    assert first["Content-Type"] == "image/gif"
    delivery.refresh_from_db()
    opened = delivery.opened_at
    assert opened is not None
    client.get(path, HTTP_USER_AGENT=BROWSER)
    delivery.refresh_from_db()
    assert delivery.opened_at == opened
    [event] = Event.objects.filter(type="email_open")
    assert event.contact_id == delivery.contact_id
    assert event.properties["delivery"] == delivery.pk


def test_a_click_redirects_to_the_link_keeping_its_utm(client, delivery):
    response = client.get(links.click_path(delivery.pk, 0), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert (
        response["Location"]
        == "https://example.com/pricing?utm_source=newsletter&utm_campaign=spring"
    )
    delivery.refresh_from_db()
    assert delivery.clicked_at is not None
    assert delivery.opened_at is not None  # a click shows it was opened, images or not
    [click] = Event.objects.filter(type="email_click")
    assert click.properties["link"] == 0
    assert (click.utm_source, click.utm_medium, click.utm_campaign) == (
        "newsletter",
        "email",
        "spring",
    )
    [touchpoint] = Touchpoint.objects.filter(contact_id=delivery.contact_id)
    assert touchpoint.channel == Channel.EMAIL  # attribution credits e-mail


def test_a_link_without_utm_is_credited_to_email(client, delivery):
    response = client.get(links.click_path(delivery.pk, 1), HTTP_USER_AGENT=BROWSER)
    assert response["Location"] == "https://example.com/start"
    click = Event.objects.get(type="email_click")
    assert (click.utm_medium, click.utm_campaign) == ("email", "Spring news")
    assert Touchpoint.objects.get(contact_id=delivery.contact_id).channel == Channel.EMAIL


@pytest.mark.parametrize(
    "path",
    [
        lambda d: links.open_path(d.pk).replace(links.open_path(d.pk).rsplit("/", 1)[1], "x" * 27),
        lambda d: links.click_path(d.pk, 0).rsplit("/", 1)[0] + "/forged",
        # a signature for link 0 does not open link 1
        lambda d: (
            links.click_path(d.pk, 1).rsplit("/", 1)[0]
            + "/"
            + links.click_path(d.pk, 0).rsplit("/", 1)[1]
        ),
        # nor another delivery's
        lambda d: (
            links.open_path(d.pk + 1).rsplit("/", 1)[0]
            + "/"
            + links.open_path(d.pk).rsplit("/", 1)[1]
        ),
    ],
)
def test_forged_links_are_404_and_record_nothing(client, delivery, path):
    response = client.get(path(delivery), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 404
    assert not Event.objects.exists()
    delivery.refresh_from_db()
    assert delivery.opened_at is None and delivery.clicked_at is None


def test_a_link_the_version_does_not_have_is_404(client, delivery):
    assert client.get(links.click_path(delivery.pk, 7), HTTP_USER_AGENT=BROWSER).status_code == 404


@pytest.mark.parametrize(
    ("method", "agent", "reason"),
    [
        ("get", "Mozilla/5.0 (compatible; Barracuda Sentinel)", "user_agent"),
        ("get", "python-requests/2.32", "user_agent"),
        ("get", "", "no_user_agent"),
        ("head", BROWSER, "head_request"),
    ],
)
def test_bots_and_link_scanners_are_flagged_not_counted(client, delivery, method, agent, reason):
    response = getattr(client, method)(links.click_path(delivery.pk, 0), HTTP_USER_AGENT=agent)
    assert response.status_code == 302  # the scanner still gets where the link leads
    delivery.refresh_from_db()
    assert delivery.clicked_at is None and delivery.opened_at is None
    assert not Event.objects.filter(type__in=["email_click", "email_open"]).exists()
    [flagged] = Event.objects.filter(type="email_bot_click")
    assert flagged.properties["bot"] == reason
    assert not Touchpoint.objects.exists()


def test_a_click_within_seconds_of_sending_is_a_scanners(client, delivery):
    Delivery.objects.filter(pk=delivery.pk).update(sent_at=timezone.now() - dt.timedelta(seconds=2))
    client.get(links.click_path(delivery.pk, 0), HTTP_USER_AGENT=BROWSER)
    assert Event.objects.get(type="email_bot_click").properties["bot"] == "too_soon"
    delivery.refresh_from_db()
    assert delivery.clicked_at is None


def test_a_bot_open_is_flagged_and_a_later_person_still_counts(client, delivery):
    path = links.open_path(delivery.pk)
    client.get(path, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Mimecast)")
    delivery.refresh_from_db()
    assert delivery.opened_at is None
    client.get(path, HTTP_USER_AGENT=BROWSER)
    delivery.refresh_from_db()
    assert delivery.opened_at is not None
    assert sorted(Event.objects.values_list("type", flat=True)) == ["email_bot_open", "email_open"]


def test_engagement_scoring_counts_a_persons_click_and_not_a_scanners(
    client, delivery, only_reactions, django_capture_on_commit_callbacks
):
    from embudo.scoring.models import ContactScore
    from tests.factories import event_rule, make_scoring_model

    only_reactions("rescore")
    model = make_scoring_model([event_rule("email_click", 10, name="Clicks")])
    click = links.click_path(delivery.pk, 0)
    with django_capture_on_commit_callbacks(execute=True):
        client.get(click, HTTP_USER_AGENT="Mozilla/5.0 (compatible; Proofpoint URL Defense)")
    score = ContactScore.objects.filter(model=model, contact_id=delivery.contact_id).first()
    assert score is None or score.engagement_norm == 0
    with django_capture_on_commit_callbacks(execute=True):
        client.get(click, HTTP_USER_AGENT=BROWSER)
    score = ContactScore.objects.get(model=model, contact_id=delivery.contact_id)
    assert score.engagement_norm > 0


def test_a_link_that_is_not_a_web_address_is_404_and_records_nothing(client):
    """An author's mangled address, or a personal field that mangles one, is a dead link."""
    template = make_template(
        en={
            "subject": "Hi",
            "body": '<p><a href="https://[oops/x">a</a> '
            '<a href="https://x.test/{{ contact.properties.plan }}">b</a></p>',
        }
    )
    delivery = make_delivery(template, make_contact(properties={"plan": "pro"}))
    response = client.get(links.click_path(delivery.pk, 0))
    assert response.status_code == 404
    assert not Event.objects.exists()
    working = client.get(links.click_path(delivery.pk, 1))
    assert working.status_code == 302
    assert working["Location"] == "https://x.test/pro"
