"""Contacts' lifecycle history: every move is kept, including moves backwards (recycling)."""

from __future__ import annotations

import datetime as dt

import pytest

from embudo.crm import actions as crm
from embudo.crm.models import Activity, Contact, LifecycleTransition, TransitionCause
from embudo.errors import ValidationFailed
from tests.factories import make_contact, make_user
from tests.journeys import journey

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


def days(n: int) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def test_new_contact_records_its_first_stage_with_cause() -> None:
    contact = make_contact(lifecycle_stage="lead", at=T0, cause=TransitionCause.IMPORT)

    history = list(contact.transitions.values_list("from_stage", "to_stage", "cause"))

    assert history == [("", "lead", "import")]
    assert contact.lifecycle_stage_changed_at == T0


def test_recycled_contact_keeps_every_move_in_order() -> None:
    contact = make_contact(lifecycle_stage="lead", at=T0)

    journey(
        contact, stages=[("mql", days(1)), ("lead", days(3)), ("mql", days(9)), ("sql", days(10))]
    )

    moves = [(t.from_stage, t.to_stage) for t in contact.transitions.order_by("changed_at")]
    assert moves == [
        ("", "lead"),
        ("lead", "mql"),
        ("mql", "lead"),
        ("lead", "mql"),
        ("mql", "sql"),
    ]
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "sql"
    assert contact.lifecycle_stage_changed_at == days(10)


def test_moving_to_the_current_stage_records_nothing() -> None:
    contact = make_contact(lifecycle_stage="lead")

    assert crm.set_lifecycle_stage(contact, "lead", cause="manual") is None
    assert contact.transitions.count() == 1


def test_unknown_stage_is_refused_and_nothing_changes() -> None:
    contact = make_contact(lifecycle_stage="lead")

    with pytest.raises(ValidationFailed) as failed:
        crm.set_lifecycle_stage(contact, "hot", cause="manual")

    assert "lifecycle_stage" in failed.value.errors
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"
    assert contact.transitions.count() == 1


def test_transition_records_the_actor() -> None:
    rep = make_user("sales")
    contact = make_contact(lifecycle_stage="mql")

    transition = crm.set_lifecycle_stage(contact, "sql", cause="manual", actor=rep)

    assert transition is not None and transition.actor == rep


def test_email_is_unique_case_insensitively() -> None:
    make_contact(email="Ana@Example.com")

    with pytest.raises(ValidationFailed) as failed:
        make_contact(email="ana@EXAMPLE.com")

    assert "email" in failed.value.errors
    assert Contact.objects.get().email == "ana@example.com"


def test_merge_moves_history_and_activities_and_fills_blanks() -> None:
    primary = make_contact(email="ana@example.com", phone="", lifecycle_stage="lead", at=T0)
    duplicate = make_contact(
        email=None, external_id="crm-7", phone="+34 600 000 000", lifecycle_stage="lead", at=days(1)
    )
    journey(duplicate, stages=[("mql", days(2)), ("sql", days(4))])
    crm.log_activity(duplicate, {"kind": "call", "subject": "Intro call"})

    merged = crm.merge_contacts(primary, duplicate)

    assert not Contact.objects.filter(pk=duplicate.pk).exists()
    assert merged.phone == "+34 600 000 000"
    assert merged.external_id == "crm-7"
    assert merged.lifecycle_stage == "sql"
    assert Activity.objects.get().contact_id == primary.pk
    stages = list(
        LifecycleTransition.objects.filter(contact=primary).values_list("to_stage", flat=True)
    )
    assert stages.count("lead") == 2 and "mql" in stages and stages[-1] == "sql"


def test_merge_into_itself_is_refused() -> None:
    contact = make_contact()

    with pytest.raises(ValidationFailed):
        crm.merge_contacts(contact, contact)
