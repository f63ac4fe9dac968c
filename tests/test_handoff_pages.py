"""The handoff pages per role: settings forms through the actions (with their errors), the
inbox's one-click feedback with a missing reason, notifications."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from embudo.handoff import actions
from embudo.handoff.models import BusinessHours, Notification, SlaPolicy
from tests.factories import make_assignment_rule, make_contact, make_hours, make_team

pytestmark = pytest.mark.django_db


def test_a_manager_adds_a_policy_through_the_settings_form(client: Client, logged_in: Any) -> None:
    hours = make_hours()
    logged_in("sales_manager")
    assert client.get("/leads/settings/").status_code == 200
    page = client.get("/leads/settings/policies/new/")
    assert page.status_code == 200
    response = client.post(
        "/leads/settings/policies/new/",
        {
            "name": "Hot leads",
            "position": 1,
            "active": "on",
            "condition": "null",
            "business_hours": hours.pk,
            "first_touch_minutes": 30,
            "decision_minutes": 240,
        },
    )
    assert response.status_code == 302
    assert SlaPolicy.objects.get(name="Hot leads").first_touch_minutes == 30


def test_hours_closing_before_opening_are_shown_as_a_form_error(
    client: Client, logged_in: Any
) -> None:
    logged_in("admin")
    response = client.post(
        "/leads/settings/hours/new/",
        {
            "name": "Backwards",
            "time_zone": "Europe/Madrid",
            "weekdays": "[0, 1]",
            "opens_at": "18:00",
            "closes_at": "09:00",
        },
    )
    assert response.status_code == 200
    assert "before they open" in response.content.decode()
    assert not BusinessHours.objects.exists()


def test_marketing_edits_commitments_but_not_policies_and_has_no_inbox(
    client: Client, logged_in: Any
) -> None:
    logged_in("marketing")
    assert client.get("/leads/settings/commitments/new/").status_code == 200
    assert client.get("/leads/settings/policies/new/").status_code == 403
    assert client.get("/leads/").status_code == 403
    assert client.get("/leads/sla/").status_code == 200


def test_a_reject_without_a_reason_from_the_inbox_says_why_and_changes_nothing(
    client: Client,
) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    contact = make_contact(lifecycle_stage="mql")
    [handoff] = actions.hand_off([contact.pk])
    client.force_login(rep)
    response = client.post(
        f"/leads/{handoff.pk}/feedback/", {"verdict": "rejected", "reason": ""}, follow=True
    )
    assert "needs a reason" in response.content.decode()
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "mql"


def test_notifications_page_lists_and_marks_read(client: Client) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    actions.hand_off([make_contact(lifecycle_stage="mql", first_name="Nora").pk])
    client.force_login(rep)
    page = client.get("/leads/notifications/")
    assert "New MQL for you" in page.content.decode()
    client.post("/leads/notifications/")
    assert not Notification.objects.filter(user=rep, read_at__isnull=True).exists()
