"""Sales' feedback on MQLs (accept, reject, recycle) through the actions and the API, with the
lifecycle history, the errors, and the API per role with its 4xx codes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time

from embudo.accounts.actions import create_api_key
from embudo.crm.models import Contact
from embudo.errors import ValidationFailed
from embudo.handoff import actions
from embudo.handoff.models import Feedback, Handoff, MarketingCommitment, SlaPolicy
from embudo.predictive import features
from tests.factories import (
    make_assignment_rule,
    make_contact,
    make_hours,
    make_reason,
    make_team,
    make_user,
)

pytestmark = pytest.mark.django_db


def call(client: Client, method: str, url: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {key}"} if key else {}
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(url, data=data, content_type="application/json", **headers)


@pytest.fixture
def reasons() -> dict[str, Any]:
    return {
        "bad_fit": make_reason("Bad fit", bad_fit=True),
        "no_budget": make_reason("No budget", disqualifies=False),
        "not_now": make_reason("Not now", verdict="recycled"),
    }


def handed_off(owner: Any = None) -> Contact:
    contact = make_contact(lifecycle_stage="mql", owner_id=owner.pk if owner else None)
    actions.hand_off([contact.pk])
    contact.refresh_from_db()
    return contact


def test_accepting_makes_an_sql_with_a_feedback_transition(reasons: dict[str, Any]) -> None:
    rep = make_user("sales")
    contact = handed_off()
    actions.record_feedback(contact, "accepted", actor=rep)
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.lead_status) == ("sql", "qualified")
    last = contact.transitions.last()
    assert (last.from_stage, last.to_stage, last.cause, last.actor_id) == (
        "mql",
        "sql",
        "feedback",
        rep.pk,
    )
    [feedback] = Feedback.objects.filter(contact=contact)
    assert (feedback.verdict, feedback.from_stage, feedback.to_stage) == ("accepted", "mql", "sql")
    assert Handoff.objects.get(contact=contact).verdict == "accepted"


def test_rejecting_as_bad_fit_disqualifies_with_the_reason_and_note_in_the_history(
    reasons: dict[str, Any],
) -> None:
    contact = handed_off()
    actions.record_feedback(contact, "rejected", reason="bad fit", note="Students only")
    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.lead_status) == ("disqualified", "unqualified")
    last = contact.transitions.last()
    assert last.cause == "feedback" and last.note == "rejected: Bad fit — Students only"
    handoff = Handoff.objects.get(contact=contact)
    assert handoff.reason == reasons["bad_fit"] and not handoff.open


def test_a_reason_that_does_not_disqualify_sends_the_lead_back_to_nurture(
    reasons: dict[str, Any],
) -> None:
    contact = handed_off()
    actions.record_feedback(contact, "rejected", reason=reasons["no_budget"].pk)
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"


def test_the_predictive_model_learns_every_rejection_as_a_negative(
    reasons: dict[str, Any],
) -> None:
    nurtured, disqualified, accepted = handed_off(), handed_off(), handed_off()
    actions.record_feedback(nurtured, "rejected", reason=reasons["no_budget"].pk)
    actions.record_feedback(disqualified, "rejected", reason="bad fit")
    actions.record_feedback(accepted, "accepted")

    outcomes = features.outcomes()

    rejected_at = Feedback.objects.get(contact=nurtured).created_at
    known = dict(zip(outcomes.contact_ids.tolist(), outcomes.labels.tolist(), strict=True))
    assert known == {nurtured.pk: 0, disqualified.pk: 0}
    assert outcomes.at[outcomes.contact_ids.tolist().index(nurtured.pk)] == rejected_at.timestamp()


def test_an_sql_may_still_be_rejected_later(reasons: dict[str, Any]) -> None:
    contact = handed_off()
    actions.record_feedback(contact, "accepted")
    actions.record_feedback(contact, "rejected", reason="Bad fit")
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "disqualified"
    assert list(Feedback.objects.filter(contact=contact).values_list("verdict", flat=True)) == [
        "rejected",
        "accepted",
    ]


@pytest.mark.parametrize(
    ("stage", "verdict", "reason", "field", "message"),
    [
        ("lead", "accepted", None, "contact", "only an MQL or an SQL takes feedback"),
        ("customer", "rejected", "Bad fit", "contact", "is at stage customer"),
        ("mql", "rejected", None, "reason", "needs a reason"),
        ("mql", "recycled", "", "reason", "needs a reason"),
        ("mql", "rejected", "Not now", "reason", "is not a reason to choose when rejected"),
        ("mql", "rejected", "Aliens", "reason", "choose one of: Bad fit, No budget"),
        ("mql", "accepted", "Bad fit", "reason", "an acceptance takes no reason"),
        ("mql", "maybe", None, "verdict", "is not one of accepted, rejected, recycled"),
        ("sql", "accepted", None, "verdict", "already an SQL"),
    ],
)
def test_bad_feedback_is_refused_and_changes_nothing(
    reasons: dict[str, Any], stage: str, verdict: str, reason: Any, field: str, message: str
) -> None:
    contact = make_contact(lifecycle_stage=stage)
    with pytest.raises(ValidationFailed) as failed:
        actions.record_feedback(contact, verdict, reason=reason)
    assert field in failed.value.errors and message in " ".join(failed.value.errors[field])
    contact.refresh_from_db()
    assert contact.lifecycle_stage == stage and not Feedback.objects.exists()


def test_an_inactive_reason_is_refused(reasons: dict[str, Any]) -> None:
    reason = reasons["bad_fit"]
    reason.active = False
    actions.save_setting(reason)
    with pytest.raises(ValidationFailed, match="no longer in use"):
        actions.record_feedback(handed_off(), "rejected", reason=reason.pk)


# -- the API -------------------------------------------------------------------------------------


def test_a_rep_gives_feedback_on_their_lead_through_the_api(
    client: Client, logged_in: Any, reasons: dict[str, Any]
) -> None:
    rep = logged_in("sales")
    contact = handed_off(owner=rep)
    response = call(
        client,
        "post",
        f"/api/v1/contacts/{contact.pk}/feedback",
        {"verdict": "reject", "reason": "Bad fit", "note": "a student"},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["verdict"], body["reason"], body["to_stage"]) == (
        "rejected",
        "Bad fit",
        "disqualified",
    )
    history = call(client, "get", f"/api/v1/contacts/{contact.pk}/feedback").json()
    assert [f["verdict"] for f in history["items"]] == ["rejected"]
    assert history["handoffs"][0]["verdict"] == "rejected"


def test_feedback_errors_are_422_with_the_field(
    client: Client, logged_in: Any, reasons: dict[str, Any]
) -> None:
    rep = logged_in("sales")
    lead = make_contact(lifecycle_stage="lead", owner_id=rep.pk)
    response = call(client, "post", f"/api/v1/contacts/{lead.pk}/feedback", {"verdict": "accept"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "contact" in response.json()["error"]["fields"]
    mql = handed_off(owner=rep)
    response = call(client, "post", f"/api/v1/contacts/{mql.pk}/feedback", {"verdict": "reject"})
    assert response.status_code == 422 and "reason" in response.json()["error"]["fields"]
    response = call(client, "post", f"/api/v1/contacts/{mql.pk}/feedback", {"reason": "x"})
    assert response.status_code == 422 and "verdict" in response.json()["error"]["fields"]


def test_a_rep_cannot_judge_another_rep_s_lead(client: Client, logged_in: Any) -> None:
    team, (other,) = make_team(reps=1)
    make_assignment_rule(team)
    contact = handed_off()
    assert contact.owner_id == other.pk
    logged_in("sales")
    response = call(
        client, "post", f"/api/v1/contacts/{contact.pk}/feedback", {"verdict": "accept"}
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_marketing_may_not_give_feedback_and_anonymous_callers_are_401(
    client: Client, logged_in: Any
) -> None:
    contact = handed_off()
    response = call(
        client, "post", f"/api/v1/contacts/{contact.pk}/feedback", {"verdict": "accept"}
    )
    assert response.status_code == 401
    logged_in("marketing")
    response = call(
        client, "post", f"/api/v1/contacts/{contact.pk}/feedback", {"verdict": "accept"}
    )
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"


def test_an_api_key_needs_the_write_scope_for_feedback(client: Client) -> None:
    admin = make_user("admin")
    read_only = create_api_key("reader", scopes=["read"], created_by=admin).secret
    writer = create_api_key("writer", scopes=["write"], created_by=admin).secret
    contact = handed_off()
    url = f"/api/v1/contacts/{contact.pk}/feedback"
    assert call(client, "post", url, {"verdict": "accept"}, key=read_only).status_code == 403
    assert call(client, "post", url, {"verdict": "accept"}, key=writer).status_code == 201


def test_settings_per_role(client: Client, logged_in: Any) -> None:
    hours = make_hours()
    policy = {
        "name": "Hot",
        "business_hours": hours.pk,
        "first_touch_minutes": 30,
        "decision_minutes": 240,
    }
    commitment = {"period_kind": "month", "period_start": "2026-03-01", "mql_volume": 300}
    logged_in("marketing")
    assert call(client, "post", "/api/v1/handoff/policies", policy).status_code == 403
    response = call(client, "post", "/api/v1/handoff/commitments", commitment)
    assert response.status_code == 201, response.content
    client.logout()
    logged_in("sales")
    assert call(client, "post", "/api/v1/handoff/policies", policy).status_code == 403
    assert call(client, "get", "/api/v1/handoff/policies").status_code == 200
    client.logout()
    logged_in("sales_manager")
    response = call(client, "post", "/api/v1/handoff/policies", policy)
    assert response.status_code == 201 and SlaPolicy.objects.filter(name="Hot").exists()
    assert MarketingCommitment.objects.count() == 1


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        (
            "policies",
            {"name": "No hours", "first_touch_minutes": 5, "decision_minutes": 9},
            "business_hours",
        ),
        (
            "hours",
            {"name": "Never", "weekdays": [], "opens_at": "09:00", "closes_at": "18:00"},
            "weekdays",
        ),
        ("hours", {"name": "Mars", "time_zone": "Mars/Base", "weekdays": [0]}, "weekdays"),
        (
            "commitments",
            {"period_kind": "quarter", "period_start": "2026-02-01", "mql_volume": 5},
            "period_start",
        ),
        (
            "commitments",
            {"period_kind": "month", "period_start": "2026-02-01", "mql_volume": 0},
            "mql_volume",
        ),
        ("rules", {"name": "Bad", "team": 999999}, "team"),
        ("rules", {"name": "Typo", "tema": 1}, "tema"),
        ("reasons", {"name": "", "verdict": "rejected"}, "name"),
    ],
)
def test_bad_settings_are_422_naming_the_field(
    client: Client, logged_in: Any, kind: str, body: dict[str, Any], field: str
) -> None:
    logged_in("admin")
    response = call(client, "post", f"/api/v1/handoff/{kind}", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]


def test_hours_in_use_by_a_policy_cannot_be_deleted(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    hours = make_hours()
    SlaPolicy.objects.create(
        name="P", business_hours=hours, first_touch_minutes=5, decision_minutes=10
    )
    response = call(client, "delete", f"/api/v1/handoff/hours/{hours.pk}")
    assert response.status_code == 422 and "still in use" in response.content.decode()
    assert call(client, "delete", "/api/v1/handoff/hours/999999").status_code == 404


@freeze_time("2026-03-04 10:00:00")
def test_the_inbox_api_for_a_rep_and_a_manager(client: Client, logged_in: Any) -> None:
    team, (ana, ben) = make_team(reps=2)
    make_assignment_rule(team)
    actions.hand_off([make_contact(lifecycle_stage="mql").pk for _ in range(4)])
    client.force_login(ana)
    mine = call(client, "get", "/api/v1/handoffs?owner=me").json()
    assert mine["count"] == 2 and {h["owner_id"] for h in mine["items"]} == {ana.pk}
    assert call(client, "get", f"/api/v1/handoffs?owner={ben.pk}").json()["count"] == 0
    handoff_id = mine["items"][0]["id"]
    assert (
        call(
            client, "post", f"/api/v1/handoffs/{handoff_id}/reassign", {"owner_id": ben.pk}
        ).status_code
        == 403
    )
    client.logout()
    logged_in("sales_manager")
    assert call(client, "get", "/api/v1/handoffs").json()["count"] == 4
    response = call(client, "post", f"/api/v1/handoffs/{handoff_id}/reassign", {"owner_id": ben.pk})
    assert response.status_code == 200 and response.json()["owner_id"] == ben.pk
    response = call(client, "post", "/api/v1/handoffs/999999/reassign", {"owner_id": ben.pk})
    assert response.status_code == 404


def test_a_rep_sets_their_own_availability_but_not_a_colleague_s(
    client: Client, logged_in: Any
) -> None:
    rep = logged_in("sales")
    colleague = make_user("sales")
    url = f"/api/v1/reps/{rep.pk}/availability"
    response = call(
        client, "put", url, {"capacity": 5, "away_from": "2026-08-01", "away_until": "2026-08-15"}
    )
    assert response.status_code == 200, response.content
    assert response.json()["capacity"] == 5
    bad = call(client, "put", url, {"away_from": "2026-08-15", "away_until": "2026-08-01"})
    assert bad.status_code == 422 and "away_until" in bad.json()["error"]["fields"]
    other = call(client, "put", f"/api/v1/reps/{colleague.pk}/availability", {"capacity": 1})
    assert other.status_code == 403
