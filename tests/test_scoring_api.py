"""The scoring API: models and rules per role, clear 4xx answers, and scores as of now."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time

from embudo.accounts.actions import create_api_key
from embudo.scoring.models import ScoreRule, ScoringModel
from tests.factories import event_rule, fit_rule, make_contact, make_scoring_model, make_user

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def only_scoring_reacts(only_reactions: Any) -> None:
    only_reactions("rescore")


def send(client: Client, method: str, url: str, body: Any = None, **headers: Any) -> Any:
    return getattr(client, method)(
        url,
        data=json.dumps(body) if body is not None else None,
        content_type="application/json",
        **headers,
    )


def test_marketing_creates_a_model_with_rules_and_reads_them_back(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")
    created = send(
        client,
        "post",
        "/api/v1/scoring/models",
        {"key": "saas", "name": "SaaS buyers", "half_life_days": 14, "mql_total": 60},
    )
    assert created.status_code == 201, created.json()
    assert created.json()["status"] == "rescoring"

    rule = send(
        client,
        "post",
        "/api/v1/scoring/models/saas/rules",
        fit_rule("company.employees", "gte", 200, 20, name="Mid-market or bigger"),
    )
    assert rule.status_code == 201, rule.json()
    assert rule.json()["condition_text"] == "company.employees >= 200"
    event = send(
        client,
        "post",
        "/api/v1/scoring/models/saas/rules",
        event_rule(
            {
                "type": "page_view",
                "where": [{"field": "url", "op": "contains", "value": "/pricing"}],
            },
            5,
            repeatable=True,
            max_points=20,
            name="Pricing visits",
        ),
    )
    assert event.status_code == 201, event.json()

    listed = client.get("/api/v1/scoring/models/saas/rules").json()
    assert [(r["name"], r["points"]) for r in listed] == [
        ("Mid-market or bigger", 20),
        ("Pricing visits", 5),
    ]
    assert client.get("/api/v1/scoring/models").json()["models"][0]["key"] == "saas"


def test_a_bad_rule_is_refused_naming_the_wrong_part(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    make_scoring_model(key="main")
    unknown_field = send(
        client,
        "post",
        "/api/v1/scoring/models/main/rules",
        fit_rule("shoe_size", "gt", 40, 10),
    )
    assert unknown_field.status_code == 422
    assert "shoe_size" in unknown_field.json()["error"]["fields"]["condition"][0]
    wrong = send(
        client,
        "post",
        "/api/v1/scoring/models/main/rules",
        {
            "kind": "fit",
            "name": "x",
            "condition": {"field": "job_title", "op": "eq", "value": "a"},
            "points": 0,
            "repeatable": True,
        },
    )
    assert wrong.status_code == 422
    assert set(wrong.json()["error"]["fields"]) == {"points", "repeatable"}
    unknown_key = send(client, "post", "/api/v1/scoring/models/main/rules", {"pionts": 3})
    assert unknown_key.status_code == 422
    assert ScoreRule.objects.count() == 0


def test_replacing_rules_is_all_or_nothing(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    model = make_scoring_model([fit_rule("job_title", "eq", "CTO", 10)], key="main")
    bad = send(
        client,
        "put",
        "/api/v1/scoring/models/main/rules",
        {"rules": [fit_rule("job_title", "eq", "CEO", 15), event_rule({"type": 7}, 5)]},
    )
    assert bad.status_code == 422
    assert list(bad.json()["error"]["fields"]) == ["rules.1.condition"]
    assert list(model.rules.values_list("points", flat=True)) == [10]


def test_bad_model_settings_are_refused(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    make_scoring_model(key="main")
    bands = send(client, "patch", "/api/v1/scoring/models/main", {"band_a": 10, "band_b": 20})
    assert bands.status_code == 422
    assert "band_a" in bands.json()["error"]["fields"]
    duplicate = send(client, "post", "/api/v1/scoring/models", {"key": "main", "name": "Again"})
    assert duplicate.status_code == 422
    assert client.get("/api/v1/scoring/models/nope").status_code == 404
    assert client.get("/api/v1/scoring/models/nope").json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [
        ("admin", 200, 201),
        ("marketing", 200, 201),
        ("sales_manager", 200, 403),
        ("sales", 403, 403),
    ],
)
def test_who_may_read_and_change_scoring(
    client: Client, logged_in: Any, role: str, read: int, write: int
) -> None:
    make_scoring_model(key="main")
    logged_in(role)
    assert client.get("/api/v1/scoring/models").status_code == read
    assert client.get("/api/v1/scoring/models/main/rules").status_code == read
    response = send(
        client, "post", "/api/v1/scoring/models/main/rules", fit_rule("job_title", "eq", "CTO", 5)
    )
    assert response.status_code == write
    if write == 403:
        assert response.json()["error"]["code"] == "forbidden"


def test_without_credentials_the_api_answers_401(client: Client, db: Any) -> None:
    response = client.get("/api/v1/scoring/models")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_read_key_reads_and_cannot_change(client: Client) -> None:
    make_scoring_model(key="main")
    reader = create_api_key("bi", ["read"], created_by=make_user("admin")).secret
    auth = {"HTTP_AUTHORIZATION": f"Bearer {reader}"}
    assert client.get("/api/v1/scoring/models", **auth).status_code == 200
    refused = send(client, "patch", "/api/v1/scoring/models/main", {"half_life_days": 3}, **auth)
    assert refused.status_code == 403


def test_an_event_sent_to_the_api_updates_the_score_in_the_same_request(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time(T0):
        make_scoring_model(
            [fit_rule("job_title", "eq", "CTO", 20), event_rule("demo_request", 30)], key="main"
        )
        contact = make_contact(job_title="CTO")
        key = create_api_key("site", ["ingest", "read"], created_by=make_user("admin")).secret
        auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
        with django_capture_on_commit_callbacks(execute=True):
            sent = send(
                client,
                "post",
                "/api/v1/events",
                {"type": "demo_request", "contact_id": contact.pk, "occurred_at": T0.isoformat()},
                **auth,
            )
        assert sent.status_code in (200, 202), sent.json()
        scores = client.get(f"/api/v1/contacts/{contact.pk}/scores", **auth).json()["scores"]

    assert scores[0]["fit"] == 20
    assert scores[0]["engagement"] == pytest.approx(30)
    assert scores[0]["band"] == "B"
    assert {r["rule"] for r in scores[0]["reasons"]} == {"job_title eq CTO", "did demo_request"}
    with freeze_time(T0 + dt.timedelta(days=10)):
        later = client.get(f"/api/v1/contacts/{contact.pk}/scores", **auth).json()["scores"][0]
    assert later["engagement"] == pytest.approx(15, abs=0.01)
    history = client.get(f"/api/v1/contacts/{contact.pk}/score-history", **auth).json()
    assert [h["cause"] for h in history["history"]] == ["event"]


def test_a_sales_rep_sees_scores_only_of_contacts_they_may_see(
    client: Client, logged_in: Any
) -> None:
    make_scoring_model(key="main")
    rep = logged_in("sales")
    theirs = make_contact(owner_id=rep.pk)
    someone_elses = make_contact(owner_id=make_user("sales").pk)
    assert client.get(f"/api/v1/contacts/{theirs.pk}/scores").status_code == 200
    assert client.get(f"/api/v1/contacts/{someone_elses.pk}/scores").status_code == 404
    assert client.get(f"/api/v1/contacts/{theirs.pk}/score-history?limit=0").status_code == 422


def test_deleting_a_model_removes_it(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    make_scoring_model(key="main")
    assert client.delete("/api/v1/scoring/models/main").status_code == 204
    assert not ScoringModel.objects.exists()
