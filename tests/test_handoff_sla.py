"""The SLA clocks: deadlines queued as delayed tasks on commit, first touch by a logged call or
a status change, breach escalation to the manager (in-app and by real SMTP), reassignment on
breach, and a deadline task that wakes for a handoff already met doing nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.header import decode_header, make_header
from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult
from freezegun import freeze_time

from embudo.crm import actions as crm
from embudo.crm.models import TransitionCause
from embudo.deals import actions as deals
from embudo.handoff import actions
from embudo.handoff.models import Handoff, Notification
from embudo.handoff.tasks import check_deadline, mail_notifications
from tests.embudo_processes import MailSink
from tests.factories import make_assignment_rule, make_policy, make_team, make_user
from tests.journeys import Person, journey, person

pytestmark = pytest.mark.django_db

WEDNESDAY_11 = "2026-03-04 10:00:00"  # 11:00 in Madrid
UTC = dt.UTC


def scored_mql(**fields: Any) -> Person:
    """A lead that the scoring rule makes an MQL now."""
    return person(stage="lead", stages=[("mql", None, TransitionCause.RULE)], **fields)


@pytest.fixture
def mail(settings: Any) -> Iterator[MailSink]:
    with MailSink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = sink.port
        yield sink


def deadline_tasks() -> list[DBTaskResult]:
    return list(
        DBTaskResult.objects.filter(task_path="embudo.handoff.tasks.check_deadline").order_by(
            "run_after"
        )
    )


def run_task(result: DBTaskResult) -> Any:
    return check_deadline.call(*result.args_kwargs["args"])


@pytest.fixture
def desk(django_capture_on_commit_callbacks: Any) -> dict[str, Any]:
    """A team of one rep with a manager, a one-hour first-touch policy in Madrid hours."""
    manager = make_user("sales_manager", first_name="Marta")
    team, (rep,) = make_team(reps=1)
    deals.set_team(manager, team)
    make_assignment_rule(team)
    policy = make_policy(first_touch_minutes=60, decision_minutes=4 * 60)
    with freeze_time(WEDNESDAY_11), django_capture_on_commit_callbacks(execute=True):
        contact = journey(scored_mql(first_name="Lucía", last_name="Vega"))
    return {
        "manager": manager,
        "rep": rep,
        "team": team,
        "policy": policy,
        "contact": contact,
        "handoff": Handoff.objects.get(contact=contact),
    }


def test_the_deadlines_are_delayed_tasks_queued_once_committed(desk: dict[str, Any]) -> None:
    handoff = desk["handoff"]
    assert handoff.first_touch_due == dt.datetime(2026, 3, 4, 11, 0, tzinfo=UTC)
    assert handoff.decision_due == dt.datetime(2026, 3, 4, 14, 0, tzinfo=UTC)
    first, decision = deadline_tasks()
    assert first.run_after == handoff.first_touch_due and first.args_kwargs["args"] == [
        [handoff.pk],
        "first_touch",
    ]
    assert (
        decision.run_after == handoff.decision_due and decision.args_kwargs["args"][1] == "decision"
    )


def test_a_logged_call_is_the_first_touch_and_the_deadline_task_then_does_nothing(
    desk: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time("2026-03-04 10:25:00"), django_capture_on_commit_callbacks(execute=True):
        crm.log_activity(desk["contact"], {"kind": "call", "subject": "Intro"}, actor=desk["rep"])
    handoff = Handoff.objects.get(pk=desk["handoff"].pk)
    assert handoff.first_touch_state == "met" and handoff.first_touch_seconds == 25 * 60
    with freeze_time("2026-03-04 11:00:01"):
        outcome = run_task(deadline_tasks()[0])
    assert outcome["breached"] == 0
    handoff.refresh_from_db()
    assert handoff.first_touch_state == "met" and handoff.state == "pending"
    assert not Notification.objects.filter(kind="breach").exists()


def test_a_note_is_not_a_touch_but_lead_status_attempting_is(
    desk: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time("2026-03-04 10:10:00"), django_capture_on_commit_callbacks(execute=True):
        crm.log_activity(desk["contact"], {"kind": "note", "subject": "Looked them up"})
    assert Handoff.objects.get(pk=desk["handoff"].pk).first_touch_at is None
    with freeze_time("2026-03-04 10:40:00"), django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(desk["contact"], {"lead_status": "attempting"}, actor=desk["rep"])
    handoff = Handoff.objects.get(pk=desk["handoff"].pk)
    assert handoff.first_touch_state == "met" and handoff.first_touch_seconds == 40 * 60


def test_a_missed_first_touch_breaches_and_the_manager_is_told_in_app_and_by_mail(
    desk: dict[str, Any], mail: MailSink, django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time("2026-03-04 11:00:00"), django_capture_on_commit_callbacks(execute=True):
        outcome = run_task(deadline_tasks()[0])
    assert outcome == {"clock": "first_touch", "checked": 1, "breached": 1}
    handoff = Handoff.objects.get(pk=desk["handoff"].pk)
    assert (handoff.state, handoff.first_touch_state) == ("breached", "breached")
    assert handoff.breached_at == handoff.first_touch_due
    assert handoff.escalated_to_id == desk["manager"].pk
    [notice] = Notification.objects.filter(kind="breach")
    assert notice.user_id == desk["manager"].pk and "Lucía Vega" in notice.message
    # The mail task was queued on commit: run it, and it reaches the SMTP server once.
    [queued] = DBTaskResult.objects.filter(
        task_path="embudo.handoff.tasks.mail_notifications", args_kwargs__args=[[notice.pk]]
    )
    assert mail_notifications.call(*queued.args_kwargs["args"]) == {"sent": 1}
    assert mail_notifications.call(*queued.args_kwargs["args"]) == {"sent": 0}
    [message] = mail.wait_for(1)
    assert message["To"] == desk["manager"].email
    assert "SLA breached" in str(make_header(decode_header(message["Subject"])))
    mail.wait_for(2, timeout=1)
    assert len(mail.messages) == 1
    # Running the deadline again breaches nothing twice.
    with freeze_time("2026-03-04 12:00:00"):
        assert run_task(deadline_tasks()[0])["breached"] == 0
    assert Notification.objects.filter(kind="breach").count() == 1


def test_a_task_that_wakes_early_leaves_the_clock_running(desk: dict[str, Any]) -> None:
    with freeze_time("2026-03-04 10:59:00"):
        assert run_task(deadline_tasks()[0])["breached"] == 0
    assert Handoff.objects.get(pk=desk["handoff"].pk).first_touch_state == "pending"


def test_a_late_touch_counts_as_breached(
    desk: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time("2026-03-04 12:30:00"), django_capture_on_commit_callbacks(execute=True):
        crm.log_activity(desk["contact"], {"kind": "email", "subject": "Hola"})
    handoff = Handoff.objects.get(pk=desk["handoff"].pk)
    assert handoff.first_touch_state == "breached" and handoff.state == "breached"
    assert handoff.first_touch_seconds == 150 * 60


def test_the_policy_may_reassign_a_breached_lead_to_another_rep(
    django_capture_on_commit_callbacks: Any,
) -> None:
    team, (ana, ben) = make_team(reps=2)
    make_assignment_rule(team)
    make_policy(first_touch_minutes=30, reassign_on_breach=True)
    with freeze_time(WEDNESDAY_11), django_capture_on_commit_callbacks(execute=True):
        contact = journey(scored_mql())
    first = Handoff.objects.get(contact=contact)
    with freeze_time("2026-03-04 10:30:00"), django_capture_on_commit_callbacks(execute=True):
        actions.breach_due([first.pk], "first_touch")
    first.refresh_from_db()
    second = Handoff.objects.get(contact=contact, open=True)
    assert first.state == "breached" and not first.open
    assert {first.owner_id, second.owner_id} == {ana.pk, ben.pk}
    contact.refresh_from_db()
    assert contact.owner_id == second.owner_id
    assert second.first_touch_due == dt.datetime(2026, 3, 4, 11, 0, tzinfo=UTC)


def test_a_decision_in_time_meets_the_sla(desk: dict[str, Any]) -> None:
    with freeze_time("2026-03-04 12:00:00"):
        actions.record_feedback(desk["contact"], "accepted", actor=desk["rep"])
    handoff = Handoff.objects.get(pk=desk["handoff"].pk)
    # Accepting without a logged touch still stops the first-touch clock, late here.
    assert handoff.decision_state == "met" and handoff.first_touch_state == "breached"
    assert handoff.state == "breached" and not handoff.open and handoff.verdict == "accepted"


def test_touch_and_decision_in_time_is_met(
    desk: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time("2026-03-04 10:05:00"), django_capture_on_commit_callbacks(execute=True):
        crm.log_activity(desk["contact"], {"kind": "meeting"})
    with freeze_time("2026-03-04 13:00:00"):
        actions.record_feedback(desk["contact"], "accepted", actor=desk["rep"])
        with freeze_time("2026-03-04 14:00:00"):
            assert run_task(deadline_tasks()[1])["breached"] == 0
    assert Handoff.objects.get(pk=desk["handoff"].pk).state == "met"
