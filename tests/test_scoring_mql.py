"""The MQL rule, keeping scores current through the hooks, and rescoring safely."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time

from embudo import pipeline
from embudo.crm import actions as crm
from embudo.crm.models import Contact, LifecycleTransition, TransitionCause
from embudo.scoring import actions, engine, queries
from embudo.scoring.engine import write
from embudo.scoring.models import ContactScore, ModelStatus, ScoreHistory
from tests.factories import event_rule, fit_rule, make_company, make_contact, make_scoring_model
from tests.journeys import Event, journey, journeys, person

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 5, 4, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def only_scoring_reacts(only_reactions: Any) -> None:
    """Other apps' reactions (handoff assigns new MQLs…) have their own tests; these test
    scoring's."""
    only_reactions("rescore")


@pytest.fixture
def immediate_tasks(settings: Any) -> None:
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}


def mql_model(**kwargs: Any) -> Any:
    """Fit 30 for directors; 20 per demo request; MQL at fit ≥ 30 and engagement ≥ 15."""
    return make_scoring_model(
        [fit_rule("job_title", "contains", "director", 30), event_rule("demo_request", 20)],
        **{"mql_fit": 30, "mql_engagement": 15, **kwargs},
    )


def stage(contact: Contact) -> str:
    return Contact.objects.get(pk=contact.pk).lifecycle_stage


def test_crossing_the_threshold_makes_a_lead_an_mql_with_cause_rule() -> None:
    with freeze_time(T0):
        model = mql_model()
        lead = journey(
            person(job_title="IT Director", stage="lead", events=[Event("demo_request", T0)])
        )
        engine.rescore_contacts([lead.pk], now=T0, cause="event")

    assert stage(lead) == "mql"
    move = LifecycleTransition.objects.filter(contact=lead).last()
    assert move is not None
    assert (move.from_stage, move.to_stage, move.cause) == ("lead", "mql", TransitionCause.RULE)
    assert model.key in move.note
    history = ScoreHistory.objects.get(contact=lead)
    assert (history.fit, history.engagement, history.cause) == (30, 20, "event")


def test_below_the_threshold_nobody_moves() -> None:
    with freeze_time(T0):
        mql_model()
        engaged_but_unfit = journey(
            person(job_title="Intern", stage="lead", events=[Event("demo_request", T0)])
        )
        engine.rescore_contacts([engaged_but_unfit.pk], now=T0)

    assert stage(engaged_but_unfit) == "lead"


def test_a_customer_is_never_moved_back_to_mql() -> None:
    with freeze_time(T0):
        model = mql_model()
        customer = journey(
            person(job_title="Director", stage="customer", events=[Event("demo_request", T0)])
        )
        actions.rescore_model(model)

    assert stage(customer) == "customer"
    assert ContactScore.objects.get(contact=customer).qualified


def test_a_full_rescore_promotes_many_at_once_and_tells_the_pipeline(
    django_capture_on_commit_callbacks: Any, only_reactions: Any
) -> None:
    moved: list[tuple[str, list[int]]] = []
    spy = pipeline.Reaction(
        "spy", lambda m: moved.extend((stage, sorted(ids)) for stage, ids in m.stages.items())
    )
    only_reactions("rescore", also=[spy])
    with freeze_time(T0):
        model = mql_model(mql_total=None)
        leads = list(
            journeys(
                {
                    f"lead {i}": person(
                        job_title="Director", stage="lead", events=[Event("demo_request", T0)]
                    )
                    for i in range(3)
                }
            ).values()
        )
        with django_capture_on_commit_callbacks(execute=True):
            outcome = actions.rescore_model(model)

    assert outcome is not None and sorted(outcome.promoted) == sorted(c.pk for c in leads)
    assert {stage(c) for c in leads} == {"mql"}
    assert ("mql", sorted(c.pk for c in leads)) in moved
    assert LifecycleTransition.objects.filter(to_stage="mql", cause="rule").count() == 3


def test_a_recycled_lead_becomes_an_mql_again_when_it_crosses_again() -> None:
    with freeze_time(T0):
        mql_model(half_life_days=7)
        contact = journey(
            person(job_title="Director", stage="lead", events=[Event("demo_request", T0)])
        )
        engine.rescore_contacts([contact.pk], now=T0)
    assert stage(contact) == "mql"

    # Sales recycles it while it is still engaged: the rule does not bounce it straight back.
    day2 = T0 + dt.timedelta(days=1)
    with freeze_time(day2):
        journey(
            contact,
            stages=[("lead", day2, TransitionCause.FEEDBACK)],
            events=[Event("page_view", day2)],
        )
        engine.rescore_contacts([contact.pk], now=day2)
    assert stage(contact) == "lead"

    # A month later its engagement has decayed below 15; a new demo request crosses again.
    later = T0 + dt.timedelta(days=30)
    with freeze_time(later):
        journey(contact, events=[Event("demo_request", later)])
        engine.rescore_contacts([contact.pk], now=later)
    assert stage(contact) == "mql"
    causes = list(
        LifecycleTransition.objects.filter(contact=contact).values_list("to_stage", "cause")
    )
    assert causes[-3:] == [("mql", "rule"), ("lead", "feedback"), ("mql", "rule")]


