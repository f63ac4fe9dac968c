"""Rule-based scoring: decay, caps, negative points, repeatable rules, bands and history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from freezegun import freeze_time

from embudo.scoring import actions, engine, queries
from embudo.scoring.models import ContactScore, ModelStatus, ScoreHistory
from tests.factories import (
    PRICING,
    event_rule,
    fit_rule,
    make_company,
    make_contact,
    make_scoring_model,
)
from tests.journeys import Event, journey, journeys, person

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def score(contact: Any, model: Any, at: dt.datetime | None = None) -> queries.Score:
    return next(s for s in queries.contact_scores(contact.pk, at=at) if s.model_key == model.key)


def test_engagement_halves_every_half_life_without_a_rescore() -> None:
    with freeze_time(T0):
        model = make_scoring_model([event_rule(PRICING, 10, repeatable=True)], half_life_days=10)
        contact = journey(
            person(events=[Event("page_view", T0, url="https://shop.example/pricing")])
        )
        engine.rescore_contacts([contact.pk], now=T0)

    assert score(contact, model, T0).engagement == pytest.approx(10)
    with freeze_time(T0 + dt.timedelta(days=10)):
        assert score(contact, model).engagement == pytest.approx(5)
    assert score(contact, model, T0 + dt.timedelta(days=20)).engagement == pytest.approx(2.5)
    # Only the events changed the stored row: reading at a later time wrote nothing.
    assert ScoreHistory.objects.filter(contact=contact).count() == 1


def test_a_model_created_before_any_contact_exists_ends_ready() -> None:
    model = make_scoring_model(
        [fit_rule("job_title", "contains", "director", 15), event_rule(PRICING, 10)]
    )

    outcome = actions.rescore_model(model, version=model.version)  # what its queued task runs

    model.refresh_from_db()
    assert (model.status, model.last_error) == (ModelStatus.READY, "")
    assert outcome is not None and outcome.contacts == 0


def test_an_older_event_counts_less_than_a_fresh_one() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [event_rule("form_submit", 20, repeatable=True)], half_life_days=7
        )
        people = journeys(
            {
                "old": person(events=[Event("form_submit", T0 - dt.timedelta(days=14))]),
                "fresh": person(events=[Event("form_submit", T0)]),
            }
        )
        actions.rescore_model(model)

    assert score(people["fresh"], model, T0).engagement == pytest.approx(20)
    assert score(people["old"], model, T0).engagement == pytest.approx(5)


def test_fit_rules_add_points_and_a_negative_rule_takes_them_away() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [
                fit_rule("company.industry", "eq", "Software", 25),
                fit_rule("job_title", "contains", "director", 15),
                fit_rule("email_domain", "eq", "students.example.edu", -30, name="Student email"),
            ]
        )
        software = make_company(industry="Software")
        buyer = make_contact(company_id=software.pk, job_title="Marketing Director")
        student = make_contact(email="ana@students.example.edu", job_title="Director of fun")
        nobody = make_contact()
        actions.rescore_model(model)

    assert score(buyer, model, T0).fit == 40
    assert score(student, model, T0).fit == -15
    assert [r.rule for r in score(student, model, T0).reasons] == [
        "Student email",
        "job_title contains director",
    ]
    assert score(nobody, model, T0).fit == 0
    assert not ContactScore.objects.filter(contact=nobody).exists()


def test_caps_hold_fit_engagement_and_total() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [
                fit_rule("job_title", "contains", "cto", 40),
                fit_rule("first_name", "eq", "Ada", 40),
                event_rule("page_view", 10, repeatable=True),
            ],
            fit_cap=50,
            engagement_cap=30,
            total_cap=70,
        )
        contact = journey(
            person(first_name="Ada", job_title="CTO", events=[Event("page_view", T0, times=6)])
        )
        actions.rescore_model(model)

    result = score(contact, model, T0)
    assert (result.fit, result.engagement, result.total) == (50, 30, 70)
    # Uncapped it is 60 of engagement: after one half-life it is still at the cap of 30.
    assert score(contact, model, T0 + dt.timedelta(days=10)).engagement == pytest.approx(30)
    assert score(contact, model, T0 + dt.timedelta(days=20)).engagement == pytest.approx(15)


def test_a_repeatable_rule_stops_at_its_cap_and_a_one_off_counts_once() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [
                event_rule("page_view", 3, repeatable=True, max_points=10),
                event_rule("webinar_attended", 15, repeatable=False),
                event_rule("email_click", 2, repeatable=True),
            ]
        )
        contact = journey(
            person(
                events=[
                    Event("page_view", T0, times=5),
                    Event("webinar_attended", T0, times=3),
                    Event("email_click", T0, times=4),
                ]
            )
        )
        actions.rescore_model(model)

    reasons = {r.rule: r.points for r in score(contact, model, T0).reasons}
    assert reasons == {"did page_view": 10, "did webinar_attended": 15, "did email_click": 8}
    assert score(contact, model, T0).engagement == pytest.approx(33)


def test_a_capped_rule_counts_the_most_recent_events() -> None:
    with freeze_time(T0):
        model = make_scoring_model([event_rule("page_view", 10, repeatable=True, max_points=10)])
        contact = journey(
            person(events=[Event("page_view", T0 - dt.timedelta(days=10)), Event("page_view", T0)])
        )
        actions.rescore_model(model)

    assert score(contact, model, T0).engagement == pytest.approx(10)


def test_bands_follow_the_total_now() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [fit_rule("job_title", "eq", "CEO", 30), event_rule("demo_request", 50)],
            band_a=70,
            band_b=45,
            band_c=20,
        )
        contact = journey(person(job_title="CEO", events=[Event("demo_request", T0)]))
        actions.rescore_model(model)
        bystander = make_contact()

    assert score(contact, model, T0).band == "A"  # 80
    assert score(contact, model, T0 + dt.timedelta(days=10)).band == "B"  # 30 + 25
    assert score(contact, model, T0 + dt.timedelta(days=30)).band == "C"  # 30 + 6.25
    assert score(bystander, model, T0).band == "D"


def test_each_change_keeps_a_history_row_with_its_reasons() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [
                fit_rule("job_title", "eq", "CEO", 30),
                event_rule(PRICING, 5, repeatable=True, name="Pricing page"),
            ]
        )
        contact = make_contact(job_title="CEO")
        actions.rescore_model(model)
    later = T0 + dt.timedelta(days=3)
    with freeze_time(later):
        journey(contact, events=[Event("page_view", later, url="/pricing")])
        engine.rescore_contacts([contact.pk], now=later, cause="event")
        engine.rescore_contacts([contact.pk], now=later, cause="event")  # nothing new: no row

    rows = list(queries.score_history(contact.pk, model_key=model.key))
    assert [(r.fit, r.engagement, r.cause) for r in rows] == [(30, 5, "event"), (30, 0, "rules")]
    assert rows[0].reasons == [["job_title eq CEO", 30], ["Pricing page", 5]]
    assert rows[0].band == "C"


def test_several_models_score_the_same_contact_independently() -> None:
    with freeze_time(T0):
        cloud = make_scoring_model(
            [fit_rule("company.industry", "eq", "Software", 40)], key="cloud"
        )
        retail = make_scoring_model(
            [fit_rule("company.industry", "eq", "Retail", 40)], key="retail"
        )
        contact = make_contact(company_id=make_company(industry="Retail").pk)
        actions.rescore_model(cloud)
        actions.rescore_model(retail)

    by_model = {s.model_key: s.fit for s in queries.contact_scores(contact.pk, at=T0)}
    assert by_model == {"cloud": 0, "retail": 40}


def test_score_fields_work_in_conditions_at_the_moment_asked() -> None:
    from embudo.crm.models import Contact
    from embudo.segments.conditions import compile_condition

    with freeze_time(T0):
        model = make_scoring_model([event_rule("demo_request", 40)], key="main", half_life_days=10)
        hot, cold = journeys(
            {"hot": person(events=[Event("demo_request", T0)]), "cold": person()}
        ).values()
        actions.rescore_model(model)

    def who(condition: dict[str, Any], at: dt.datetime) -> set[int]:
        return set(
            Contact.objects.filter(compile_condition(condition, at)).values_list("pk", flat=True)
        )

    assert who({"field": "score.main.engagement", "op": "gte", "value": 30}, T0) == {hot.pk}
    later = T0 + dt.timedelta(days=10)  # 20 points now
    assert who({"field": "score.main.engagement", "op": "gte", "value": 30}, later) == set()
    assert who({"field": "score.main.total", "op": "lt", "value": 30}, later) == {hot.pk, cold.pk}
    assert who(
        {"field": "score.main.band", "op": "eq", "value": "D"}, T0 + dt.timedelta(days=40)
    ) == {hot.pk, cold.pk}
    assert who({"field": "score.main.band", "op": "in", "value": ["B", "C"]}, T0) == {hot.pk}


def test_the_contacts_export_carries_each_models_scores() -> None:
    import csv
    import io

    from embudo.crm import exporting

    with freeze_time(T0):
        model = make_scoring_model(
            [fit_rule("job_title", "eq", "CTO", 30), event_rule("demo_request", 20)], key="main"
        )
        cto = journey(person(job_title="CTO", events=[Event("demo_request", T0)]))
        actions.rescore_model(model)
        out = io.StringIO()
        exporting.export_csv("contacts", out)

    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(out.getvalue()))}
    row = rows[cto.email]
    assert (row["score_main_fit"], row["score_main_engagement"]) == ("30.0", "20.0")
    assert (row["score_main_total"], row["score_main_band"]) == ("50.0", "B")
    assert "score_main_band" in exporting.read_only_headers("contacts")


def test_the_demo_models_rules_are_valid_conditions() -> None:
    from embudo.scoring.demo import DEFAULT_RULES

    problems = {
        name: actions.condition_problem(kind, cond) for kind, name, cond, *_ in DEFAULT_RULES
    }
    assert {name: p for name, p in problems.items() if p} == {}


def test_persona_and_score_conditions_compile_together() -> None:
    from embudo.crm.models import Contact
    from embudo.segments.conditions import compile_condition, describe_condition

    with freeze_time(T0):
        model = make_scoring_model([fit_rule("job_title", "eq", "CTO", 30)], key="main")
        cto = make_contact(job_title="CTO")
        make_contact()
        actions.rescore_model(model)
        condition = {
            "all": [
                {"field": "persona", "op": "is_not_set"},
                {"field": "score.main.fit", "op": "gte", "value": 20},
            ]
        }
        matched = list(Contact.objects.filter(compile_condition(condition, T0)))

    assert matched == [cto]
    assert describe_condition(condition) == "persona is not set and score main fit >= 20"
