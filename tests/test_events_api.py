"""POST /api/v1/events: batches, partial rejection, idempotent retries, scopes and limits."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key, revoke_api_key
from embudo.crm.models import Contact, LifecycleTransition
from embudo.tracking.models import Event, Touchpoint
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


@pytest.fixture
def ingest_key() -> str:
    return create_api_key("website backend", ["ingest"], created_by=make_user("admin")).secret


def post(client: Client, key: str | None, body: Any, raw: bytes | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = raw if raw is not None else json.dumps(body)
    return client.post(URL, data=data, content_type="application/json", **headers)


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": "page_view", **fields}


def test_batch_is_stored_and_counted(client: Client, ingest_key: str) -> None:
    contact = make_contact()
    batch = [event(contact_id=contact.pk, url=f"https://acme.test/p{i}") for i in range(3)]

    response = post(client, ingest_key, {"events": batch})

    assert response.status_code == 200
    assert response.json() == {"accepted": 3, "duplicate": 0, "rejected": 0, "errors": []}
    stored = set(Event.objects.filter(contact=contact).values_list("id", flat=True))
    assert stored == {uuid.UUID(e["event_id"]) for e in batch}


def test_retried_batch_creates_no_duplicates(client: Client, ingest_key: str) -> None:
    contact = make_contact()
    batch = [event(contact_id=contact.pk) for _ in range(5)]
    post(client, ingest_key, {"events": batch[:3]})

    response = post(client, ingest_key, {"events": batch})

    assert response.json()["accepted"] == 2
    assert response.json()["duplicate"] == 3
    assert Event.objects.count() == 5


def test_same_event_twice_in_one_batch_is_one_event(client: Client, ingest_key: str) -> None:
    contact = make_contact()
    once = event(contact_id=contact.pk)

    response = post(client, ingest_key, {"events": [once, dict(once)]})

    assert (response.json()["accepted"], response.json()["duplicate"]) == (1, 1)
    assert Event.objects.count() == 1


def test_bad_items_are_refused_with_reasons_and_good_ones_kept(
    client: Client, ingest_key: str
) -> None:
    contact = make_contact()
    future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat()
    batch = [
        event(contact_id=contact.pk),
        {"event_id": str(uuid.uuid4()), "contact_id": contact.pk},
        event(contact_id=contact.pk, occurred_at=future),
        event(contact_id=contact.pk, occurred_at="1999-12-31T23:00:00Z"),
        event(contact_id=999_999),
        event(contact_id=contact.pk, properties=["not", "an", "object"]),
        event(contact_id=contact.pk, occured_at="2026-01-01T00:00:00Z"),
        event(event_id="not-a-uuid", contact_id=contact.pk),
        event(),
        "a string",
        event(external_id="crm-404"),
        event(contact_id=contact.pk, occurred_at="yesterday"),
    ]

    response = post(client, ingest_key, {"events": batch})

    body = response.json()
    assert response.status_code == 200
    assert (body["accepted"], body["rejected"]) == (1, 11)
    reasons = {error["index"]: error["reason"] for error in body["errors"]}
    assert reasons[1] == "type is required"
    assert "more than a day in the future" in reasons[2]
    assert "before 2000" in reasons[3]
    assert reasons[4] == "no contact with id 999999"
    assert "properties must be a JSON object" in reasons[5]
    assert reasons[6] == "unknown field 'occured_at'"
    assert "is not a UUID" in reasons[7]
    assert "needs a contact" in reasons[8]
    assert "must be a JSON object" in reasons[9]
    assert reasons[10] == "no contact with external id 'crm-404'"
    assert "ISO 8601" in reasons[11]
    assert Event.objects.count() == 1


def test_unknown_email_creates_the_contact_with_its_first_stage(
    client: Client, ingest_key: str
) -> None:
    batch = [
        event(email="New.Person@Example.com", traits={"first_name": "Nuria"}),
        event(email="new.person@example.com"),
    ]

    response = post(client, ingest_key, {"events": batch})

    assert response.json()["accepted"] == 2
    contact = Contact.objects.get(email="new.person@example.com")
    assert contact.first_name == "Nuria"
    assert contact.events.count() == 2
    assert list(LifecycleTransition.objects.filter(contact=contact).values_list("to_stage")) == [
        ("subscriber",)
    ]


def test_contact_by_external_id_and_email(client: Client, ingest_key: str) -> None:
    contact = make_contact(external_id="crm-7")

    response = post(
        client,
        ingest_key,
        {"events": [event(external_id="crm-7"), event(email=contact.email.upper())]},
    )

    assert response.json()["accepted"] == 2
    assert contact.events.count() == 2


def test_references_to_two_different_contacts_are_refused(client: Client, ingest_key: str) -> None:
    one, other = make_contact(), make_contact()

    response = post(client, ingest_key, event(contact_id=one.pk, email=other.email))

    assert response.status_code == 422
    assert "different contacts" in response.json()["errors"][0]["reason"]


def test_single_event_answers_its_id(client: Client, ingest_key: str) -> None:
    contact = make_contact()

    response = post(client, ingest_key, {"type": "meeting_booked", "contact_id": contact.pk})

    assert response.status_code == 200
    stored = Event.objects.get()
    assert response.json()["event_id"] == str(stored.id)
    assert stored.type == "meeting_booked" and stored.source == "api"


def test_read_only_key_is_forbidden(client: Client) -> None:
    key = create_api_key("reports", ["read"]).secret

    response = post(client, key, event(email="a@example.com"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert Event.objects.count() == 0


def test_unknown_or_revoked_key_is_unauthorized(client: Client) -> None:
    issued = create_api_key("old", ["ingest"])
    revoke_api_key(issued.key)

    for key in ("emb_nope_nothing", issued.secret, None):
        response = post(client, key, event(email="a@example.com"))
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
    assert Event.objects.count() == 0


def test_malformed_json_is_a_bad_request(client: Client, ingest_key: str) -> None:
    response = post(client, ingest_key, None, raw=b'{"events": [')

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


def test_batch_over_a_thousand_events_is_too_large(client: Client, ingest_key: str) -> None:
    batch = [{"type": "page_view", "visitor_id": "v1"}] * 1001

    response = post(client, ingest_key, {"events": batch})

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert Event.objects.count() == 0


def test_body_over_one_megabyte_is_too_large(client: Client, ingest_key: str) -> None:
    big = [event(visitor_id="v1", properties={"blob": "x" * 2000}) for _ in range(600)]

    response = post(client, ingest_key, {"events": big})

    assert response.status_code == 413
    assert "1 MB" in response.json()["error"]["message"]
    assert Event.objects.count() == 0


def test_utm_from_the_url_makes_a_touchpoint_and_a_campaign(
    client: Client, ingest_key: str
) -> None:
    contact = make_contact()
    url = "https://acme.test/pricing?utm_source=linkedin&utm_medium=paid_social&utm_campaign=q3"

    post(client, ingest_key, event(contact_id=contact.pk, url=url))

    touchpoint = Touchpoint.objects.get(contact=contact)
    assert touchpoint.channel == "paid_social"
    assert touchpoint.campaign is not None and touchpoint.campaign.name == "q3"
    contact.refresh_from_db()
    assert (contact.original_source, contact.original_medium, contact.original_campaign) == (
        "linkedin",
        "paid_social",
        "q3",
    )


def test_ingest_key_requests_take_the_fast_lane_past_the_browser_middleware(
    client: Client, ingest_key: str
) -> None:
    response = post(client, ingest_key, event(visitor_id="v-fast"))

    assert response.status_code == 200
    # Locale middleware, which only browser pages need, never saw this request.
    assert "Content-Language" not in response
    assert Event.objects.filter(visitor_id="v-fast").count() == 1


def test_a_logged_in_browser_still_posts_through_the_full_stack(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")

    response = post(client, None, event(visitor_id="v-browser"))

    assert response.status_code == 200
    assert response["Content-Language"] == "en"
    assert Event.objects.filter(visitor_id="v-browser").count() == 1


def test_fast_lane_refuses_a_host_that_is_not_allowed(client: Client, ingest_key: str) -> None:
    response = client.post(
        URL,
        data=json.dumps(event(visitor_id="v-host")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {ingest_key}",
        HTTP_HOST="attacker.example",
    )

    assert response.status_code == 400
    assert Event.objects.count() == 0


def test_fast_lane_errors_keep_their_stable_codes(client: Client, ingest_key: str) -> None:
    response = post(client, ingest_key, None, raw=b'{"type": ')

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert "Content-Language" not in response


def test_fast_lane_answers_in_the_requests_language_not_the_threads_last_one(
    client: Client, ingest_key: str
) -> None:
    from django.utils import translation

    translation.activate("es")  # as a Spanish page served by this thread before would leave it

    response = post(client, ingest_key, event(visitor_id="v-lang"))

    assert response.status_code == 200
    assert translation.get_language() == "en"


def test_a_full_length_url_is_stored_and_an_oversized_non_ascii_one_is_refused(
    client: Client, ingest_key: str
) -> None:
    contact = make_contact()
    longest = "https://example.com/" + "a" * 2028
    oversized = "https://example.com/" + "ñ" * 1500  # 1,520 characters, 3,020 bytes

    response = post(
        client,
        ingest_key,
        {"events": [event(contact_id=contact.pk, url=u) for u in (longest, oversized)]},
    )

    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert body["errors"][0]["field"] == "url" and "bytes" in body["errors"][0]["reason"]
    assert Event.objects.get().url == longest