def test_a_lowered_threshold_promotes_leads_already_above_it(immediate_tasks: None) -> None:
    with freeze_time(T0):
        model = mql_model(mql_engagement=50)
        lead = journey(
            person(job_title="Director", stage="lead", events=[Event("demo_request", T0)])
        )
        actions.rescore_model(model)
        assert stage(lead) == "lead"
        actions.update_model(model, {"mql_engagement": 15})
        actions.rescore_model(model)

    assert stage(lead) == "mql"


def test_a_new_event_rescores_its_contact_once_committed(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with freeze_time(T0):
        model = mql_model()
        contact = make_contact(job_title="Director")
        with django_capture_on_commit_callbacks(execute=True):
            journey(contact, events=[Event("demo_request", T0)])
        result = queries.contact_scores(contact.pk)

    assert [(s.model_key, s.fit, s.engagement) for s in result] == [
        (model.key, 30, pytest.approx(20))
    ]
    assert stage(contact) == "mql"


def test_a_changed_contact_gets_its_fit_again(django_capture_on_commit_callbacks: Any) -> None:
    with freeze_time(T0):
        model = make_scoring_model([fit_rule("company.industry", "eq", "Software", 25)])
        contact = make_contact()
        with django_capture_on_commit_callbacks(execute=True):
            crm.update_contact(contact, {"company_id": make_company(industry="Software").pk})

    assert queries.contact_scores(contact.pk, at=T0)[0].fit == 25
    assert ScoreHistory.objects.filter(contact=contact, model=model, cause="contact").exists()


def test_merging_keeps_one_score_row_for_the_merged_contact(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with freeze_time(T0):
        model = make_scoring_model([event_rule("page_view", 5, repeatable=True)])
        primary, duplicate = journeys(
            {
                "primary": person(events=[Event("page_view", T0)]),
                "duplicate": person(events=[Event("page_view", T0, times=2)]),
            }
        ).values()
        actions.rescore_model(model)
        with django_capture_on_commit_callbacks(execute=True):
            crm.merge_contacts(primary, duplicate)

    assert ContactScore.objects.filter(model=model).count() == 1
    assert queries.contact_scores(primary.pk, at=T0)[0].engagement == pytest.approx(15)


def test_changing_rules_rescores_everyone_in_the_background(
    immediate_tasks: None, django_capture_on_commit_callbacks: Any
) -> None:
    with freeze_time(T0):
        model = make_scoring_model([fit_rule("job_title", "eq", "CTO", 10)])
        cto = make_contact(job_title="CTO")
        actions.rescore_model(model)
        rule = model.rules.get()
        with django_capture_on_commit_callbacks(execute=True):
            actions.update_rule(rule, {"points": 35})
            model.refresh_from_db()
            assert model.status == ModelStatus.RESCORING

    model.refresh_from_db()
    assert model.status == ModelStatus.READY
    assert queries.contact_scores(cto.pk, at=T0)[0].fit == 35
    assert list(
        ScoreHistory.objects.filter(contact=cto).order_by("id").values_list("fit", flat=True)
    ) == [10, 35]


def test_a_rescore_failing_midway_keeps_every_previous_score(monkeypatch: Any) -> None:
    with freeze_time(T0):
        model = make_scoring_model([fit_rule("job_title", "eq", "CTO", 10)])
        ctos = [make_contact(job_title="CTO") for _ in range(3)]
        actions.rescore_model(model)
        model.rules.update(points=99)

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("disk full")

        # The scores are written, then the history fails: the whole write must roll back.
        monkeypatch.setattr(write, "_write_history", broken)
        with pytest.raises(RuntimeError):
            actions.rescore_model(model)

    assert {queries.contact_scores(c.pk, at=T0)[0].fit for c in ctos} == {10}
    model.refresh_from_db()
    assert model.status == ModelStatus.FAILED
    assert "disk full" in model.last_error


def test_embudo_score_rescore_recomputes_a_model_and_says_what_changed() -> None:
    import io

    from django.core.management import CommandError, call_command

    with freeze_time(T0):
        model = mql_model(key="main")
        lead = journey(
            person(job_title="Director", stage="lead", events=[Event("demo_request", T0)])
        )
        out = io.StringIO()
        call_command("score", "rescore", "--model", "main", stdout=out)

    assert "main: 1 contacts, 1 changed, 1 new MQLs" in out.getvalue()
    assert stage(lead) == "mql"
    model.refresh_from_db()
    assert model.status == ModelStatus.READY
    with pytest.raises(CommandError, match="no scoring model with the key 'nope'"):
        call_command("score", "rescore", "--model", "nope", stdout=io.StringIO())


def test_a_changed_company_rescores_its_contacts(django_capture_on_commit_callbacks: Any) -> None:
    with freeze_time(T0):
        model = make_scoring_model([fit_rule("company.employees", "gte", 200, 10)])
        company = make_company(employees=50)
        contact = make_contact(company_id=company.pk)
        actions.rescore_model(model)
        with django_capture_on_commit_callbacks(execute=True):
            crm.update_company(company, {"employees": 500})

    assert queries.contact_scores(contact.pk, at=T0)[0].fit == 10
