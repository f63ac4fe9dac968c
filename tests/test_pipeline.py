"""The reaction pipeline: one written order from a business moment to every reaction, each
contact's chain run once per moment, failures kept to the reaction that failed."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import pytest
from django.db import transaction
from freezegun import freeze_time

from embudo import pipeline
from embudo.crm import actions as crm
from embudo.crm.models import Contact
from embudo.handoff.models import Handoff
from embudo.scoring import engine
from embudo.segments import actions as segments
from embudo.segments import queries as segment_queries
from tests.factories import (
    event_rule,
    fit_rule,
    make_assignment_rule,
    make_contact,
    make_policy,
    make_scoring_model,
    make_team,
    make_user,
)
from tests.journeys import Event, journey

pytestmark = pytest.mark.django_db

# A Wednesday morning in Madrid: inside business hours.
T0 = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture
def rescored(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """The contact ids of every rescore the engine is asked for, in order."""
    calls: list[list[int]] = []
    real = engine.rescore_contacts

    def counting(contact_ids: Any, **kwargs: Any) -> Any:
        ids = sorted(set(contact_ids))
        calls.append(ids)
        return real(ids, **kwargs)

    monkeypatch.setattr(engine, "rescore_contacts", counting)
    return calls


def heard(only_reactions: Any, *names: str) -> list[pipeline.Moments]:
    """Keep the named reactions and add a last one that records what reaches it."""
    runs: list[pipeline.Moments] = []
    only_reactions(*names, also=[pipeline.Reaction("spy", runs.append)])
    return runs


def test_the_reactions_run_in_the_written_order() -> None:
    assert [reaction.name for reaction in pipeline.REACTIONS] == [
        "rescore",
        "personas",
        "predictions",
        "handoff",
        "first touch",
    ]


@freeze_time(T0)
def test_a_persona_on_a_score_follows_the_event_that_raises_the_score(
    django_capture_on_commit_callbacks: Any,
) -> None:
    model = make_scoring_model([event_rule("demo_request", 15)])
    segments.create_persona(
        {
            "name": "Engaged",
            "conditions": {"field": f"score.{model.key}.total", "op": "gte", "value": 10},
        }
    )
    contact = make_contact()
    assert segment_queries.persona_of(contact) is None

    with django_capture_on_commit_callbacks(execute=True):
        journey(contact, events=[Event("demo_request", T0)])

    persona = segment_queries.persona_of(contact)
    assert persona is not None and persona.name == "Engaged"


@freeze_time(T0)
def test_an_event_that_makes_an_mql_rescores_it_once_and_hands_it_off(
    django_capture_on_commit_callbacks: Any, rescored: list[list[int]]
) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    make_policy()
    make_scoring_model(
        [fit_rule("job_title", "eq", "Director", 30), event_rule("demo_request", 20)],
        mql_fit=30,
        mql_engagement=15,
    )
    contact = make_contact(job_title="Director", lifecycle_stage="lead")
    rescored.clear()

    with django_capture_on_commit_callbacks(execute=True):
        journey(contact, events=[Event("demo_request", T0)])

    contact.refresh_from_db()
    assert contact.lifecycle_stage == "mql"
    assert contact.owner_id == rep.pk
    assert Handoff.objects.filter(contact=contact, owner=rep).count() == 1
    # The stage change and the new owner joined the same run: no second rescore.
    assert rescored == [[contact.pk]]


@pytest.mark.django_db(transaction=True)
@freeze_time(T0)
def test_the_whole_chain_runs_once_on_real_commits(rescored: list[list[int]]) -> None:
    team, (rep,) = make_team(reps=1)
    make_assignment_rule(team)
    make_policy()
    make_scoring_model(
        [fit_rule("job_title", "eq", "Director", 30), event_rule("demo_request", 20)],
        mql_fit=30,
        mql_engagement=15,
    )
    contact = make_contact(job_title="Director", lifecycle_stage="lead")
    rescored.clear()

    journey(contact, events=[Event("demo_request", T0)])

    contact.refresh_from_db()
    assert (contact.lifecycle_stage, contact.owner_id) == ("mql", rep.pk)
    assert rescored == [[contact.pk]]


@freeze_time(T0)
def test_an_owner_change_rescores_only_when_a_rule_reads_the_owner(
    django_capture_on_commit_callbacks: Any, rescored: list[list[int]]
) -> None:
    make_scoring_model([fit_rule("job_title", "eq", "Director", 30)])
    contact = make_contact(job_title="Director")
    rep = make_user("sales")
    rescored.clear()

    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"owner_id": rep.pk})
    assert rescored == []

    make_scoring_model([fit_rule("owner", "eq", rep.get_username(), 5)])
    other = make_user("sales")
    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"owner_id": other.pk})
    assert rescored == [[contact.pk]]


def test_a_failing_reaction_is_logged_by_name_and_the_others_still_run(
    django_capture_on_commit_callbacks: Any,
    only_reactions: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(moments: pipeline.Moments) -> None:
        raise RuntimeError("out of order")

    runs: list[pipeline.Moments] = []
    only_reactions(
        also=[pipeline.Reaction("broken", broken), pipeline.Reaction("spy", runs.append)]
    )

    with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
        contact = make_contact(first_name="Kept")

    assert Contact.objects.get(pk=contact.pk).first_name == "Kept"
    assert [run.created for run in runs] == [{contact.pk}]
    assert "the broken reaction failed" in caplog.text


def test_one_transactions_moments_reach_the_pipeline_together_once_committed(
    django_capture_on_commit_callbacks: Any, only_reactions: Any
) -> None:
    runs = heard(only_reactions)
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        contact = make_contact(lifecycle_stage="lead")
        crm.update_contact(contact, {"job_title": "CTO"})
        crm.set_lifecycle_stage(contact, "mql", cause="manual")
        assert runs == []  # nothing before the commit

    [run] = runs
    assert run.created == {contact.pk}
    assert run.changed == {contact.pk: {"job_title"}}
    assert run.stages == {"lead": {contact.pk}, "mql": {contact.pk}}


def test_the_moments_of_a_savepoint_rolled_back_are_dropped(
    django_capture_on_commit_callbacks: Any, only_reactions: Any
) -> None:
    runs = heard(only_reactions)
    kept = make_contact()
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        crm.update_contact(kept, {"job_title": "CTO"})
        try:
            with transaction.atomic():
                gone = make_contact()
                raise RuntimeError("changed my mind")
        except RuntimeError:
            pass

    [run] = runs
    assert run.changed == {kept.pk: {"job_title"}}
    assert run.created == set()
    assert not Contact.objects.filter(pk=gone.pk).exists()


def test_a_rolled_back_transaction_tells_the_pipeline_nothing(
    django_capture_on_commit_callbacks: Any, only_reactions: Any
) -> None:
    runs = heard(only_reactions)
    with django_capture_on_commit_callbacks(execute=True):
        try:
            with transaction.atomic():
                make_contact()
                raise RuntimeError("rolled back")
        except RuntimeError:
            pass
    assert runs == []


def test_moments_a_reaction_causes_reach_the_reactions_after_it_in_the_same_run(
    django_capture_on_commit_callbacks: Any, only_reactions: Any
) -> None:
    contact = make_contact(lifecycle_stage="lead")

    def promote(moments: pipeline.Moments) -> None:
        if contact.pk in moments.created | set(moments.changed):
            crm.move_contacts("mql", [contact.pk], cause="rule")

    runs: list[pipeline.Moments] = []
    only_reactions(
        also=[pipeline.Reaction("promote", promote), pipeline.Reaction("spy", runs.append)]
    )
    with django_capture_on_commit_callbacks(execute=True):
        crm.update_contact(contact, {"job_title": "CTO"})

    # One run: the spy first hears the change and the promotion together.
    assert len(runs) == 1
    assert runs[0].changed == {contact.pk: {"job_title"}}
    assert runs[0].stages == {"mql": {contact.pk}}


def test_an_import_is_told_as_history(
    django_capture_on_commit_callbacks: Any, only_reactions: Any, tmp_path: Any
) -> None:
    from embudo.csvimport.run import ImportOptions, run_import

    runs = heard(only_reactions)
    path = tmp_path / "contacts.csv"
    path.write_text("email,lifecycle_stage\nada@example.com,lead\n")
    with django_capture_on_commit_callbacks(execute=True):
        run_import("contacts", path, ImportOptions())

    ada = Contact.objects.get(email="ada@example.com")
    [run] = runs
    assert run.imported == {ada.pk}
    assert run.changed == {ada.pk: {pipeline.ANY_FIELD}}


def test_a_company_change_reaches_its_contacts_only_for_company_fields() -> None:
    from tests.factories import make_company

    company = make_company(industry="Retail")
    worker = make_contact(company_id=company.pk)
    make_contact()
    moments = pipeline.Moments(companies={company.pk})

    assert moments.contacts_touching({"company.industry"}) == {worker.pk}
    assert moments.contacts_touching({"job_title", "event"}) == set()


def test_contacts_touching_maps_columns_to_the_fields_that_read_them() -> None:
    moments = pipeline.Moments(
        changed={1: {"owner_id"}, 2: {"properties"}, 3: {"lead_status"}, 4: {pipeline.ANY_FIELD}},
        events={"page_view": {5}},
        scores={6},
    )
    assert moments.contacts_touching({"owner"}) == {1, 4}
    assert moments.contacts_touching({"property.plan"}) == {2, 4}
    assert moments.contacts_touching({"event", "score.main.total"}) == {4, 5, 6}
    assert moments.contacts_touching({"updated_at"}) == {1, 2, 3, 4}
