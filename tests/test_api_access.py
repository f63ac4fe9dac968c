"""Who may call the CRM API: API keys by scope, users by role, and which contacts each sees."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key, revoke_api_key
from embudo.accounts.models import AuditEntry
from embudo.crm import actions
from embudo.crm.models import Activity, Company, Contact, PropertyDefinition
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


def key(*scopes: str) -> str:
    return create_api_key("integration", scopes, created_by=make_user("admin")).secret


def call(client: Client, method: str, url: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data=data, content_type="application/json", **headers)


# -- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_request_without_credentials_is_401_unauthorized(client: Client, method: str) -> None:
    response = call(client, method, "/api/v1/contacts", {} if method == "post" else None)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert "Authorization: Bearer" in response.json()["error"]["message"]


def test_unknown_key_is_401_unauthorized(client: Client) -> None:
    response = call(client, "get", "/api/v1/contacts", key="emb_000000000000_not-a-real-key")

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "unauthorized",
        "message": "the API key is unknown or revoked",
    }


def test_revoked_key_stops_working(client: Client) -> None:
    issued = create_api_key("old", ["write"], created_by=make_user("admin"))
    assert call(client, "get", "/api/v1/contacts", key=issued.secret).status_code == 200

    revoke_api_key(issued.key)

    response = call(client, "get", "/api/v1/contacts", key=issued.secret)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("get", "/api/v1/contacts", None),
        ("post", "/api/v1/contacts", {"email": "ingest@example.com"}),
        ("get", "/api/v1/companies", None),
        ("get", "/api/v1/activities", None),
        ("get", "/api/v1/properties", None),
    ],
)
def test_ingest_only_key_is_forbidden_on_crm_endpoints(
    client: Client, method: str, url: str, body: Any
) -> None:
    response = call(client, method, url, body, key=key("ingest"))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert (
        "'read'" in response.json()["error"]["message"]
        or "'write'" in (response.json()["error"]["message"])
    )
    assert not Contact.objects.filter(email="ingest@example.com").exists()


def test_read_key_reads_but_cannot_write(client: Client) -> None:
    contact = make_contact(first_name="Ana")
    read = key("read")

    assert call(client, "get", f"/api/v1/contacts/{contact.pk}", key=read).status_code == 200
    created = call(client, "post", "/api/v1/contacts", {"email": "x@example.com"}, key=read)
    changed = call(
        client, "patch", f"/api/v1/contacts/{contact.pk}", {"first_name": "Eva"}, key=read
    )
    deleted = call(client, "delete", f"/api/v1/contacts/{contact.pk}", key=read)

    assert [created.status_code, changed.status_code, deleted.status_code] == [403, 403, 403]
    assert "lacks the 'write' scope" in created.json()["error"]["message"]
    contact.refresh_from_db()
    assert contact.first_name == "Ana"
    assert Contact.objects.count() == 1


def test_write_key_creates_updates_and_deletes(client: Client) -> None:
    write = key("write")

    created = call(client, "post", "/api/v1/contacts", {"email": "new@example.com"}, key=write)
    contact_id = created.json()["id"]
    changed = call(
        client, "patch", f"/api/v1/contacts/{contact_id}", {"first_name": "Nueva"}, key=write
    )
    deleted = call(client, "delete", f"/api/v1/contacts/{contact_id}", key=write)

    assert (created.status_code, changed.status_code, deleted.status_code) == (201, 200, 204)
    assert changed.json()["first_name"] == "Nueva"
    assert not Contact.objects.filter(pk=contact_id).exists()


def test_defining_a_property_needs_the_admin_scope(client: Client) -> None:
    body = {"object_type": "contact", "name": "Plan", "type": "text"}

    refused = call(client, "post", "/api/v1/properties", body, key=key("write"))
    accepted = call(client, "post", "/api/v1/properties", body, key=key("admin"))

    assert refused.status_code == 403
    assert "'admin'" in refused.json()["error"]["message"]
    assert accepted.status_code == 201
    assert accepted.json()["name"] == "plan"
    assert PropertyDefinition.objects.filter(name="plan").count() == 1


def test_api_key_sees_contacts_of_every_owner(client: Client) -> None:
    rep = make_user("sales")
    owned = make_contact(owner_id=rep.pk)
    free = make_contact()

    response = call(client, "get", "/api/v1/contacts", key=key("read"))

    assert {item["id"] for item in response.json()["items"]} == {owned.pk, free.pk}


def test_api_key_writes_are_audited_under_the_keys_creator(client: Client) -> None:
    creator = make_user("admin")
    secret = create_api_key("crm-sync", ["write"], created_by=creator).secret

    response = call(client, "post", "/api/v1/contacts", {"email": "audit@example.com"}, key=secret)

    entry = AuditEntry.objects.get(action="contact.create", object_id=str(response.json()["id"]))
    assert entry.actor == creator


# -- users by role ------------------------------------------------------------------------------

ROLES_WITH_EVERY_CONTACT = ["admin", "marketing", "sales_manager"]


@pytest.mark.parametrize("role", ROLES_WITH_EVERY_CONTACT)
def test_non_sales_roles_list_every_contact(client: Client, logged_in: Any, role: str) -> None:
    rep = make_user("sales")
    contacts = {make_contact(owner_id=rep.pk).pk, make_contact().pk}
    logged_in(role)

    response = client.get("/api/v1/contacts")

    assert response.status_code == 200
    assert {item["id"] for item in response.json()["items"]} == contacts


@pytest.mark.parametrize("role", ROLES_WITH_EVERY_CONTACT)
def test_non_sales_roles_create_update_and_delete_contacts(
    client: Client, logged_in: Any, role: str
) -> None:
    user = logged_in(role)

    created = call(client, "post", "/api/v1/contacts", {"email": f"{role}@example.com"})
    contact_id = created.json()["id"]
    changed = call(client, "patch", f"/api/v1/contacts/{contact_id}", {"lifecycle_stage": "lead"})
    deleted = call(client, "delete", f"/api/v1/contacts/{contact_id}")

    assert (created.status_code, changed.status_code, deleted.status_code) == (201, 200, 204)
    assert changed.json()["lifecycle_stage"] == "lead"
    assert AuditEntry.objects.filter(action="contact.delete", actor=user).exists()
    assert not Contact.objects.filter(pk=contact_id).exists()


def test_sales_rep_lists_own_and_unassigned_contacts_only(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")
    other = make_user("sales")
    mine = make_contact(owner_id=rep.pk)
    unassigned = make_contact()
    make_contact(owner_id=other.pk)

    response = client.get("/api/v1/contacts")

    assert {item["id"] for item in response.json()["items"]} == {mine.pk, unassigned.pk}
    assert response.json()["count"] == 2


def test_sales_rep_gets_404_for_another_reps_contact(client: Client, logged_in: Any) -> None:
    logged_in("sales")
    theirs = make_contact(owner_id=make_user("sales").pk, first_name="Hidden")

    looked = client.get(f"/api/v1/contacts/{theirs.pk}")
    changed = call(client, "patch", f"/api/v1/contacts/{theirs.pk}", {"first_name": "Taken"})
    history = client.get(f"/api/v1/contacts/{theirs.pk}/history")

    assert (looked.status_code, changed.status_code, history.status_code) == (404, 404, 404)
    assert looked.json()["error"]["code"] == "not_found"
    theirs.refresh_from_db()
    assert theirs.first_name == "Hidden"


def test_sales_rep_creates_and_updates_own_contacts(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")

    created = call(
        client, "post", "/api/v1/contacts", {"email": "r@example.com", "owner_id": rep.pk}
    )
    changed = call(
        client, "patch", f"/api/v1/contacts/{created.json()['id']}", {"job_title": "CTO"}
    )

    assert created.status_code == 201
    assert changed.status_code == 200
    assert changed.json()["job_title"] == "CTO"
    assert changed.json()["owner"]["id"] == rep.pk


def test_sales_rep_may_not_delete_contacts(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")
    mine = make_contact(owner_id=rep.pk)

    response = client.delete(f"/api/v1/contacts/{mine.pk}")

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert Contact.objects.filter(pk=mine.pk).exists()


def test_sales_rep_may_not_merge_contacts(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")
    first, second = make_contact(owner_id=rep.pk), make_contact(owner_id=rep.pk)

    response = call(
        client, "post", f"/api/v1/contacts/{first.pk}/merge", {"duplicate_id": second.pk}
    )

    assert response.status_code == 403
    assert Contact.objects.filter(pk=second.pk).exists()


def test_sales_rep_sees_activities_only_on_visible_contacts(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")
    mine = make_contact(owner_id=rep.pk)
    theirs = make_contact(owner_id=make_user("sales").pk)

    visible = actions.log_activity(mine, {"kind": "note", "subject": "mine"})
    hidden = actions.log_activity(theirs, {"kind": "note", "subject": "theirs"})

    listed = client.get("/api/v1/activities")
    looked = client.get(f"/api/v1/activities/{hidden.pk}")
    logged = call(client, "post", "/api/v1/activities", {"contact_id": theirs.pk, "kind": "call"})

    assert [item["id"] for item in listed.json()["items"]] == [visible.pk]
    assert looked.status_code == 404
    assert logged.status_code == 422
    assert logged.json()["error"]["fields"]["contact_id"] == [f"no contact with id {theirs.pk}"]
    assert Activity.objects.filter(contact=theirs).count() == 1


def test_sales_rep_edits_companies_but_may_not_delete_them(client: Client, logged_in: Any) -> None:
    logged_in("sales")
    company = make_company(name="Acme")

    changed = call(client, "patch", f"/api/v1/companies/{company.pk}", {"city": "Lima"})
    deleted = client.delete(f"/api/v1/companies/{company.pk}")

    assert changed.status_code == 200
    assert deleted.status_code == 403
    assert Company.objects.filter(pk=company.pk, city="Lima").exists()


@pytest.mark.parametrize(("role", "status"), [("marketing", 201), ("admin", 201), ("sales", 403)])
def test_marketing_and_admin_define_properties_sales_may_not(
    client: Client, logged_in: Any, role: str, status: int
) -> None:
    logged_in(role)

    response = call(
        client,
        "post",
        "/api/v1/properties",
        {"object_type": "company", "name": "tier", "type": "text"},
    )

    assert response.status_code == status
    assert PropertyDefinition.objects.filter(name="tier").exists() == (status == 201)


def test_session_writes_need_the_csrf_token(logged_in: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    user = logged_in("admin")
    strict.force_login(user)

    refused = strict.post(
        "/api/v1/contacts",
        json.dumps({"email": "csrf@example.com"}),
        content_type="application/json",
    )

    assert refused.status_code == 403
    assert "CSRF token" in refused.json()["error"]["message"]
    assert not Contact.objects.filter(email="csrf@example.com").exists()


def test_session_write_with_the_csrf_token_goes_through(logged_in: Any) -> None:
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(logged_in("admin"))
    strict.get("/api/v1/docs")  # any page that renders a token sets the csrftoken cookie
    token = strict.cookies["csrftoken"].value

    accepted = strict.post(
        "/api/v1/contacts",
        json.dumps({"email": "csrf@example.com"}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    )

    assert accepted.status_code == 201


# -- the API's own description ------------------------------------------------------------------


def test_openapi_schema_describes_the_crm_endpoints(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")

    paths = response.json()["paths"]
    assert response.status_code == 200
    for path in (
        "/api/v1/contacts",
        "/api/v1/contacts/{contact_id}",
        "/api/v1/contacts/{contact_id}/history",
        "/api/v1/contacts/{contact_id}/merge",
        "/api/v1/companies/{company_id}/contacts",
        "/api/v1/activities",
        "/api/v1/properties",
    ):
        assert path in paths


def test_docs_page_loads_its_files_from_embudo_itself(client: Client) -> None:
    response = client.get("/api/v1/docs")

    html = response.content.decode()
    assert response.status_code == 200
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html)
    assets = re.findall(r"(?:src|href)=\"([^\"]+)\"", html)
    assert any(a.endswith("swagger-ui-bundle.js") for a in assets)
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset


def test_sales_rep_paging_walks_own_and_unassigned_contacts_once_newest_first(
    client: Client, logged_in: Any
) -> None:
    rep = logged_in("sales")
    other = make_user("sales")
    visible = []
    for n in range(17):
        owner = (rep.pk, None, other.pk)[n % 3]
        contact = make_contact(owner_id=owner)
        if owner != other.pk:
            visible.append(contact.pk)

    seen: list[int] = []
    url: str | None = "/api/v1/contacts?limit=4"
    while url:
        page = client.get(url).json()
        assert page["count"] == len(visible)
        seen += [item["id"] for item in page["items"]]
        url = page["next"]
    jumped = client.get("/api/v1/contacts?limit=3&offset=5").json()["items"]

    assert seen == sorted(visible, reverse=True)
    assert [item["id"] for item in jumped] == sorted(visible, reverse=True)[5:8]


def test_sales_rep_list_query_count_does_not_grow_with_the_page(
    client: Client, logged_in: Any, django_assert_max_num_queries: Any
) -> None:
    rep = logged_in("sales")
    company = make_company()
    for n in range(60):
        make_contact(owner_id=rep.pk if n % 2 else None, company_id=company.pk)
    client.get("/api/v1/contacts?limit=1")

    with django_assert_max_num_queries(12) as small:
        client.get("/api/v1/contacts?limit=1")
    with django_assert_max_num_queries(12) as full:
        page = client.get("/api/v1/contacts?limit=50").json()

    assert len(page["items"]) == 50
    assert len(full.captured_queries) == len(small.captured_queries)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_docs_page_renders_the_endpoints_with_no_internet(live_server: Any, page: Any) -> None:
    outside: list[str] = []

    def only_embudo(route: Any) -> None:
        if route.request.url.startswith(live_server.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_embudo)
    page.goto(f"{live_server.url}/api/v1/docs")

    page.locator(".opblock-summary-path", has_text="/api/v1/contacts/{contact_id}/merge").wait_for()
    assert page.locator(".opblock").count() >= 20
    assert outside == []
