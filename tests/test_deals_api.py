"""The deals API per role and per key scope: marketing sees no deal, reps see their own and
unassigned ones, managers all; writes go through the actions with cause `api`."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from embudo.accounts.actions import create_api_key
from embudo.deals import actions
from embudo.deals.models import Deal, LostReason, Stage
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, url: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data=data, content_type="application/json", **headers)


def new_deal(owner: Any = None, **data: Any) -> Deal:
    values = {"name": "Acme", "amount": "1000", "expected_close_date": "2026-06-30", **data}
    if owner is not None:
        values["owner_id"] = owner.pk
    return actions.create_deal(values)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("get", "/api/v1/deals"),
        ("post", "/api/v1/deals"),
        ("get", "/api/v1/deals/{id}"),
        ("patch", "/api/v1/deals/{id}"),
        ("post", "/api/v1/deals/{id}/move"),
        ("post", "/api/v1/deals/{id}/win"),
        ("get", "/api/v1/deals/{id}/history"),
        ("get", "/api/v1/reports/forecast"),
        ("get", "/api/v1/reports/sales"),
    ],
)
def test_marketing_gets_403_on_every_deal_endpoint(
    client: Client, logged_in: Any, method: str, url: str
) -> None:
    deal = new_deal()
    logged_in("marketing")

    body = {"stage_id": deal.stage_id} if url.endswith("/move") else {}
    response = call(client, method, url.format(id=deal.pk), body if method != "get" else None)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert Deal.objects.get(pk=deal.pk).stage.name == "Qualified"


def test_marketing_reads_the_plan_and_goals(client: Client, logged_in: Any) -> None:
    logged_in("marketing")

    plan = call(client, "get", "/api/v1/plan?revenue=20000&deal_value=2000&rate=lead:customer=0.05")
    goals = call(client, "get", "/api/v1/goals")

    assert plan.status_code == 200
    assert plan.json()["deals_needed"] == 10
    assert {s["stage"]: s["needed"] for s in plan.json()["steps"]}["lead"] == 200
    assert goals.status_code == 200
    assert (
        call(client, "put", "/api/v1/goals", {"period": "2026-05", "amount": 1}).status_code == 403
    )


def test_a_rep_sees_own_and_unassigned_deals_only(client: Client, logged_in: Any) -> None:
    other = make_user("sales")
    rep = logged_in("sales")
    mine = new_deal(owner=rep, name="Mine")
    unassigned = new_deal(name="Open to all")
    theirs = new_deal(owner=other, name="Theirs")

    listed = call(client, "get", "/api/v1/deals").json()

    assert {d["name"] for d in listed["items"]} == {"Mine", "Open to all"}
    assert listed["count"] == 2
    assert call(client, "get", f"/api/v1/deals/{theirs.pk}").status_code == 404
    assert call(client, "get", f"/api/v1/deals/{mine.pk}").status_code == 200
    assert call(client, "get", f"/api/v1/deals/{unassigned.pk}").status_code == 200
    moved = call(client, "post", f"/api/v1/deals/{theirs.pk}/win")
    assert moved.status_code == 404
    assert Deal.objects.get(pk=theirs.pk).status == "open"


def test_a_manager_sees_every_deal(client: Client, logged_in: Any) -> None:
    new_deal(owner=make_user("sales"))
    new_deal(owner=make_user("sales"))
    logged_in("sales_manager")

    assert call(client, "get", "/api/v1/deals").json()["count"] == 2


def test_a_rep_creates_a_deal_they_own_and_its_contacts_become_opportunities(
    client: Client, logged_in: Any
) -> None:
    rep = logged_in("sales")
    contact = make_contact(lifecycle_stage="sql", owner_id=rep.pk)

    response = call(
        client,
        "post",
        "/api/v1/deals",
        {
            "name": "Globex",
            "amount": "2500.00",
            "expected_close_date": "2026-07-15",
            "contact_ids": [contact.pk],
        },
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"]["id"] == rep.pk
    assert body["amount"] == 2500.0
    assert body["stage"]["name"] == "Qualified"
    assert body["contact_ids"] == [contact.pk]
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "opportunity"
    assert contact.transitions.order_by("-id").first().cause == "api"  # type: ignore[union-attr]


def test_a_rep_cannot_put_another_reps_contact_on_a_deal(client: Client, logged_in: Any) -> None:
    logged_in("sales")
    foreign = make_contact(lifecycle_stage="lead", owner_id=make_user("sales").pk)

    response = call(
        client,
        "post",
        "/api/v1/deals",
        {
            "name": "X",
            "amount": 1,
            "expected_close_date": "2026-07-15",
            "contact_ids": [foreign.pk],
        },
    )

    assert response.status_code == 422
    assert "contact_ids" in response.json()["error"]["fields"]
    assert not Deal.objects.exists()


def test_bad_deal_input_is_a_422_naming_each_field(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")

    response = call(
        client,
        "post",
        "/api/v1/deals",
        {"name": "", "amount": "-3", "currency": "USD", "expected_close_date": "2026-07-15"},
    )

    assert response.status_code == 422
    fields = response.json()["error"]["fields"]
    assert set(fields) >= {"name", "amount", "currency"}
    assert "no exchange rate from USD" in fields["currency"][0]
    assert not Deal.objects.exists()


def test_unknown_field_is_refused(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")

    response = call(client, "post", "/api/v1/deals", {"name": "X", "amout": 5})

    assert response.status_code == 422
    assert "amout" in response.json()["error"]["fields"]


def test_moving_to_a_lost_stage_needs_a_reason_then_takes_it(
    client: Client, logged_in: Any
) -> None:
    rep = logged_in("sales")
    deal = new_deal(owner=rep)
    lost = Stage.objects.get(pipeline=deal.pipeline, kind="lost")
    reason = LostReason.objects.get(name="No budget")

    refused = call(client, "post", f"/api/v1/deals/{deal.pk}/move", {"stage_id": lost.pk})
    accepted = call(
        client,
        "post",
        f"/api/v1/deals/{deal.pk}/move",
        {"stage_id": lost.pk, "lost_reason_id": reason.pk, "note": "frozen"},
    )

    assert refused.status_code == 422
    assert "lost_reason" in refused.json()["error"]["fields"]
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "lost"
    assert accepted.json()["lost_reason"]["name"] == "No budget"
    history = call(client, "get", f"/api/v1/deals/{deal.pk}/history").json()["items"]
    assert [h["to_stage"]["name"] for h in history] == ["Qualified", "Lost"]
    assert history[-1]["actor"]["id"] == rep.pk


def test_api_keys_work_by_scope(client: Client) -> None:
    reader = create_api_key("bi", ["read"], created_by=make_user("admin")).secret
    writer = create_api_key("sync", ["write"], created_by=make_user("admin")).secret
    deal = new_deal(owner=make_user("sales"))

    assert call(client, "get", "/api/v1/deals", key=reader).json()["count"] == 1
    assert call(client, "post", f"/api/v1/deals/{deal.pk}/win", key=reader).status_code == 403
    won = call(client, "post", f"/api/v1/deals/{deal.pk}/win", key=writer)
    assert won.status_code == 200
    assert won.json()["status"] == "won"
    rate = call(client, "put", "/api/v1/exchange-rates/USD", {"rate": "0.9"}, key=writer)
    assert rate.status_code == 403


def test_only_admins_set_exchange_rates(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")
    assert call(client, "put", "/api/v1/exchange-rates/USD", {"rate": 0.9}).status_code == 403

    logged_in("admin")
    response = call(client, "put", "/api/v1/exchange-rates/usd", {"rate": 0.9})

    assert response.status_code == 200
    assert response.json() == {
        "currency": "USD",
        "rate": 0.9,
        "reporting_currency": "EUR",
        "updated_at": response.json()["updated_at"],
    }


def test_a_manager_sets_a_goal_and_a_bad_one_is_refused(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")

    set_ = call(client, "put", "/api/v1/goals", {"period": "2026-Q3", "amount": "60000"})
    bad = call(client, "put", "/api/v1/goals", {"period": "2026-13", "amount": "100"})
    zero = call(client, "put", "/api/v1/goals", {"period": "2026-07", "amount": "0"})

    assert set_.status_code == 200
    assert set_.json()["period_kind"] == "quarter"
    assert set_.json()["period_start"] == "2026-07-01"
    assert bad.status_code == 422
    assert "month 13 does not exist" in bad.json()["error"]["fields"]["period"][0]
    assert zero.status_code == 422
    assert "greater than zero" in zero.json()["error"]["fields"]["amount"][0]


def test_plan_api_names_a_bad_rate(client: Client, logged_in: Any) -> None:
    logged_in("sales")

    response = call(client, "get", "/api/v1/plan?revenue=20000&deal_value=2000&rate=lead=1.5")

    assert response.status_code == 422
    assert "at most 1" in response.json()["error"]["fields"]["rate"][0]


def test_unknown_report_is_404_listing_the_reports(client: Client, logged_in: Any) -> None:
    logged_in("admin")

    response = call(client, "get", "/api/v1/reports/pipeline-magic")

    assert response.status_code == 404
    assert "forecast" in response.json()["error"]["message"]
    assert "sales" in response.json()["error"]["message"]


def test_report_api_refuses_an_unknown_breakdown(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")

    response = call(client, "get", "/api/v1/reports/forecast?by=product")

    assert response.status_code == 422
    assert "period, owner, team" in response.json()["error"]["fields"]["report"][0]


def test_pipelines_list_the_default_one_with_its_stages(client: Client, logged_in: Any) -> None:
    logged_in("sales")

    pipelines = call(client, "get", "/api/v1/pipelines").json()

    assert [p["name"] for p in pipelines] == ["Sales"]
    assert [s["name"] for s in pipelines[0]["stages"]] == [
        "Qualified",
        "Discovery",
        "Proposal",
        "Negotiation",
        "Won",
        "Lost",
    ]
    assert [s["probability"] for s in pipelines[0]["stages"]] == [0.1, 0.2, 0.5, 0.8, 1.0, 0.0]
