"""The lead inbox and the SLA page in headless Chromium: a rep sees their MQLs soonest due
first with why-this-lead, accepts and rejects with one click; the manager sees the team."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from embudo.crm import actions as crm
from embudo.crm.models import Contact
from embudo.handoff import actions
from embudo.handoff.models import Handoff, MarketingCommitment
from tests.factories import (
    make_assignment_rule,
    make_company,
    make_contact,
    make_policy,
    make_reason,
    make_team,
    make_user,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_rep_works_the_inbox_in_due_order_with_one_click_verdicts(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    team, (rep,) = make_team(reps=1, first_name="Rita")
    make_assignment_rule(team)
    make_policy(first_touch_minutes=24 * 60 * 5)
    make_reason("Bad fit", bad_fit=True)
    acme = make_company(name="Acme Robotics")
    early = make_contact(
        first_name="Elena", last_name="Early", lifecycle_stage="mql", company_id=acme.pk,
        original_source="google",
    )  # fmt: skip
    late = make_contact(first_name="Luis", last_name="Late", lifecycle_stage="mql")
    actions.hand_off([early.pk], at=timezone.now() - dt.timedelta(days=1))
    actions.hand_off([late.pk])
    crm.log_activity(early, {"kind": "note", "subject": "Asked for pricing"})

    browser_login(rep)
    page.goto(f"{live_server.url}/leads/")
    rows = page.get_by_test_id("lead-row")
    assert rows.count() == 2
    # Handed off a day earlier, Elena is due first.
    assert "Elena Early" in rows.nth(0).inner_text() and "Luis Late" in rows.nth(1).inner_text()
    why = rows.nth(0).inner_text()
    assert "Acme Robotics" in why and "google" in why and "Asked for pricing" in why
    assert "round robin" in why

    rows.nth(0).get_by_role("button", name="Accept").click()
    page.wait_for_url(re.compile(r"/leads/$"))
    assert "accepted" in page.locator(".messages").inner_text()
    assert Contact.objects.get(pk=early.pk).lifecycle_stage == "sql"
    assert page.get_by_test_id("lead-row").count() == 1

    row = page.get_by_test_id("lead-row").first
    row.get_by_label("Rejection reason").select_option(label="Bad fit")
    row.get_by_role("button", name="Reject").click()
    page.wait_for_url(re.compile(r"/leads/$"))
    assert Contact.objects.get(pk=late.pk).lifecycle_stage == "disqualified"
    assert "No open MQLs" in page.get_by_test_id("inbox").inner_text()
    assert Handoff.objects.get(contact=late).reason.name == "Bad fit"


def test_the_manager_sees_the_team_and_the_queue_and_the_sla_page(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    manager = make_user("sales_manager", first_name="Sofía")
    team, (ana, _ben) = make_team(reps=2)
    make_assignment_rule(team, countries=["Spain"])
    make_policy()
    spanish = make_company(country="Spain")
    for _ in range(2):
        actions.hand_off([make_contact(lifecycle_stage="mql", company_id=spanish.pk).pk])
    orphan = make_contact(first_name="Olga", last_name="Orphan", lifecycle_stage="mql")
    actions.hand_off([orphan.pk])

    browser_login(manager)
    page.goto(f"{live_server.url}/leads/")
    assert page.get_by_test_id("lead-row").count() == 3
    assert "Queue" in page.get_by_test_id("inbox").inner_text()
    page.locator("select[name=owner]").first.select_option("queue")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"owner=queue"))
    row = page.get_by_test_id("lead-row")
    assert row.count() == 1 and "Olga Orphan" in row.inner_text()
    row.get_by_label("Reassign to").select_option(str(ana.pk))
    row.get_by_role("button", name="Reassign").click()
    page.wait_for_url(re.compile(r"owner=queue"))
    assert Handoff.objects.get(contact=orphan).owner_id == ana.pk

    page.get_by_role("link", name="SLA", exact=True).first.click()
    page.wait_for_url(re.compile(r"/leads/sla/"))
    assert "MQLs handed off" in page.get_by_test_id("sla-kpis").inner_text()
    assert "3" in page.get_by_test_id("sla-kpis").inner_text()
    sales = page.get_by_test_id("sla-sales").inner_text()
    assert "(fallback queue)" not in sales and ana.username in sales
    page.screenshot(path="/tmp/handoff-sla.png", full_page=True)


def test_the_sla_page_in_spanish_for_marketing(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    marketer = make_user("marketing")
    this_month = timezone.localdate().replace(day=1)
    actions.save_setting(
        MarketingCommitment(period_kind="month", period_start=this_month, mql_volume=500)
    )
    browser_login(marketer)
    page.goto(f"{live_server.url}/leads/sla/")
    page.get_by_role("button", name="ES").click()
    page.wait_for_load_state()
    assert "Acuerdo de nivel de servicio" in page.locator("h1").inner_text()
    commitments = page.get_by_test_id("commitments").inner_text()
    assert "0 / 500" in commitments and "por detrás" in commitments
    # Marketing has no lead inbox.
    response = page.goto(f"{live_server.url}/leads/")
    assert response is not None and response.status == 403
