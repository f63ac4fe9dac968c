"""The activities API: log notes, calls, meetings, emails and tasks on a contact's timeline."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.accounts.models import AuditEntry
from embudo.crm import actions
from embudo.crm.models import Activity
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 4, 6, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def api(client: Client) -> Any:
    secret = create_api_key("tests", ["write"], created_by=make_user("admin")).secret

    def send(method: str, url: str, body: Any = None) -> Any:
        data = json.dumps(body) if body is not None else None
        return getattr(client, method)(
            url, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )

    return send


def fields(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 422, response.content
    return response.json()["error"]["fields"]


def test_logged_call_appears_on_the_contacts_timeline(api: Any) -> None:
    contact = make_contact()

    response = api(
        "post",
        "/api/v1/activities",
        {
            "contact_id": contact.pk,
            "kind": "call",
            "subject": "Discovery call",
            "body": "Wants a demo",
            "occurred_at": "2026-04-06T10:00:00Z",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["kind"], body["subject"], body["done"]) == ("call", "Discovery call", False)
    assert body["occurred_at"].startswith("2026-04-06T10:00:00")
    timeline = api("get", f"/api/v1/contacts/{contact.pk}/activities").json()
    assert [a["id"] for a in timeline["items"]] == [body["id"]]


def test_activity_by_a_user_records_them_as_its_actor(client: Client, logged_in: Any) -> None:
    user = logged_in("sales")
    contact = make_contact(owner_id=user.pk)

    response = client.post(
        "/api/v1/activities",
        json.dumps({"contact_id": contact.pk, "kind": "note", "subject": "Met at fair"}),
        content_type="application/json",
    )

    assert response.json()["actor"]["id"] == user.pk
    assert AuditEntry.objects.filter(action="activity.create", actor=user).exists()


def test_task_with_due_date(api: Any) -> None:
    contact = make_contact()

    response = api(
        "post",
        "/api/v1/activities",
        {"contact_id": contact.pk, "kind": "task", "due_at": "2026-04-10T09:00:00+02:00"},
    )

    assert response.status_code == 201
    assert Activity.objects.get().due_at == dt.datetime(2026, 4, 10, 7, 0, tzinfo=dt.UTC)


def test_date_time_without_offset_is_read_as_utc(api: Any) -> None:
    contact = make_contact()

    api(
        "post",
        "/api/v1/activities",
        {"contact_id": contact.pk, "kind": "meeting", "occurred_at": "2026-04-06T10:00:00"},
    )

    assert Activity.objects.get().occurred_at == T0


def test_only_a_task_has_a_due_date(api: Any) -> None:
    contact = make_contact()

    response = api(
        "post",
        "/api/v1/activities",
        {"contact_id": contact.pk, "kind": "note", "due_at": "2026-04-10T09:00:00Z"},
    )

    assert fields(response) == {"due_at": ["only a task has a due date"]}
    assert not Activity.objects.exists()


def test_unknown_kind_missing_contact_and_bad_date_are_a_422(api: Any) -> None:
    response = api("post", "/api/v1/activities", {"kind": "fax", "occurred_at": "last tuesday"})

    errors = fields(response)
    assert set(errors) == {"kind", "contact_id", "occurred_at"}
    assert "'note'" in errors["kind"][0]
    assert errors["contact_id"] == ["Field required"]


def test_activity_on_unknown_contact_is_a_422(api: Any) -> None:
    response = api("post", "/api/v1/activities", {"contact_id": 777777, "kind": "note"})

    assert fields(response) == {"contact_id": ["no contact with id 777777"]}


def test_patch_marks_a_task_done_and_keeps_the_rest(api: Any) -> None:
    task = actions.log_activity(make_contact(), {"kind": "task", "subject": "Send proposal"})

    response = api("patch", f"/api/v1/activities/{task.pk}", {"done": True})

    assert response.status_code == 200
    assert (response.json()["done"], response.json()["subject"]) == (True, "Send proposal")


def test_an_activity_cannot_move_to_another_contact(api: Any) -> None:
    note = actions.log_activity(make_contact(), {"kind": "note"})

    response = api("patch", f"/api/v1/activities/{note.pk}", {"contact_id": make_contact().pk})

    assert fields(response) == {"contact_id": ["Extra inputs are not permitted"]}


def test_delete_removes_the_activity(api: Any) -> None:
    note = actions.log_activity(make_contact(), {"kind": "note"})

    response = api("delete", f"/api/v1/activities/{note.pk}")

    assert response.status_code == 204
    assert api("get", f"/api/v1/activities/{note.pk}").status_code == 404
    assert not Activity.objects.exists()


def test_list_filters_by_contact_kind_done_and_due_date(api: Any) -> None:
    ana, luis = make_contact(), make_contact()
    call = actions.log_activity(ana, {"kind": "call", "occurred_at": T0})
    overdue = actions.log_activity(ana, {"kind": "task", "due_at": T0, "occurred_at": T0})
    later = actions.log_activity(
        ana, {"kind": "task", "due_at": T0 + dt.timedelta(days=5), "occurred_at": T0}
    )
    finished = actions.log_activity(
        ana, {"kind": "task", "due_at": T0, "done": True, "occurred_at": T0}
    )
    other = actions.log_activity(luis, {"kind": "call", "occurred_at": T0})

    def ids(query: str) -> set[int]:
        return {a["id"] for a in api("get", f"/api/v1/activities?{query}").json()["items"]}

    assert ids(f"contact={luis.pk}") == {other.pk}
    assert ids("kind=call") == {call.pk, other.pk}
    assert ids("kind=task&done=false") == {overdue.pk, later.pk}
    assert ids("done=true") == {finished.pk}
    assert ids("due_before=2026-04-07T00:00:00Z&done=false") == {overdue.pk}


def test_list_is_most_recent_first_and_pages(api: Any) -> None:
    contact = make_contact()
    made = [
        actions.log_activity(contact, {"kind": "note", "occurred_at": T0 + dt.timedelta(hours=h)})
        for h in range(5)
    ]

    first = api("get", "/api/v1/activities?limit=3").json()
    second = api("get", first["next"]).json()

    assert [a["id"] for a in first["items"] + second["items"]] == [a.pk for a in made[::-1]]
    assert (first["count"], second["next"]) == (5, None)


@pytest.mark.parametrize("query", ["kind=fax", "done=maybe", "due_before=soon", "contacts=1"])
def test_bad_list_parameters_are_a_422(api: Any, query: str) -> None:
    assert query.split("=")[0] in fields(api("get", f"/api/v1/activities?{query}"))


def test_list_page_query_count_does_not_grow_with_the_page(
    client: Client, logged_in: Any, django_assert_max_num_queries: Any
) -> None:
    rep = logged_in("sales")
    actor = make_user("sales")
    for _ in range(20):
        actions.log_activity(make_contact(owner_id=rep.pk), {"kind": "note"}, actor=actor)
    client.get("/api/v1/activities?limit=1")

    with django_assert_max_num_queries(10) as small:
        client.get("/api/v1/activities?limit=1")
    with django_assert_max_num_queries(10) as full:
        page = client.get("/api/v1/activities?limit=20").json()

    assert len(page["items"]) == 20
    assert all(a["actor"]["id"] == actor.pk for a in page["items"])
    assert len(full.captured_queries) == len(small.captured_queries)
