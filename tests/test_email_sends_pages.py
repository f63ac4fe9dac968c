"""The sends pages: the list with progress, the new-send form that shows who it will mail before
the start button, the report with pause/resume/cancel, and the deliveries on a contact's
timeline; one journey through the form in a real browser."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone, translation

from embudo.automation import sending
from embudo.automation.models import Delivery, DeliveryState, Send, SendState
from embudo.crm import actions as crm
from embudo.crm.models import LifecycleStage, TransitionCause
from embudo.segments import actions as segments
from tests.factories import make_user
from tests.mailroom import make_audience, make_brand, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(settings: Any) -> dict[str, Any]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_brand()
    audience = make_audience(3)
    nobody = crm.create_contact({"first_name": "Nobody"}, cause=TransitionCause.MANUAL)
    segments.add_members(audience, [nobody.pk])
    return {"template": make_template(), "segment": audience}


def test_the_form_shows_who_it_will_mail_before_starting(client: Client, world: Any) -> None:
    client.force_login(make_user("marketing"))
    chosen = {"template": world["template"].pk, "segment": world["segment"].pk}

    preview = client.post("/email/sends/new/", {**chosen, "step": "preview"})

    assert preview.status_code == 200
    page = preview.content.decode()
    assert "This will mail 3 contacts." in page
    assert "1 · no e-mail address" in page
    assert Send.objects.count() == 0

    started = client.post("/email/sends/new/", {**chosen, "step": "start"})

    send = Send.objects.get()
    assert started.status_code == 302 and started["Location"] == f"/email/sends/{send.pk}/"
    assert send.state == SendState.RUNNING and send.recipients == 3


def test_the_form_names_the_problem_and_writes_nothing(client: Client, world: Any) -> None:
    client.force_login(make_user("marketing"))
    empty = make_audience(0, name="Empty")

    refused = client.post(
        "/email/sends/new/",
        {"template": world["template"].pk, "segment": empty.pk, "step": "start"},
    )
    missing = client.post("/email/sends/new/", {"template": "", "segment": "", "step": "preview"})

    assert refused.status_code == 200
    assert "This send would mail nobody" in refused.content.decode()
    assert "Choose a template and a segment or list." in missing.content.decode()
    assert Send.objects.count() == 0


def test_a_tampered_form_names_the_unknown_choice(client: Client, world: Any) -> None:
    """A value that is no id (an edited page, a script) is named as unknown, not as Python's
    own complaint about integers, and nothing is written."""
    client.force_login(make_user("marketing"))
    for step in ("preview", "start"):
        template = client.post(
            "/email/sends/new/",
            {"template": "abc", "segment": world["segment"].pk, "step": step},
        )
        assert template.status_code == 200
        assert "There is no e-mail template abc." in template.content.decode()
        segment = client.post(
            "/email/sends/new/",
            {"template": world["template"].pk, "segment": "9x", "step": step},
        )
        assert "There is no segment or list 9x." in segment.content.decode()
    assert Send.objects.count() == 0


def test_the_list_and_the_report_show_progress_and_the_funnel_effect(
    client: Client, world: Any
) -> None:
    client.force_login(make_user("marketing"))
    send = sending.start_send(
        sending.create_send(template=world["template"], segment=world["segment"], actor=None),
        actor=None,
    )
    sending.deliver(send.pk)
    first = Delivery.objects.filter(send=send, state=DeliveryState.SENT).order_by("id")[0]
    assert first.contact is not None
    crm.set_lifecycle_stage(
        first.contact,
        LifecycleStage.MQL,
        cause=TransitionCause.MANUAL,
        at=timezone.now() + dt.timedelta(days=2),
    )

    listed = client.get("/email/sends/").content.decode()
    report = client.get(f"/email/sends/{send.pk}/?days=7")

    assert send.name in listed and "100 %" in listed
    page = report.content.decode()
    assert report.status_code == 200
    assert 'data-testid="sent">3<' in page
    assert 'data-testid="skipped">1<' in page
    assert 'data-testid="became-mql">1<' in page
    assert 'data-testid="became-sql">0<' in page


def test_pause_resume_and_cancel_buttons(client: Client, world: Any) -> None:
    client.force_login(make_user("marketing"))
    send = sending.start_send(
        sending.create_send(template=world["template"], segment=world["segment"], actor=None),
        actor=None,
    )

    client.post(f"/email/sends/{send.pk}/pause/")
    assert Send.objects.get(pk=send.pk).state == SendState.PAUSED
    client.post(f"/email/sends/{send.pk}/resume/")
    assert Send.objects.get(pk=send.pk).state == SendState.RUNNING
    client.post(f"/email/sends/{send.pk}/cancel/")
    again = client.post(f"/email/sends/{send.pk}/cancel/", follow=True)

    assert Send.objects.get(pk=send.pk).state == SendState.CANCELLED
    assert "cannot be cancelled" in again.content.decode()


def test_a_sales_rep_sees_no_sends(client: Client, world: Any) -> None:
    client.force_login(make_user("sales"))

    assert client.get("/email/sends/").status_code == 403
    assert client.post("/email/sends/new/", {"step": "preview"}).status_code == 403


def test_a_delivery_shows_on_the_contacts_timeline(client: Client, world: Any) -> None:
    client.force_login(make_user("admin"))
    send = sending.start_send(
        sending.create_send(template=world["template"], segment=world["segment"], actor=None),
        actor=None,
    )
    sending.deliver(send.pk)
    delivery = Delivery.objects.filter(send=send, state=DeliveryState.SENT).first()
    skipped = Delivery.objects.get(send=send, state=DeliveryState.SKIPPED)
    assert delivery is not None

    page = client.get(f"/contacts/{delivery.contact_id}/").content.decode()
    other = client.get(f"/contacts/{skipped.contact_id}/").content.decode()

    assert 'data-testid="timeline-email"' in page and "Spring news" in page
    assert "Sent" in page and delivery.email in page
    assert "Skipped: no e-mail address" in other


def test_the_pages_speak_spanish(client: Client, world: Any) -> None:
    client.force_login(make_user("marketing"))
    with translation.override("es"):
        page = client.get("/email/sends/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Envíos de correo" in page and "Nuevo envío" in page


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_starting_a_send_in_the_browser(
    page: Any, live_server: Any, browser_login: Any, settings: Any
) -> None:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_brand()
    make_template()
    make_audience(2)
    user = make_user("marketing")
    browser_login(user)

    page.goto(f"{live_server.url}/email/sends/new/")
    page.select_option("select[name=template]", label="Spring news")
    page.select_option("select[name=segment]", label="Customers")
    page.click("[data-testid=preview]")
    assert "This will mail 2 contacts." in page.inner_text("[data-testid=audience]")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=start]")
    page.wait_for_selector("[data-testid=send-state]")

    assert page.inner_text("[data-testid=send-state]") == "Sending"
    assert page.inner_text("[data-testid=queued]") == "2"
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-testid=pause]")
    page.wait_for_selector("[data-testid=resume]")
    assert Send.objects.get().state == SendState.PAUSED
