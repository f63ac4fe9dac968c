"""The contacts API: create, read, change, delete, merge, history, paging and filters."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.crm import actions
from embudo.crm.models import Activity, Contact, LifecycleTransition
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(client: Client) -> Any:
    """Calls the API with a read-write key: ``api("post", "/api/v1/contacts", {...})``."""
    secret = create_api_key("tests", ["write"], created_by=make_user("admin")).secret

    def send(method: str, url: str, body: Any = None, *, raw: str | None = None) -> Any:
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return getattr(client, method)(
            url, data=data, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
        )

    return send


def fields(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == "validation_error"
    return response.json()["error"]["fields"]


# -- create -------------------------------------------------------------------------------------


def test_created_contact_is_returned_and_its_first_stage_recorded_with_cause_api(api: Any) -> None:
    company = make_company(name="Acme")

    response = api(
        "post",
        "/api/v1/contacts",
        {
            "email": "Ana.Ruiz@Example.COM",
            "first_name": "Ana",
            "last_name": "Ruiz",
            "company_id": company.pk,
            "lifecycle_stage": "lead",
        },
    )

    assert response.status_code == 201
    body = response.json()
    assert body["email"] == "ana.ruiz@example.com"
    assert body["full_name"] == "Ana Ruiz"
    assert body["company"] == {"id": company.pk, "name": "Acme"}
    assert body["lifecycle_stage"] == "lead"
    history = api("get", f"/api/v1/contacts/{body['id']}/history").json()["items"]
    assert [(h["from_stage"], h["to_stage"], h["cause"]) for h in history] == [("", "lead", "api")]


def test_unknown_field_is_a_422_naming_it_and_nothing_is_stored(api: Any) -> None:
    response = api("post", "/api/v1/contacts", {"emial": "typo@example.com"})

    assert fields(response) == {"emial": ["Extra inputs are not permitted"]}
    assert Contact.objects.count() == 0


def test_wrong_types_are_a_422_per_field(api: Any) -> None:
    response = api("post", "/api/v1/contacts", {"first_name": 42, "company_id": "acme"})

    errors = fields(response)
    assert errors["first_name"] == ["Input should be a valid string"]
    assert "valid integer" in errors["company_id"][0]
    assert Contact.objects.count() == 0


def test_invalid_email_is_a_422(api: Any) -> None:
    response = api("post", "/api/v1/contacts", {"email": "not-an-address"})

    assert fields(response) == {"email": ["'not-an-address' is not a valid email address"]}


def test_duplicate_email_is_a_422_whatever_the_case(api: Any) -> None:
    make_contact(email="dup@example.com")

    response = api("post", "/api/v1/contacts", {"email": "DUP@example.com"})

    assert fields(response) == {"email": ["another contact already has the email dup@example.com"]}
    assert Contact.objects.count() == 1


def test_unknown_stage_is_a_422_listing_the_stages(api: Any) -> None:
    response = api("post", "/api/v1/contacts", {"lifecycle_stage": "hot"})

    message = fields(response)["lifecycle_stage"][0]
    assert "'subscriber'" in message and "'evangelist'" in message


def test_invalid_json_body_is_a_400_saying_so(api: Any) -> None:
    response = api("post", "/api/v1/contacts", raw='{"email": "a@example.com",}')

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "bad_request"
    assert error["message"].startswith("the request body is not valid JSON")
    assert "line 1" in error["message"]
    assert Contact.objects.count() == 0


def test_body_that_is_not_an_object_is_a_422(api: Any) -> None:
    response = api("post", "/api/v1/contacts", raw='["a@example.com"]')

    assert "body" in fields(response)


def test_owner_must_be_an_active_user(api: Any) -> None:
    response = api("post", "/api/v1/contacts", {"owner_id": 987654})

    assert fields(response) == {"owner_id": ["no active user with id 987654"]}


# -- read ---------------------------------------------------------------------------------------


def test_get_returns_the_contact_with_owner_and_properties(api: Any) -> None:
    owner = make_user("sales", first_name="Rosa", last_name="Paz")
    actions.define_property("contact", "plan", "text")
    contact = make_contact(owner_id=owner.pk, properties={"plan": "pro"})

    body = api("get", f"/api/v1/contacts/{contact.pk}").json()

    assert body["owner"] == {"id": owner.pk, "username": owner.username, "name": "Rosa Paz"}
    assert body["properties"] == {"plan": "pro"}


def test_unknown_contact_is_a_404(api: Any) -> None:
    response = api("get", "/api/v1/contacts/999999")

    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "no contact with id 999999"}


# -- update -------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(api: Any) -> None:
    contact = make_contact(first_name="Ana", last_name="Ruiz", job_title="CTO")

    response = api("patch", f"/api/v1/contacts/{contact.pk}", {"job_title": "CEO"})

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.first_name, contact.last_name, contact.job_title) == ("Ana", "Ruiz", "CEO")


def test_patch_merges_custom_properties_and_null_removes_one(api: Any) -> None:
    actions.define_property("contact", "plan", "choice", choices=["free", "pro"])
    actions.define_property("contact", "seats", "number")
    contact = make_contact(properties={"plan": "free", "seats": 3})

    response = api(
        "patch", f"/api/v1/contacts/{contact.pk}", {"properties": {"plan": "pro", "seats": None}}
    )

    assert response.json()["properties"] == {"plan": "pro"}


def test_patch_with_undefined_or_badly_typed_property_is_a_422(api: Any) -> None:
    actions.define_property("contact", "seats", "number")
    contact = make_contact(properties={"seats": 3})

    response = api(
        "patch",
        f"/api/v1/contacts/{contact.pk}",
        {"properties": {"seats": "many", "colour": "red"}},
    )

    errors = fields(response)
    assert errors["properties.seats"] == ["'many' is not a number"]
    assert errors["properties.colour"] == ["no custom property named 'colour' is defined"]
    contact.refresh_from_db()
    assert contact.properties == {"seats": 3}


def test_stage_change_through_the_api_shows_in_history_with_cause_api(
    client: Client, logged_in: Any
) -> None:
    user = logged_in("marketing")
    contact = make_contact(lifecycle_stage="lead")

    client.patch(
        f"/api/v1/contacts/{contact.pk}",
        json.dumps({"lifecycle_stage": "mql"}),
        content_type="application/json",
    )

    history = client.get(f"/api/v1/contacts/{contact.pk}/history").json()["items"]
    assert [(h["from_stage"], h["to_stage"], h["cause"]) for h in history] == [
        ("", "lead", "manual"),
        ("lead", "mql", "api"),
    ]
    assert history[-1]["actor"]["id"] == user.pk


def test_duplicate_email_on_patch_is_a_422_and_nothing_changes(api: Any) -> None:
    make_contact(email="taken@example.com")
    contact = make_contact(email="mine@example.com", first_name="Ana")

    response = api(
        "patch",
        f"/api/v1/contacts/{contact.pk}",
        {"email": "taken@example.com", "first_name": "Eva"},
    )

    assert "email" in fields(response)
    contact.refresh_from_db()
    assert (contact.email, contact.first_name) == ("mine@example.com", "Ana")


# -- delete -------------------------------------------------------------------------------------


def test_delete_removes_the_contact_and_its_activities(api: Any) -> None:
    contact = make_contact()
    actions.log_activity(contact, {"kind": "note", "subject": "hello"})

    response = api("delete", f"/api/v1/contacts/{contact.pk}")

    assert response.status_code == 204
    assert api("get", f"/api/v1/contacts/{contact.pk}").status_code == 404
    assert not Activity.objects.filter(contact_id=contact.pk).exists()


# -- merge --------------------------------------------------------------------------------------


def test_merge_folds_the_duplicate_into_the_contact(api: Any) -> None:
    primary = make_contact(email="ana@example.com", phone="", lifecycle_stage="lead")
    duplicate = make_contact(email="ana.ruiz@example.com", phone="+34 600", lifecycle_stage="sql")
    actions.log_activity(duplicate, {"kind": "call", "subject": "first call"})

    response = api("post", f"/api/v1/contacts/{primary.pk}/merge", {"duplicate_id": duplicate.pk})

    assert response.status_code == 200
    body = response.json()
    assert body["phone"] == "+34 600"
    assert body["lifecycle_stage"] == "sql"
    assert api("get", f"/api/v1/contacts/{duplicate.pk}").status_code == 404
    activities = api("get", f"/api/v1/contacts/{primary.pk}/activities").json()["items"]
    assert [a["subject"] for a in activities] == ["first call"]
    history = api("get", f"/api/v1/contacts/{primary.pk}/history").json()["items"]
    assert history[-1]["cause"] == "merge"


def test_merge_with_unknown_duplicate_or_itself_is_a_422(api: Any) -> None:
    contact = make_contact()

    unknown = api("post", f"/api/v1/contacts/{contact.pk}/merge", {"duplicate_id": 999999})
    itself = api("post", f"/api/v1/contacts/{contact.pk}/merge", {"duplicate_id": contact.pk})

    assert fields(unknown) == {"duplicate_id": ["no contact with id 999999"]}
    assert "merged into itself" in fields(itself)["duplicate"][0]
    assert Contact.objects.filter(pk=contact.pk).exists()


# -- paging -------------------------------------------------------------------------------------


def test_following_next_walks_every_contact_once_newest_first(api: Any) -> None:
    ids = [make_contact().pk for _ in range(23)]

    seen: list[int] = []
    url: str | None = "/api/v1/contacts?limit=10"
    pages = 0
    while url:
        page = api("get", url).json()
        assert page["count"] == 23
        seen += [item["id"] for item in page["items"]]
        url = page["next"]
        pages += 1

    assert seen == sorted(ids, reverse=True)
    assert pages == 3


def test_next_link_keeps_the_filters(api: Any) -> None:
    for _ in range(3):
        make_contact(lifecycle_stage="mql")
    make_contact(lifecycle_stage="lead")

    first = api("get", "/api/v1/contacts?stage=mql&limit=2").json()
    second = api("get", first["next"]).json()

    assert first["next"].startswith("http://testserver/api/v1/contacts?")
    assert "stage=mql" in first["next"]
    assert len(second["items"]) == 1 and second["next"] is None
    assert second["count"] == 3


def test_offset_skips_contacts(api: Any) -> None:
    ids = sorted((make_contact().pk for _ in range(5)), reverse=True)

    page = api("get", "/api/v1/contacts?limit=2&offset=3").json()

    assert [item["id"] for item in page["items"]] == ids[3:5]
    assert page["next"] is None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=501", "limit"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
        ("cursor=nonsense", "cursor"),
        ("stage=hot", "stage"),
        ("owner=someone", "owner"),
        ("updated_since=yesterday", "updated_since"),
        ("stgae=mql", "stgae"),
    ],
)
def test_bad_list_parameters_are_a_422_naming_them(api: Any, query: str, field: str) -> None:
    response = api("get", f"/api/v1/contacts?{query}")

    assert field in fields(response)


def test_default_page_is_fifty(api: Any) -> None:
    Contact.objects.bulk_create(Contact(email=f"bulk{n}@example.com") for n in range(60))

    page = api("get", "/api/v1/contacts").json()

    assert len(page["items"]) == 50
    assert page["count"] == 60
    assert page["next"] is not None


# -- filters ------------------------------------------------------------------------------------


def test_filter_by_stage(api: Any) -> None:
    mql = make_contact(lifecycle_stage="mql")
    make_contact(lifecycle_stage="lead")

    items = api("get", "/api/v1/contacts?stage=mql").json()["items"]

    assert [item["id"] for item in items] == [mql.pk]


def test_filter_by_owner_id_me_and_none(client: Client, logged_in: Any) -> None:
    me = logged_in("sales_manager")
    rep = make_user("sales")
    mine, theirs, nobodys = (
        make_contact(owner_id=me.pk),
        make_contact(owner_id=rep.pk),
        make_contact(),
    )

    def ids(owner: str) -> list[int]:
        return [
            item["id"] for item in client.get(f"/api/v1/contacts?owner={owner}").json()["items"]
        ]

    assert ids("me") == [mine.pk]
    assert ids(str(rep.pk)) == [theirs.pk]
    assert ids("none") == [nobodys.pk]


def test_owner_me_with_an_api_key_is_a_422(api: Any) -> None:
    response = api("get", "/api/v1/contacts?owner=me")

    assert "an API key owns no contacts" in fields(response)["owner"][0]


def test_filter_by_company(api: Any) -> None:
    acme = make_company(name="Acme")
    at_acme = make_contact(company_id=acme.pk)
    make_contact(company_id=make_company().pk)

    items = api("get", f"/api/v1/contacts?company={acme.pk}").json()["items"]

    assert [item["id"] for item in items] == [at_acme.pk]


def test_search_by_name_or_email_prefix(api: Any) -> None:
    ana = make_contact(first_name="Ana", last_name="Ruiz", email="ana@ruiz.example")
    luis = make_contact(first_name="Luis", last_name="Anaya", email="luis@example.com")
    make_contact(first_name="Eva", last_name="Gil", email="eva@example.com")

    def ids(term: str) -> set[int]:
        return {
            item["id"] for item in api("get", f"/api/v1/contacts?search={term}").json()["items"]
        }

    assert ids("ana") == {ana.pk, luis.pk}
    assert ids("Ana%20Ru") == {ana.pk}
    assert ids("luis@") == {luis.pk}


def test_updated_since_returns_contacts_changed_at_or_after(api: Any) -> None:
    t0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    old = make_contact(at=t0 - dt.timedelta(days=2))
    recent = make_contact(at=t0 + dt.timedelta(hours=1))
    api("patch", f"/api/v1/contacts/{old.pk}", {"job_title": "Changed now"})
    untouched = make_contact(at=t0 - dt.timedelta(days=1))

    items = api("get", "/api/v1/contacts?updated_since=2026-03-01T12:00:00Z").json()["items"]

    ids = {item["id"] for item in items}
    assert ids == {old.pk, recent.pk}
    assert untouched.pk not in ids


def test_filters_combine(api: Any) -> None:
    acme = make_company()
    wanted = make_contact(company_id=acme.pk, lifecycle_stage="sql", first_name="Zoe")
    make_contact(company_id=acme.pk, lifecycle_stage="lead", first_name="Zoe")
    make_contact(lifecycle_stage="sql", first_name="Zoe")

    items = api("get", f"/api/v1/contacts?company={acme.pk}&stage=sql&search=zo").json()["items"]

    assert [item["id"] for item in items] == [wanted.pk]


# -- database work ------------------------------------------------------------------------------


def test_list_page_query_count_does_not_grow_with_the_page(
    api: Any, django_assert_max_num_queries: Any
) -> None:
    owners = [make_user("sales") for _ in range(3)]
    companies = [make_company() for _ in range(4)]
    for n in range(60):
        make_contact(owner_id=owners[n % 3].pk, company_id=companies[n % 4].pk)
    api("get", "/api/v1/contacts?limit=1")  # warm up: the key's last-used stamp

    with django_assert_max_num_queries(3) as small:
        api("get", "/api/v1/contacts?limit=1")
    with django_assert_max_num_queries(3) as full:
        page = api("get", "/api/v1/contacts?limit=50").json()

    assert len(page["items"]) == 50
    assert all(item["owner"] and item["company"] for item in page["items"])
    assert len(full.captured_queries) == len(small.captured_queries)


def test_history_lists_every_move_oldest_first(api: Any) -> None:
    contact = make_contact(lifecycle_stage="lead")
    actions.set_lifecycle_stage(contact, "mql", cause="rule")
    actions.set_lifecycle_stage(contact, "lead", cause="feedback", note="not ready")

    history = api("get", f"/api/v1/contacts/{contact.pk}/history").json()["items"]

    assert [(h["to_stage"], h["cause"], h["note"]) for h in history] == [
        ("lead", "manual", ""),
        ("mql", "rule", ""),
        ("lead", "feedback", "not ready"),
    ]
    assert LifecycleTransition.objects.filter(contact=contact).count() == 3


# -- custom property definitions ----------------------------------------------------------------


def test_property_definitions_are_listed_by_object_type(api: Any) -> None:
    actions.define_property("contact", "Plan", "choice", choices=["free", "pro"])
    actions.define_property("company", "Tier", "text")

    everything = api("get", "/api/v1/properties").json()["items"]
    contact_only = api("get", "/api/v1/properties?object_type=contact").json()["items"]

    assert {(p["object_type"], p["name"]) for p in everything} == {
        ("contact", "plan"),
        ("company", "tier"),
    }
    assert contact_only == [
        {
            "id": contact_only[0]["id"],
            "object_type": "contact",
            "name": "plan",
            "label": "Plan",
            "type": "choice",
            "choices": ["free", "pro"],
        }
    ]


def test_defining_a_property_with_a_bad_type_is_a_422(client: Client, logged_in: Any) -> None:
    logged_in("admin")

    response = client.post(
        "/api/v1/properties",
        json.dumps({"object_type": "contact", "name": "Size", "type": "colour"}),
        content_type="application/json",
    )

    assert "type" in fields(response)


def test_stage_may_be_left_out_but_not_sent_as_null(api: Any) -> None:
    contact = make_contact(lifecycle_stage="lead")

    response = api("patch", f"/api/v1/contacts/{contact.pk}", {"lifecycle_stage": None})

    assert "lifecycle_stage" in fields(response)
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"
