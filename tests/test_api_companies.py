"""The companies API: create, read, change, delete, search, paging and a company's contacts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.crm import actions
from embudo.crm.models import Company, Contact
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db


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


def test_created_company_is_returned_with_its_properties(api: Any) -> None:
    actions.define_property("company", "tier", "choice", choices=["a", "b"])

    response = api(
        "post",
        "/api/v1/companies",
        {"name": "Acme", "domain": "ACME.example", "employees": 120, "properties": {"tier": "a"}},
    )

    assert response.status_code == 201
    body = response.json()
    assert (body["name"], body["domain"], body["employees"]) == ("Acme", "acme.example", 120)
    assert body["properties"] == {"tier": "a"}
    assert api("get", f"/api/v1/companies/{body['id']}").json() == body


def test_company_needs_a_name(api: Any) -> None:
    missing = api("post", "/api/v1/companies", {"domain": "x.example"})
    blank = api("post", "/api/v1/companies", {"name": "   "})

    assert fields(missing) == {"name": ["Field required"]}
    assert fields(blank) == {"name": ["a company needs a name"]}
    assert Company.objects.count() == 0


def test_wrong_types_and_unknown_fields_are_a_422(api: Any) -> None:
    response = api("post", "/api/v1/companies", {"name": "Acme", "employees": "lots", "size": 3})

    errors = fields(response)
    assert "valid integer" in errors["employees"][0]
    assert errors["size"] == ["Extra inputs are not permitted"]


def test_negative_employees_is_a_422(api: Any) -> None:
    response = api("post", "/api/v1/companies", {"name": "Acme", "employees": -1})

    assert "greater than or equal to 0" in fields(response)["employees"][0]


def test_patch_changes_only_the_fields_sent(api: Any) -> None:
    company = make_company(name="Acme", city="Quito", industry="Retail")

    response = api("patch", f"/api/v1/companies/{company.pk}", {"city": "Lima"})

    assert response.status_code == 200
    company.refresh_from_db()
    assert (company.name, company.city, company.industry) == ("Acme", "Lima", "Retail")


def test_patch_with_empty_name_is_a_422(api: Any) -> None:
    company = make_company(name="Acme")

    response = api("patch", f"/api/v1/companies/{company.pk}", {"name": ""})

    assert fields(response) == {"name": ["a company needs a name"]}
    company.refresh_from_db()
    assert company.name == "Acme"


def test_delete_keeps_its_contacts_without_a_company(api: Any) -> None:
    company = make_company()
    contact = make_contact(company_id=company.pk)

    response = api("delete", f"/api/v1/companies/{company.pk}")

    assert response.status_code == 204
    assert api("get", f"/api/v1/companies/{company.pk}").status_code == 404
    contact.refresh_from_db()
    assert contact.company_id is None


def test_unknown_company_is_a_404(api: Any) -> None:
    for method in ("get", "patch", "delete"):
        response = api(method, "/api/v1/companies/424242", {} if method == "patch" else None)
        assert response.status_code == 404
        assert response.json()["error"]["message"] == "no company with id 424242"


def test_list_is_in_name_order_and_pages_with_next(api: Any) -> None:
    for name in ("Delta", "alpha", "Charlie", "Bravo", "echo"):
        make_company(name=name)

    first = api("get", "/api/v1/companies?limit=2").json()
    second = api("get", first["next"]).json()
    third = api("get", second["next"]).json()

    names = [c["name"] for page in (first, second, third) for c in page["items"]]
    assert [n.lower() for n in names] == ["alpha", "bravo", "charlie", "delta", "echo"]
    assert first["count"] == 5
    assert third["next"] is None


def test_search_matches_name_or_domain_prefix(api: Any) -> None:
    acme = make_company(name="Acme Corp", domain="acme.example")
    globex = make_company(name="Globex", domain="acmeglobex.example")
    make_company(name="Initech", domain="initech.example")

    items = api("get", "/api/v1/companies?search=acme").json()["items"]

    assert {c["id"] for c in items} == {acme.pk, globex.pk}


def test_unknown_list_parameter_is_a_422(api: Any) -> None:
    assert "serach" in fields(api("get", "/api/v1/companies?serach=acme"))


def test_company_contacts_lists_only_its_contacts(api: Any) -> None:
    acme = make_company()
    ours = [make_contact(company_id=acme.pk).pk for _ in range(3)]
    make_contact(company_id=make_company().pk)

    page = api("get", f"/api/v1/companies/{acme.pk}/contacts?limit=2").json()
    rest = api("get", page["next"]).json()

    assert page["count"] == 3
    assert [c["id"] for c in page["items"] + rest["items"]] == sorted(ours, reverse=True)


def test_company_contacts_respect_a_sales_reps_visibility(client: Client, logged_in: Any) -> None:
    rep = logged_in("sales")
    acme = make_company()
    mine = make_contact(company_id=acme.pk, owner_id=rep.pk)
    make_contact(company_id=acme.pk, owner_id=make_user("sales").pk)

    page = client.get(f"/api/v1/companies/{acme.pk}/contacts").json()

    assert [c["id"] for c in page["items"]] == [mine.pk]
    assert page["count"] == 1


@pytest.mark.parametrize("role", ["admin", "marketing", "sales_manager"])
def test_roles_with_full_company_rights(client: Client, logged_in: Any, role: str) -> None:
    logged_in(role)

    created = client.post(
        "/api/v1/companies", json.dumps({"name": "Acme"}), content_type="application/json"
    )
    company_id = created.json()["id"]
    listed = client.get("/api/v1/companies")
    changed = client.patch(
        f"/api/v1/companies/{company_id}",
        json.dumps({"country": "PE"}),
        content_type="application/json",
    )
    deleted = client.delete(f"/api/v1/companies/{company_id}")

    assert [created.status_code, listed.status_code, changed.status_code] == [201, 200, 200]
    assert changed.json()["country"] == "PE"
    assert deleted.status_code == 204
    assert not Company.objects.exists()


def test_sales_rep_lists_and_creates_companies(client: Client, logged_in: Any) -> None:
    logged_in("sales")
    make_company(name="Existing")

    created = client.post(
        "/api/v1/companies", json.dumps({"name": "New"}), content_type="application/json"
    )
    listed = client.get("/api/v1/companies").json()

    assert created.status_code == 201
    assert sorted(c["name"] for c in listed["items"]) == ["Existing", "New"]
    assert Contact.objects.count() == 0


def test_list_page_query_count_does_not_grow_with_the_page(
    api: Any, django_assert_max_num_queries: Any
) -> None:
    owners = [make_user("sales") for _ in range(3)]
    for n in range(30):
        make_company(owner_id=owners[n % 3].pk)
    api("get", "/api/v1/companies?limit=1")

    with django_assert_max_num_queries(3) as small:
        api("get", "/api/v1/companies?limit=1")
    with django_assert_max_num_queries(3) as full:
        page = api("get", "/api/v1/companies?limit=30").json()

    assert all(c["owner"] for c in page["items"])
    assert len(full.captured_queries) == len(small.captured_queries)
