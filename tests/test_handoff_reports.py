"""The SLA report (sales and marketing sides, CLI and API), marketing commitments tracked live
with a forecast, and the loop back of rejection reasons with fit suggestions."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from freezegun import freeze_time

from embudo.crm import actions as crm
from embudo.handoff import actions, reports
from embudo.handoff.models import Handoff, MarketingCommitment
from tests.factories import (
    make_assignment_rule,
    make_company,
    make_contact,
    make_policy,
    make_reason,
    make_team,
)

pytestmark = pytest.mark.django_db

HANDOFF_AT = "2026-03-04 10:00:00"  # Wednesday, 11:00 in Madrid


def touch(contact: Any, when: str) -> None:
    with freeze_time(when):
        crm.log_activity(contact, {"kind": "call"})
        actions.record_first_touch({contact.pk: dt.datetime.now(dt.UTC)})


@pytest.fixture
def month() -> dict[str, Any]:
    """Four MQLs handed off to Ana and Ben in turn; Ana answers fast, Ben late or never."""
    team, (ana, ben) = make_team(reps=2)
    make_assignment_rule(team)
    make_policy(first_touch_minutes=60, decision_minutes=600)
    bad_fit = make_reason("Bad fit", bad_fit=True)
    sources = ["google", "linkedin", "google", "linkedin"]
    contacts = [
        make_contact(lifecycle_stage="mql", original_source=s, original_campaign="spring")
        for s in sources
    ]
    with freeze_time(HANDOFF_AT):
        handoffs = actions.hand_off([c.pk for c in contacts])
    owners = [h.owner_id for h in handoffs]
    assert owners == [ana.pk, ben.pk, ana.pk, ben.pk]
    touch(contacts[0], "2026-03-04 10:10:00")
    touch(contacts[2], "2026-03-04 10:30:00")
    touch(contacts[1], "2026-03-04 11:30:00")
    with freeze_time("2026-03-04 11:00:00"):
        actions.breach_due([h.pk for h in handoffs], "first_touch")
    with freeze_time("2026-03-04 12:00:00"):
        actions.record_feedback(contacts[0], "accepted")
        actions.record_feedback(contacts[1], "rejected", reason=bad_fit)
        actions.record_feedback(contacts[2], "accepted")
    commitment = MarketingCommitment(
        period_kind="month", period_start=dt.date(2026, 3, 1), mql_volume=10, min_rate="0.70"
    )
    actions.save_setting(commitment)
    return {"ana": ana, "ben": ben, "team": team, "contacts": contacts, "commitment": commitment}


def test_sales_side_by_rep(month: dict[str, Any]) -> None:
    report = reports.sla_report(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    rows = {row.key: row for row in report.sales}
    ana, ben = rows[month["ana"].pk], rows[month["ben"].pk]
    assert (ana.handoffs, ana.touched, ana.met, ana.breached, ana.accepted) == (2, 2, 2, 0, 2)
    assert (ana.median_minutes, ana.p90_minutes) == (20.0, 28.0)
    assert ana.met_rate == 1.0
    assert (ben.handoffs, ben.touched, ben.breached, ben.rejected) == (2, 1, 2, 1)
    assert ben.median_minutes == 90.0 and ben.met_rate == 0.0
    assert report.sales_total.handoffs == 4 and report.sales_total.breached == 2
    assert dict(report.headline())["Breaches"] == 2
    assert dict(report.headline())["SLA met"] == "50%"
    by_team = reports.sla_report(dt.date(2026, 3, 1), dt.date(2026, 3, 31), by="team")
    [team_row] = by_team.sales
    assert team_row.label == month["team"].name and team_row.median_minutes == 30.0


def test_marketing_side_by_month_and_source_against_the_commitment(month: dict[str, Any]) -> None:
    report = reports.sla_report(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    total, google, linkedin = report.marketing
    assert (total.period, total.source, total.delivered, total.committed_volume) == (
        "2026-03",
        "",
        4,
        10,
    )
    assert total.acceptance_rate == round(2 / 3, 4) and total.mql_to_sql_rate == 0.5
    assert total.committed_rate == 0.7
    assert (google.source, google.delivered, google.accepted) == ("google", 2, 2)
    assert (linkedin.source, linkedin.decided, linkedin.accepted) == ("linkedin", 1, 0)


@freeze_time("2026-03-16 00:00:00")
def test_a_commitment_is_tracked_live_with_a_forecast(month: dict[str, Any]) -> None:
    status = reports.commitment_status(month["commitment"])
    assert (status.delivered, status.accepted, status.decided) == (4, 2, 3)
    assert status.forecast == round(4 / (15 / 31))  # 8 by the end of March at this pace
    assert status.volume_pace == "behind"
    assert status.rate == round(2 / 3, 4) and status.quality_pace == "below"
    assert [s.commitment.pk for s in reports.current_commitments()] == [month["commitment"].pk]


def test_a_commitment_met_early_and_a_finished_period(month: dict[str, Any]) -> None:
    commitment = month["commitment"]
    commitment.mql_volume = 4
    actions.save_setting(commitment)
    with freeze_time("2026-03-20 00:00:00"):
        assert reports.commitment_status(commitment).volume_pace == "met"
    commitment.mql_volume = 5
    actions.save_setting(commitment)
    with freeze_time("2026-04-02 00:00:00"):
        status = reports.commitment_status(commitment)
    assert status.volume_pace == "missed" and status.forecast == 4


def test_the_loop_back_by_source_and_reason(month: dict[str, Any]) -> None:
    by_source = {r["value"]: r for r in reports.rejections_by("source", dt.date(2026, 3, 1))}
    assert by_source["linkedin"]["rejected"] == 1
    assert by_source["linkedin"]["reasons"] == {"Bad fit": 1}
    assert by_source["google"]["accepted"] == 2 and by_source["google"]["rejection_rate"] == 0.0


@freeze_time(HANDOFF_AT)
def test_a_value_mostly_rejected_as_bad_fit_is_suggested_for_the_fit_rules() -> None:
    bad_fit = make_reason("Bad fit", bad_fit=True)
    school = make_company(industry="Education")
    bank = make_company(industry="Banking")
    students = [make_contact(lifecycle_stage="mql", company_id=school.pk) for _ in range(5)]
    bankers = [make_contact(lifecycle_stage="mql", company_id=bank.pk) for _ in range(5)]
    actions.hand_off([c.pk for c in students + bankers])
    for contact in students[:4]:
        actions.record_feedback(contact, "rejected", reason=bad_fit)
    actions.record_feedback(students[4], "accepted")
    for contact in bankers:
        actions.record_feedback(contact, "accepted")
    [suggestion] = reports.fit_suggestions()
    assert (suggestion["attribute"], suggestion["value"], suggestion["share"]) == (
        "industry",
        "Education",
        0.8,
    )


def test_embudo_report_sla_and_the_api_agree(
    month: dict[str, Any], client: Client, logged_in: Any
) -> None:
    out = io.StringIO()
    call_command(
        "report", "sla", "--from", "2026-03-01", "--to", "2026-03-31", "--format", "json",
        stdout=out,
    )  # fmt: skip
    from_cli = json.loads(out.getvalue())
    assert from_cli["sales"]["total"]["handoffs"] == 4
    assert from_cli["marketing"]["rows"][0]["committed_volume"] == 10
    table = io.StringIO()
    call_command("report", "sla", "--from", "2026-03-01", "--to", "2026-03-31", stdout=table)
    assert "marketing" in table.getvalue() and "sales" in table.getvalue()
    logged_in("marketing")
    response = client.get("/api/v1/reports/sla?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200
    assert response.json()["sales"] == from_cli["sales"]
    assert client.get("/api/v1/reports/sla?by=region").status_code == 422


def test_the_sla_report_needs_a_role(client: Client) -> None:
    assert client.get("/api/v1/reports/sla").status_code == 401
    assert not Handoff.objects.exists()


@freeze_time(HANDOFF_AT)
def test_verdicts_by_the_fit_rules_that_counted_and_by_score_band() -> None:
    from embudo.scoring import actions as scoring
    from tests.factories import fit_rule, make_scoring_model

    model = make_scoring_model(
        [fit_rule("job_title", "contains", "Student", 30, name="Title says student")],
        mql_total=1000,
    )
    bad_fit = make_reason("Bad fit", bad_fit=True)
    students = [make_contact(lifecycle_stage="mql", job_title="Student") for _ in range(3)]
    buyer = make_contact(lifecycle_stage="mql", job_title="CFO")
    scoring.rescore_model(model)
    actions.hand_off([c.pk for c in [*students, buyer]])
    for contact in students:
        actions.record_feedback(contact, "rejected", reason=bad_fit)
    actions.record_feedback(buyer, "accepted")
    [rule] = reports.rejections_by("fit_rule")
    assert (rule["value"], rule["decided"], rule["rejected"]) == ("Title says student", 3, 3)
    assert rule["reasons"] == {"Bad fit": 3}
    bands = {r["value"]: r for r in reports.rejections_by("score_band")}
    assert sum(r["decided"] for r in bands.values()) == 4
    assert all(value != "(none)" for value in bands)
