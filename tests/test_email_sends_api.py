"""Sends through `/api/v1/email/sends` and `embudo email send|status|cancel`."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.automation import sending
from embudo.automation.models import Delivery, Send, SendState
from embudo.crm import actions as crm
from embudo.crm.models import TransitionCause
from embudo.segments import actions as segments
from tests.factories import make_user
from tests.mailroom import make_audience, make_brand, make_template

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client) -> Any:
    secret = create_api_key("tests", ["write"], created_by=make_user("admin")).secret

    def call(method: str, url: str, body: Any = None) -> Any:
        return getattr(client, method)(
            f"/api/v1{url}",
            data=json.dumps(body) if body is not None else None,
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {secret}",
        )

    return call


@pytest.fixture
def world(settings: Any) -> dict[str, Any]:
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    make_brand()
    return {"template": make_template(), "segment": make_audience(4)}


def test_a_send_is_created_previewed_started_and_followed(api: Any, world: Any) -> None:
    nobody = crm.create_contact({"first_name": "Nobody"}, cause=TransitionCause.MANUAL)
    segments.add_members(world["segment"], [nobody.pk])

    created = api("post", "/email/sends", {"template": "Spring news", "segment": "Customers"})
    assert created.status_code == 201, created.content
    send = created.json()
    assert send["state"] == "draft" and send["name"] == "Spring news → Customers"

    audience = api("get", f"/email/sends/{send['id']}/audience").json()
    assert audience == {"total": 5, "mailable": 4, "skipped": {"no_address": 1}}

    started = api("post", f"/email/sends/{send['id']}/start")
    assert started.status_code == 200, started.content
    assert started.json()["state"] == "running"
    assert started.json()["progress"]["queued"] == 4
    assert started.json()["skipped"] == {"no_address": 1}

    sending.deliver(send["id"])
    status = api("get", f"/email/sends/{send['id']}").json()
    assert status["state"] == "done"
    assert status["progress"] | {"percent": 0} == {
        "recipients": 4,
        "queued": 0,
        "in_flight": 0,
        "sent": 4,
        "skipped": 1,
        "failed": 0,
        "bounced": 0,
        "opened": 0,
        "clicked": 0,
        "unsubscribed": 0,
        "percent": 0,
    }
    assert status["progress"]["percent"] == 100.0
    assert len(mail.outbox) == 4
    listed = api("get", "/email/sends").json()["items"]
    assert [item["id"] for item in listed] == [send["id"]]


def test_starting_twice_is_a_conflict(api: Any, world: Any) -> None:
    send = api("post", "/email/sends", {"template": "Spring news", "segment": "Customers"}).json()
    api("post", f"/email/sends/{send['id']}/start")

    again = api("post", f"/email/sends/{send['id']}/start")

    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_draft"
    assert Delivery.objects.count() == 4


def test_pause_resume_and_cancel(api: Any, world: Any) -> None:
    send = api("post", "/email/sends", {"template": "Spring news", "segment": "Customers"}).json()
    api("post", f"/email/sends/{send['id']}/start")

    assert api("post", f"/email/sends/{send['id']}/pause").json()["state"] == "paused"
    assert api("post", f"/email/sends/{send['id']}/pause").status_code == 409
    assert api("post", f"/email/sends/{send['id']}/resume").json()["state"] == "running"
    cancelled = api("post", f"/email/sends/{send['id']}/cancel").json()

    assert cancelled["state"] == "cancelled"
    assert cancelled["progress"]["skipped"] == 4 and cancelled["skipped"] == {"cancelled": 4}


def test_bad_requests_get_clear_errors_and_write_nothing(api: Any, world: Any) -> None:
    unknown = api("post", "/email/sends", {"template": "Nope", "segment": "Customers"})
    assert unknown.status_code == 404
    assert unknown.json()["error"] == {
        "code": "unknown_template",
        "message": "There is no e-mail template Nope.",
    }
    empty = make_audience(0, name="Empty")
    send = api("post", "/email/sends", {"template": "Spring news", "segment": empty.pk}).json()
    refused = api("post", f"/email/sends/{send['id']}/start")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "no_recipients"
    assert "would mail nobody" in refused.json()["error"]["message"]
    assert api("get", "/email/sends/999").status_code == 404
    assert Delivery.objects.count() == 0


def test_a_sales_rep_may_not_create_sends_and_a_read_key_may_only_read(
    client: Client, world: Any
) -> None:
    client.force_login(make_user("sales"))
    denied = client.post(
        "/api/v1/email/sends",
        data={"template": "Spring news", "segment": "Customers"},
        content_type="application/json",
    )
    assert denied.status_code == 403
    client.logout()
    secret = create_api_key("reader", ["read"], created_by=make_user("admin")).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/email/sends", **auth).status_code == 200
    refused = client.post(
        "/api/v1/email/sends",
        data={"template": "Spring news", "segment": "Customers"},
        content_type="application/json",
        **auth,
    )
    assert refused.status_code == 403
    assert Send.objects.count() == 0


def test_the_cli_sends_reports_status_and_cancels(world: Any) -> None:
    out = io.StringIO()
    call_command(
        "email", "send", "--template", "Spring news", "--segment", "Customers", "--yes", stdout=out
    )
    send = Send.objects.get()
    assert "This will mail 4 contacts." in out.getvalue()
    assert f"Send {send.pk} “Spring news → Customers” started: 4 messages queued" in out.getvalue()
    assert send.state == SendState.RUNNING

    sending.deliver(send.pk)
    status = io.StringIO()
    call_command("email", "status", str(send.pk), stdout=status)
    assert "Sent, 100% of 4 recipients" in status.getvalue()
    assert "  sent                  4" in status.getvalue()

    with pytest.raises(CommandError, match="cannot be cancelled"):
        call_command("email", "cancel", str(send.pk))


def test_the_cli_asks_before_sending_and_leaves_nothing_without_an_answer(world: Any) -> None:
    with pytest.raises(CommandError, match="confirm with --yes"):
        call_command("email", "send", "--template", "Spring news", "--segment", "Customers")
    assert Send.objects.count() == 0

    empty = make_audience(0, name="Empty")
    with pytest.raises(CommandError, match="would mail nobody"):
        call_command(
            "email", "send", "--template", "Spring news", "--segment", str(empty.pk), "--yes"
        )
    assert Send.objects.count() == 0


def test_nul_characters_are_refused_not_a_server_error(api: Any, world: Any) -> None:
    """PostgreSQL cannot store or compare a NUL: the API answers with the problem instead."""
    named = api(
        "post",
        "/email/sends",
        {"template": "Spring news", "segment": "Customers", "name": "Spring\x00news"},
    )
    assert named.status_code == 422, named.content
    assert named.json()["error"]["code"] == "bad_name"
    assert "NUL" in named.json()["error"]["message"]
    template = api("post", "/email/sends", {"template": "Spring\x00news", "segment": "Customers"})
    assert template.status_code == 404, template.content
    assert template.json()["error"]["code"] == "unknown_template"
    segment = api("post", "/email/sends", {"template": "Spring news", "segment": "Cust\x00omers"})
    assert segment.status_code == 404, segment.content
    assert segment.json()["error"]["code"] == "unknown_segment"
    assert Send.objects.count() == 0
