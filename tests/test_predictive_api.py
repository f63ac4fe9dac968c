"""The predictive API per role and key scope: who reads the report and predictions, who sets
exclusions, who trains; refusals and bad input answer with stable codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.predictive import actions
from tests.factories import make_contact, make_user
from tests.test_predictive import open_contact, world

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, url: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data=data, content_type="application/json", **headers)


@pytest.fixture
def trained() -> Any:
    world()
    contact = open_contact(seats=80, segment="enterprise")
    result = actions.train_model(holdout=0.25, seed=1)
    assert result.ok
    return contact


@pytest.mark.parametrize("role", ["admin", "marketing", "sales_manager"])
def test_planning_roles_read_the_report_and_versions(
    client: Client, logged_in: Any, trained: Any, role: str
) -> None:
    logged_in(role)
    report = call(client, "get", "/api/v1/scoring/predictive/report")
    assert report.status_code == 200
    body = report.json()
    assert body["model"]["version"] == actions.active_model().version  # type: ignore[union-attr]
    assert body["holdout"]["auc"] is not None
    assert len(body["holdout"]["deciles"]) == 10
    versions = call(client, "get", "/api/v1/scoring/predictive/versions").json()
    assert [v["active"] for v in versions] == [True]


def test_a_rep_may_not_read_the_report_but_reads_a_visible_contacts_prediction(
    client: Client, logged_in: Any, trained: Any
) -> None:
    rep = logged_in("sales")
    assert call(client, "get", "/api/v1/scoring/predictive/report").status_code == 403
    # Unassigned: visible to every rep.
    response = call(client, "get", f"/api/v1/contacts/{trained.pk}/prediction")
    assert response.status_code == 200
    body = response.json()
    assert 0 <= body["predicted_conversion"] <= 1
    assert body["reasons"] and body["reasons"][0]["field"]
    # Someone else's contact answers 404, as a missing one.
    other = make_contact(lifecycle_stage="lead", owner_id=make_user("sales").pk)
    actions.score_contacts([other.pk])
    hidden = call(client, "get", f"/api/v1/contacts/{other.pk}/prediction")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "not_found"
    assert rep.pk != other.owner_id


def test_a_contact_without_prediction_answers_no_prediction(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    contact = make_contact(lifecycle_stage="customer")
    response = call(client, "get", f"/api/v1/contacts/{contact.pk}/prediction")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "no_prediction"


def test_exclusions_are_set_by_admin_and_marketing_only(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")
    refused = call(client, "put", "/api/v1/scoring/predictive/exclusions", {"fields": ["seats"]})
    assert refused.status_code == 403
    client.logout()
    logged_in("marketing")
    saved = call(client, "put", "/api/v1/scoring/predictive/exclusions", {"fields": ["seats", " "]})
    assert saved.status_code == 200
    assert saved.json() == {"fields": ["seats"]}
    got = call(client, "get", "/api/v1/scoring/predictive/exclusions").json()
    assert got == {"fields": ["seats"]}
    bad = call(client, "put", "/api/v1/scoring/predictive/exclusions", {"fields": "seats"})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "validation_error"


def test_only_an_admin_trains_and_a_refusal_is_422(client: Client, logged_in: Any) -> None:
    logged_in("marketing")
    assert call(client, "post", "/api/v1/scoring/predictive/train", {}).status_code == 403
    client.logout()
    logged_in("admin")
    refused = call(client, "post", "/api/v1/scoring/predictive/train", {})
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "training_refused"
    bad = call(client, "post", "/api/v1/scoring/predictive/train", {"holdout": 2})
    assert bad.status_code == 422
    world()
    done = call(client, "post", "/api/v1/scoring/predictive/train", {"holdout": 0.25, "seed": 1})
    assert done.status_code == 200
    assert done.json()["ok"] is True
    assert done.json()["version"] == actions.active_model().version  # type: ignore[union-attr]


def test_api_keys_need_the_admin_scope_to_train(client: Client, trained: Any) -> None:
    reader = create_api_key("reader", ["read"]).secret
    admin = create_api_key("ops", ["admin"]).secret
    assert call(client, "get", "/api/v1/scoring/predictive/report", key=reader).status_code == 200
    assert (
        call(client, "post", "/api/v1/scoring/predictive/train", {}, key=reader).status_code == 403
    )
    assert (
        call(
            client, "post", "/api/v1/scoring/predictive/versions/999/activate", key=admin
        ).status_code
        == 404
    )


def test_the_predictive_admin_pages_open_for_an_admin(
    client: Client, logged_in: Any, trained: Any
) -> None:
    logged_in("admin")
    version = actions.active_model().version  # type: ignore[union-attr]
    actions.predictive_settings()
    for url in (
        "/admin/predictive/predictivesettings/",
        "/admin/predictive/predictivemodel/",
        f"/admin/predictive/predictivemodel/{version}/change/",
    ):
        assert client.get(url).status_code == 200, url
