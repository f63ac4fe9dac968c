"""Who gets an MQL: round robin within a team, capacity, availability, territory and condition
routing, the fallback queue, bulk handoff through an import, and re-handoff after a recycle."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from embudo.crm import actions as crm
from embudo.crm.models import Contact, TransitionCause
from embudo.csvimport.run import ImportOptions, run_import
from embudo.handoff import actions
from embudo.handoff.models import Handoff, Notification
from tests.factories import (
    make_assignment_rule,
    make_company,
    make_contact,
    make_policy,
    make_reason,
    make_team,
    make_user,
)
from tests.journeys import journey, person

pytestmark = pytest.mark.django_db

# A Wednesday, 11:00 in Madrid.
WORKDAY = "2026-03-04 10:00:00"
# A lead that the scoring rule makes an MQL now.
SCORED_MQL = person(stage="lead", stages=[("mql", None, TransitionCause.RULE)])


def mqls(n: int, **kwargs: Any) -> list[int]:
    return [make_contact(lifecycle_stage="mql", **kwargs).pk for _ in range(n)]


@freeze_time(WORKDAY)
def test_round_robin_shares_leads_evenly_and_continues_where_it_stopped() -> None:
    team, reps = make_team(reps=3)
    make_assignment_rule(team)
    first = actions.hand_off(mqls(7))
    second = actions.hand_off(mqls(5))
    counts = Counter(h.owner_id for h in [*first, *second])
    assert sorted(counts.values()) == [4, 4, 4]
    # Turns go in order and the second batch starts after the rep who got the last lead.
    order = [h.owner_id for h in [*first, *second]]
    ids = sorted(r.pk for r in reps)
    assert order[:3] == ids and order[7] == ids[(ids.index(order[6]) + 1) % 3]


@freeze_time(WORKDAY)
def test_a_rep_at_capacity_gets_no_more_and_the_rest_wait_in_the_queue() -> None:
    team, (ana, ben) = make_team(reps=2)
    make_assignment_rule(team)
    actions.set_availability(ana, {"capacity": 1})
    actions.set_availability(ben, {"capacity": 2})
    handoffs = actions.hand_off(mqls(5))
    owners = Counter(h.owner_id for h in handoffs)
    assert owners == {ana.pk: 1, ben.pk: 2, None: 2}
    queued = [h for h in handoffs if h.owner_id is None]
    assert all("nobody in Iberia is available" in h.routing_note for h in queued)


@freeze_time(WORKDAY)
def test_nobody_on_holiday_or_off_hours_receives_leads() -> None:
    team, (away, night_owl, present) = make_team(reps=3)
    make_assignment_rule(team)
    actions.set_availability(
        away, {"away_from": dt.date(2026, 3, 1), "away_until": dt.date(2026, 3, 10)}
    )
    # 10:00 UTC is 19:00 in Tokyo: past this rep's working hours.
    actions.set_availability(
        night_owl,
        {"time_zone": "Asia/Tokyo", "works_from": dt.time(9), "works_until": dt.time(18)},
    )
    handoffs = actions.hand_off(mqls(4))
    assert {h.owner_id for h in handoffs} == {present.pk}


@freeze_time("2026-03-07 10:00:00")  # a Saturday
def test_on_a_day_off_the_leads_go_to_the_queue_and_the_managers_hear_of_it() -> None:
    manager = make_user("sales_manager")
    team, reps = make_team(reps=2)
    make_assignment_rule(team)
    for rep in reps:  # Monday to Friday (a rep without settings takes leads any day)
        actions.set_availability(rep, {"weekdays": [0, 1, 2, 3, 4]})
    [handoff] = actions.hand_off(mqls(1))
    assert handoff.owner_id is None and handoff.open
    contact = Contact.objects.get(pk=handoff.contact_id)
    assert contact.owner_id is None and contact.lead_status == "new"
    [notice] = Notification.objects.filter(kind="queued")
    assert notice.user_id == manager.pk and "fallback queue" in notice.message


@freeze_time(WORKDAY)
def test_no_rule_matching_sends_the_lead_to_the_queue() -> None:
    admin = make_user("admin")
    [handoff] = actions.hand_off(mqls(1))
    assert handoff.owner_id is None and handoff.routing_note == "no assignment rule matches"
    assert Notification.objects.filter(kind="queued", user=admin).exists()


@freeze_time(WORKDAY)
def test_territory_routing_by_company_country_then_a_catch_all_team() -> None:
    iberia, (rep_es,) = make_team("Iberia", reps=1)
    rest, (rep_world,) = make_team("World", reps=1)
    make_assignment_rule(iberia, countries=["Spain", "Portugal"], position=1)
    make_assignment_rule(rest, position=2)
    spanish = make_contact(lifecycle_stage="mql", company_id=make_company(country="spain").pk)
    french = make_contact(lifecycle_stage="mql", company_id=make_company(country="France").pk)
    handoffs = {h.contact_id: h for h in actions.hand_off([spanish.pk, french.pk])}
    assert handoffs[spanish.pk].owner_id == rep_es.pk
    assert handoffs[french.pk].owner_id == rep_world.pk


@freeze_time(WORKDAY)
def test_condition_routing_with_the_segments_language() -> None:
    enterprise, (big_rep,) = make_team("Enterprise", reps=1)
    smb, (small_rep,) = make_team("SMB", reps=1)
    make_assignment_rule(
        enterprise,
        condition={"field": "company.employees", "op": "gte", "value": 1000},
        position=1,
    )
    make_assignment_rule(smb, position=2)
    big = make_contact(lifecycle_stage="mql", company_id=make_company(employees=5000).pk)
    small = make_contact(lifecycle_stage="mql", company_id=make_company(employees=12).pk)
    handoffs = {h.contact_id: h.owner_id for h in actions.hand_off([big.pk, small.pk])}
    assert handoffs == {big.pk: big_rep.pk, small.pk: small_rep.pk}


def test_a_rule_with_a_bad_condition_is_refused_naming_the_problem() -> None:
    team, _ = make_team(reps=1)
    from embudo.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as failed:
        make_assignment_rule(team, condition={"field": "no_such_field", "op": "eq", "value": 1})
    assert "condition" in failed.value.errors


@freeze_time(WORKDAY)
def test_becoming_an_mql_hands_off_once_committed(django_capture_on_commit_callbacks: Any) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    make_policy()
    with django_capture_on_commit_callbacks(execute=True):
        contact = journey(SCORED_MQL)
    [handoff] = Handoff.objects.filter(contact=contact)
    contact.refresh_from_db()
    assert handoff.owner_id == rep.pk and contact.owner_id == rep.pk
    assert contact.lead_status == "new"
    assert handoff.first_touch_due == dt.datetime(2026, 3, 4, 11, 0, tzinfo=dt.UTC)
    assert Notification.objects.filter(user=rep, kind="assigned", contact=contact).exists()
    # Moving to MQL again while the handoff is open does not hand it off twice.
    actions.hand_off([contact.pk])
    assert Handoff.objects.filter(contact=contact).count() == 1


@freeze_time(WORKDAY)
def test_an_import_that_qualifies_mqls_hands_them_all_off(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    team, reps = make_team(reps=4)
    make_assignment_rule(team)
    make_policy()
    path = tmp_path / "mqls.csv"
    lines = ["email,first_name,lifecycle_stage"]
    lines += [f"mql{i}@example.com,Lead {i},mql" for i in range(40)]
    lines += [f"sub{i}@example.com,Sub {i},subscriber" for i in range(5)]
    path.write_text("\n".join(lines) + "\n")
    with django_capture_on_commit_callbacks(execute=True):
        result = run_import("contacts", path, ImportOptions())
    assert result.committed
    handoffs = Handoff.objects.all()
    assert handoffs.count() == 40
    assert Counter(handoffs.values_list("owner_id", flat=True)) == {r.pk: 10 for r in reps}
    assert Contact.objects.filter(lifecycle_stage="mql", owner__isnull=True).count() == 0


@freeze_time(WORKDAY)
def test_a_dry_run_import_hands_off_nothing(
    tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    team, _ = make_team(reps=1)
    make_assignment_rule(team)
    path = tmp_path / "mqls.csv"
    path.write_text("email,lifecycle_stage\nx@example.com,mql\n")
    with django_capture_on_commit_callbacks(execute=True):
        run_import("contacts", path, ImportOptions(dry_run=True))
    assert not Handoff.objects.exists()


def test_a_recycled_lead_becomes_an_mql_again_and_is_handed_off_again(
    django_capture_on_commit_callbacks: Any,
) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    not_now = make_reason("Not now", verdict="recycled")
    with freeze_time(WORKDAY):
        with django_capture_on_commit_callbacks(execute=True):
            contact = journey(SCORED_MQL)
        actions.record_feedback(contact, "recycled", reason=not_now, actor=rep)
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead" and contact.lead_status == "recycled"
    with freeze_time("2026-04-01 10:00:00"), django_capture_on_commit_callbacks(execute=True):
        crm.set_lifecycle_stage(contact, "mql", cause="rule")
    first, second = Handoff.objects.filter(contact=contact).order_by("handed_off_at")
    assert (first.open, first.verdict) == (False, "recycled")
    assert second.open and second.owner_id == rep.pk and second.verdict == ""
    stages = list(contact.transitions.values_list("to_stage", "cause"))
    assert stages[-3:] == [("mql", "rule"), ("lead", "feedback"), ("mql", "rule")]


@freeze_time(WORKDAY)
def test_a_departing_rep_s_open_leads_go_to_colleagues() -> None:
    team, (leaving, staying) = make_team(reps=2)
    make_assignment_rule(team)
    actions.hand_off(mqls(4))
    moved = actions.release_leads(leaving)
    assert moved == 2
    open_owners = set(Handoff.objects.filter(open=True).values_list("owner_id", flat=True))
    assert open_owners == {staying.pk}


@freeze_time(WORKDAY)
def test_manual_reassignment_moves_the_lead_and_keeps_the_clock() -> None:
    team, (ana, ben) = make_team(reps=2)
    make_assignment_rule(team)
    make_policy()
    [handoff] = actions.hand_off(mqls(1))
    due = handoff.first_touch_due
    other = ben if handoff.owner_id == ana.pk else ana
    actions.reassign(handoff, other.pk, actor=make_user("sales_manager"))
    handoff.refresh_from_db()
    assert handoff.owner_id == other.pk and handoff.first_touch_due == due
    assert Contact.objects.get(pk=handoff.contact_id).owner_id == other.pk
    from embudo.errors import ValidationFailed

    with pytest.raises(ValidationFailed, match="no sales role"):
        actions.reassign(handoff, make_user("marketing").pk)
