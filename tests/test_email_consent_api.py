"""The consent API: subscription types, a contact's subscriptions, the suppression list."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core import mail
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.automation import consent
from embudo.automation.models import ConsentRecord, Subscription, SubscriptionType, Suppression
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def key(*scopes: str) -> str:
    return create_api_key("integration", scopes, created_by=make_user("admin")).secret


def call(method: str, url: str, body: Any = None, secret: str = "") -> Any:
    kwargs: dict[str, Any] = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    if body is not None:
        kwargs |= {"data": json.dumps(body), "content_type": "application/json"}
    return getattr(Client(), method)(f"/api/v1{url}", **kwargs)


def test_subscription_types_are_created_listed_and_archived() -> None:
    admin = key("admin", "read")

    created = call(
        "post",
        "/email/subscription-types",
        {"name": "Webinars", "name_es": "Seminarios", "double_opt_in": True},
        admin,
    )
    type_id = created.json()["id"]
    archived = call("patch", f"/email/subscription-types/{type_id}", {"active": False}, admin)
    listed = call("get", "/email/subscription-types", secret=admin)

    assert created.status_code == 201
    assert created.json()["key"] == "webinars"
    assert archived.json()["active"] is False
    assert [t["name_es"] for t in listed.json()] == ["Seminarios"]


def test_a_type_needs_a_name_and_a_write_key_may_not_create_one() -> None:
    bad = call("post", "/email/subscription-types", {"name": ""}, key("admin"))
    denied = call("post", "/email/subscription-types", {"name": "X"}, key("write"))

    assert bad.status_code == 422 and bad.json()["error"]["fields"]["name"]
    assert denied.status_code == 403
    assert not SubscriptionType.objects.exists()


def test_subscribing_through_the_api_waits_for_double_opt_in_and_records_the_text(
    django_capture_on_commit_callbacks: Any,
) -> None:
    contact = make_contact()
    consent.create_subscription_type({"name": "News", "key": "news", "double_opt_in": True})

    with django_capture_on_commit_callbacks(execute=True):
        response = call(
            "patch",
            f"/contacts/{contact.pk}/subscriptions",
            {"subscriptions": {"news": True}, "text": "I agree", "ip_address": "198.51.100.4"},
            key("write"),
        )

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["subscriptions"] == [{"key": "news", "name": "News", "status": "pending"}]
    assert body["consents"][0] | {"at": None} == {
        "at": None,
        "subscription_type": "news",
        "action": "request",
        "source": "api",
        "text": "I agree",
        "email": contact.email,
        "ip_address": "198.51.100.4",
        "actor_id": ConsentRecord.objects.get().actor_id,
    }
    assert len(mail.outbox) == 1


def test_an_unknown_subscription_type_changes_nothing() -> None:
    contact = make_contact()
    consent.create_subscription_type({"name": "News", "key": "news"})

    response = call(
        "patch",
        f"/contacts/{contact.pk}/subscriptions",
        {"subscriptions": {"news": True, "gossip": True}},
        key("write"),
    )

    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {
        "subscriptions": ["no subscription type with key 'gossip'"]
    }
    assert not Subscription.objects.exists() and not ConsentRecord.objects.exists()


def test_unsubscribe_all_through_the_api_and_read_it_back() -> None:
    contact = make_contact()
    news = consent.create_subscription_type({"name": "News", "key": "news"})
    consent.subscribe(contact, news, source="import")

    call("patch", f"/contacts/{contact.pk}/subscriptions", {"unsubscribe_all": True}, key("write"))
    read = call("get", f"/contacts/{contact.pk}/subscriptions", secret=key("read"))

    assert read.json()["suppressed"] == "unsubscribed"
    assert read.json()["subscriptions"][0]["status"] == "unsubscribed"


def test_a_sales_rep_cannot_read_the_subscriptions_of_someone_elses_contact(
    client: Client,
) -> None:
    owner, rep = make_user("sales"), make_user("sales")
    contact = make_contact(owner_id=owner.pk)
    client.force_login(rep)

    response = client.get(f"/api/v1/contacts/{contact.pk}/subscriptions")

    assert response.status_code == 404


def test_the_suppression_list_through_the_api() -> None:
    writer = key("write", "read")

    added = call("post", "/email/suppressions", {"email": "X@Example.com"}, writer)
    again = call("post", "/email/suppressions", {"email": "x@example.com"}, writer)
    bad = call("post", "/email/suppressions", {"email": "nope"}, writer)
    listed = call("get", "/email/suppressions?q=example", secret=writer)
    removed = call("delete", "/email/suppressions/x@example.com", secret=writer)
    missing = call("delete", "/email/suppressions/x@example.com", secret=writer)

    assert (added.status_code, again.status_code, bad.status_code) == (201, 200, 422)
    assert listed.json()["count"] == 1 and listed.json()["items"][0]["reason"] == "manual"
    assert (removed.status_code, missing.status_code) == (204, 404)
    assert not Suppression.objects.exists()


def test_an_unsubscribe_from_all_cannot_be_lifted_through_the_api() -> None:
    contact = make_contact()
    consent.unsubscribe(contact, None, source="one_click")

    response = call("delete", f"/email/suppressions/{contact.email}", secret=key("write"))

    assert response.status_code == 422
    assert "only the contact" in response.json()["error"]["message"]
    assert Suppression.objects.filter(email=contact.email).exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ip_address": "not-an-ip", "unsubscribe_all": True}, "ip_address"),
        ({"text": "I agree\x00", "unsubscribe_all": True}, "text"),
        ({"subscriptions": {"news\x00": True}}, "subscriptions"),
    ],
)
def test_bad_consent_evidence_answers_422_and_writes_nothing(
    body: dict[str, Any], field: str
) -> None:
    contact = make_contact()
    SubscriptionType.objects.create(key="news", name="News")
    response = call("patch", f"/contacts/{contact.pk}/subscriptions", body, key("write"))
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]
    assert not Suppression.objects.exists() and not ConsentRecord.objects.exists()
    assert not Subscription.objects.exists()


def test_nul_bytes_in_suppressions_and_types_answer_422_or_404() -> None:
    secret = key("read", "write", "admin")
    response = call(
        "post", "/email/suppressions", {"email": "a@example.com", "detail": "x\x00"}, secret
    )
    assert response.status_code == 422
    assert "detail" in response.json()["error"]["fields"]
    assert not Suppression.objects.exists()
    response = call("post", "/email/subscription-types", {"name": "News\x00"}, secret)
    assert response.status_code == 422
    assert "name" in response.json()["error"]["fields"]
    assert not SubscriptionType.objects.exists()
    response = call("delete", "/email/suppressions/a%00b@example.com", None, secret)
    assert response.status_code == 404


def test_a_suppression_search_with_a_nul_byte_finds_nothing() -> None:
    consent.suppress("ana@example.com", "manual")

    response = call("get", "/email/suppressions?q=ana%00", secret=key("read"))

    assert response.status_code == 200
    assert response.json() == {"items": [], "count": 0}
