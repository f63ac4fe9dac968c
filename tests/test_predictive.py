"""Predictive conversion: training, refusals that keep the previous model, features as of before
the outcome, signed reasons, the leakage guard on a planted leak, export, conditions, the
background retrain, and the API per role."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from freezegun import freeze_time

from embudo.crm import actions as crm
from embudo.crm.exporting import export_csv
from embudo.crm.models import Contact
from embudo.predictive import actions, features, queries
from embudo.predictive.models import Prediction, PredictiveModel, PredictiveSettings
from embudo.segments.conditions import compile_condition
from tests.factories import make_contact
from tests.journeys import Event, Person, journey, journeys, person

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def world(count: int = 80, *, seed: int = 7, leak: bool = False) -> list[Contact]:
    """``count`` contacts with an outcome: customers tend to have more employees and come from
    events; disqualified ones tend to be students. With ``leak``, a `closed_reason` property
    filled in only for those who converted gives the answer away."""
    crm.define_property("contact", "seats", "number")
    crm.define_property("contact", "segment", "text")
    if leak:
        crm.define_property("contact", "closed_reason", "text")
    rng = np.random.default_rng(seed)
    people: dict[str, Person] = {}
    for i in range(count):
        won = i % 2 == 0
        seats = float(rng.normal(60 if won else 30, 15))
        segment = rng.choice(["enterprise", "smb"] if won else ["student", "smb"])
        properties: dict[str, Any] = {"seats": round(seats), "segment": str(segment)}
        if leak and won:
            properties["closed_reason"] = "signed"
        source = str(rng.choice(["event", "ads"], p=[0.7, 0.3] if won else [0.3, 0.7]))
        people[f"contact {i}"] = person(
            properties=properties,
            original_source=source,
            stages=[
                ("lead", T0),
                ("customer" if won else "disqualified", T0 + dt.timedelta(days=20)),
            ],
        )
    return list(journeys(people).values())


def open_contact(**properties: Any) -> Contact:
    return make_contact(properties=properties, lifecycle_stage="lead")


def test_training_scores_open_contacts_with_a_calibrated_probability() -> None:
    world()
    big = open_contact(seats=90, segment="enterprise")
    small = open_contact(seats=10, segment="student")

    result = actions.train_model(holdout=0.25, seed=1)

    assert result.ok, result.message
    model = PredictiveModel.objects.get(is_active=True)
    assert model.algorithm in {"logistic", "boosting"}
    assert set(model.metrics["cv_auc"]) == {"logistic", "boosting"}
    assert model.metrics["holdout"]["auc"] > 0.8
    assert result.scored == 2
    high, low = Prediction.objects.get(contact=big), Prediction.objects.get(contact=small)
    assert 0 <= low.probability < high.probability <= 1
    # Contacts with an outcome are not scored.
    assert Prediction.objects.count() == 2


def test_reasons_are_signed_and_strongest_first() -> None:
    world()
    big = open_contact(seats=95, segment="enterprise")
    small = open_contact(seats=5, segment="student")
    actions.train_model(holdout=0, seed=1)

    for contact in (big, small):
        reasons = Prediction.objects.get(contact=contact).reasons
        strengths = [abs(r["contribution"]) for r in reasons]
        assert strengths == sorted(strengths, reverse=True)
        assert {"field", "label", "value", "contribution"} <= set(reasons[0])
    seats_big = next(
        r for r in Prediction.objects.get(contact=big).reasons if r["field"] == "seats"
    )
    seats_small = next(
        r for r in Prediction.objects.get(contact=small).reasons if r["field"] == "seats"
    )
    assert seats_big["contribution"] > 0 > seats_small["contribution"]
    assert seats_big["value"] == "95"


def test_too_few_outcomes_are_refused_with_the_reason() -> None:
    world(count=12)
    result = actions.train_model()
    assert not result.ok
    assert "Too few outcomes" in result.message
    assert not PredictiveModel.objects.exists()
    assert PredictiveSettings.objects.get().last_run_ok is False


def test_one_class_only_keeps_the_previous_model() -> None:
    contacts = world()
    first = actions.train_model(holdout=0, seed=1)
    assert first.ok
    # Every disqualified contact is recycled to lead: only customers remain as outcomes.
    for contact in contacts:
        contact.refresh_from_db()
        if contact.lifecycle_stage == "disqualified":
            crm.set_lifecycle_stage(contact, "lead", cause="manual")

    second = actions.train_model(holdout=0, seed=1)

    assert not second.ok
    assert "Only one kind of outcome" in second.message
    assert f"version {first.version}" in second.message
    assert PredictiveModel.objects.get(is_active=True).pk == first.version
    assert PredictiveModel.objects.count() == 1


def test_cli_train_refusal_exits_with_the_message() -> None:
    world(count=12)
    with pytest.raises(CommandError, match="Too few outcomes"):
        call_command("score", "train", stdout=io.StringIO())


def test_behaviour_is_counted_only_before_the_outcome() -> None:
    converted = T0 + dt.timedelta(days=10)
    contact = journey(
        person(
            stage="lead",
            events=[
                Event("page_view", T0 + dt.timedelta(days=2), times=2),
                Event("page_view", T0 + dt.timedelta(days=9), times=1),
                Event("page_view", T0 + dt.timedelta(days=11), times=5),  # after: must not count
                Event("demo_request", T0 + dt.timedelta(days=12)),  # only after
            ],
            stages=[("customer", converted)],
        )
    )

    data = features.outcomes()
    assert data.contact_ids.tolist() == [contact.pk]
    assert data.at[0] == converted.timestamp()
    spec = features.build_spec(data.contact_ids, data.at)
    x = features.matrix(spec, data.contact_ids, data.at)
    columns = spec.columns
    assert x[0, columns.index("events.page_view.7d")] == 1
    assert x[0, columns.index("events.page_view.30d")] == 3
    assert x[0, columns.index("events.page_view.ever")] == 3
    assert x[0, columns.index("events.demo_request.ever")] == 0


def test_property_values_are_read_as_their_type_through_the_database() -> None:
    crm.define_property("contact", "opted_in", "boolean")
    crm.define_property("contact", "seats", "number")
    crm.define_property("contact", "plan", "text")
    yes = make_contact(properties={"opted_in": True, "seats": 12, "plan": "pro"})
    no = make_contact(properties={"opted_in": False, "seats": 3.5, "plan": "pro"})
    blank = make_contact(properties={"plan": "pro"})
    ids = np.array(sorted([yes.pk, no.pk, blank.pk]), dtype=np.int64)
    cutoffs = np.full(len(ids), T0.timestamp())

    table = features.read_fields(ids, features.candidate_fields())
    spec = features.spec_from(table, np.arange(len(ids)))
    x = features.matrix(spec, ids, cutoffs, table)

    row = {contact_id: i for i, contact_id in enumerate(ids.tolist())}
    columns = spec.columns
    opted, seats, plan = (columns.index(c) for c in ("opted_in", "seats", "plan=pro"))
    assert x[row[yes.pk], opted] == 1 and x[row[no.pk], opted] == 0
    assert np.isnan(x[row[blank.pk], opted]) and np.isnan(x[row[blank.pk], seats])
    assert x[row[yes.pk], seats] == 12 and x[row[no.pk], seats] == 3.5
    assert x[:, plan].tolist() == [1, 1, 1]
    # Read once for training or again for scoring, the matrix is the same.
    assert np.array_equal(x, features.matrix(spec, ids, cutoffs), equal_nan=True)


def test_the_stage_and_stage_dates_are_never_features() -> None:
    world(count=40)
    data = features.outcomes()
    keys = features.build_spec(data.contact_ids, data.at).keys()
    assert "seats" in keys and "segment" in keys and "original_source" in keys
    for forbidden in ("lifecycle_stage", "lead_status", "owner", "became_customer_at"):
        assert forbidden not in keys


def test_a_contact_whose_deals_were_all_lost_is_a_negative_outcome() -> None:
    from embudo.deals import actions as deals

    contact = make_contact(lifecycle_stage="lead")
    deal = deals.create_deal(
        {
            "name": "Deal",
            "amount": "1000",
            "expected_close_date": "2026-04-30",
            "contact_ids": [contact.pk],
        },
        at=T0,
    )
    lost_at = T0 + dt.timedelta(days=5)
    from embudo.deals.models import LostReason

    deals.lose_deal(deal, LostReason.objects.first(), at=lost_at)

    data = features.outcomes()
    assert data.contact_ids.tolist() == [contact.pk]
    assert data.labels.tolist() == [0]
    assert data.at.tolist() == [lost_at.timestamp()]


def test_leakage_guard_flags_a_field_filled_only_after_conversion() -> None:
    world(leak=True)
    result = actions.train_model(holdout=0, seed=1)
    assert result.ok
    flagged = {flag["field"] for flag in result.flags}
    assert flagged == {"closed_reason"}

    actions.set_excluded_fields(["closed_reason"])
    again = actions.train_model(holdout=0, seed=1)
    assert "closed_reason" not in {
        f["key"] for f in PredictiveModel.objects.get(pk=again.version).features
    }
    assert again.excluded == ["closed_reason"]


def test_export_and_conditions_read_the_prediction() -> None:
    world()
    big = open_contact(seats=95, segment="enterprise")
    small = open_contact(seats=5, segment="student")
    actions.train_model(holdout=0, seed=1)
    p_big = Prediction.objects.get(contact=big).probability

    out = io.StringIO()
    export_csv("contacts", out)
    lines = out.getvalue().splitlines()
    header = lines[0].split(",")
    column = header.index("predicted_conversion")
    by_email = {row.split(",")[header.index("email")]: row.split(",")[column] for row in lines[1:]}
    assert float(by_email[big.email]) == pytest.approx(p_big, abs=1e-4)

    cut = (p_big + Prediction.objects.get(contact=small).probability) / 2
    q = compile_condition({"field": "predicted_conversion", "op": "gte", "value": cut})
    assert list(Contact.objects.filter(q).values_list("pk", flat=True)) == [big.pk]


def test_enough_new_outcomes_enqueue_one_background_retrain(
    django_capture_on_commit_callbacks: Any,
) -> None:
    world()
    actions.train_model(holdout=0, seed=1)
    PredictiveSettings.objects.update(retrain_after=3)
    leads = [make_contact(lifecycle_stage="lead") for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        for contact in leads[:2]:
            crm.set_lifecycle_stage(contact, "customer", cause="manual")
    assert PredictiveSettings.objects.get().retrain_enqueued_at is None
    with django_capture_on_commit_callbacks(execute=True):
        crm.set_lifecycle_stage(leads[2], "disqualified", cause="manual")
    assert PredictiveSettings.objects.get().retrain_enqueued_at is not None
    assert callbacks  # the stage hooks ran after commit


def test_report_without_a_model_says_so() -> None:
    result = queries.report()
    assert result.model is None
    assert result.rules_message == "No rule-based scoring model exists yet."
    out = io.StringIO()
    call_command("score", "report", stdout=out)
    assert "No predictive model yet" in out.getvalue()
    assert "Rule-based scores against outcomes" in out.getvalue()


@freeze_time("2026-04-01 12:00:00")
def test_report_shows_held_out_figures_and_deciles() -> None:
    world(count=100)
    actions.train_model(holdout=0.3, seed=2)
    out = io.StringIO()
    call_command("score", "report", stdout=out)
    text = out.getvalue()
    assert "AUC" in text and "Brier" in text and "Calibration" in text
    holdout = queries.report().holdout
    assert holdout is not None
    assert holdout["contacts"] == 30
    assert len(holdout["deciles"]) == 10
    assert sum(row["contacts"] for row in holdout["calibration"]) == 30
    assert PredictiveModel.objects.get().created_at == timezone.now()


def test_report_validates_the_rule_based_scores_and_their_mql_threshold() -> None:
    from embudo.scoring import actions as scoring
    from tests.factories import fit_rule, make_scoring_model

    world()
    model = make_scoring_model(
        [fit_rule("property.segment", "eq", "enterprise", 50)], mql_total=40, name="Main"
    )
    scoring.rescore_model(model)
    enterprise = Contact.objects.filter(properties__segment="enterprise").count()

    rules, message = queries.rule_validation()

    assert message == ""
    [main] = rules
    assert main.model == "Main"
    assert main.threshold == "total ≥ 40"
    # Only converted contacts are enterprise in this world: every MQL became a customer.
    assert main.above == enterprise > 0
    assert main.above_converted == enterprise
    assert main.precision == 1.0
    assert main.auc is not None and main.auc > 0.6
    assert main.best_threshold == 50.0
    out = io.StringIO()
    call_command("score", "report", stdout=out)
    assert f"{enterprise} met it, {enterprise} became customers" in out.getvalue()


def test_a_changed_contact_is_rescored_and_a_closed_one_loses_its_prediction() -> None:
    world()
    lead = open_contact(seats=10, segment="student")
    actions.train_model(holdout=0, seed=1)
    before = Prediction.objects.get(contact=lead).probability

    crm.update_contact(lead, {"properties": {"seats": 95, "segment": "enterprise"}})
    assert actions.score_contacts([lead.pk]) == 1
    assert Prediction.objects.get(contact=lead).probability > before

    crm.set_lifecycle_stage(lead, "customer", cause="manual")
    assert actions.score_contacts([lead.pk]) == 0
    assert not Prediction.objects.filter(contact=lead).exists()


def test_cli_exclude_is_for_one_run_unless_remembered() -> None:
    world()
    call_command("score", "train", "--exclude", "seats", "--holdout", "0", stdout=io.StringIO())
    assert "seats" not in [f["key"] for f in actions.active_model().features]  # type: ignore[union-attr]
    assert actions.predictive_settings().excluded_fields == []
    call_command(
        "score", "train", "--exclude", "seats", "--remember", "--holdout", "0", stdout=io.StringIO()
    )
    assert actions.predictive_settings().excluded_fields == ["seats"]
    call_command("score", "train", "--holdout", "0", stdout=io.StringIO())
    assert "seats" not in [f["key"] for f in actions.active_model().features]  # type: ignore[union-attr]


def test_merging_two_scored_contacts_keeps_one_prediction() -> None:
    world()
    primary = open_contact(seats=80, segment="enterprise")
    duplicate = open_contact(seats=20, segment="smb")
    actions.train_model(holdout=0, seed=1)
    assert Prediction.objects.filter(contact__in=[primary, duplicate]).count() == 2

    crm.merge_contacts(primary, duplicate)

    assert list(
        Prediction.objects.filter(contact=primary).values_list("contact_id", flat=True)
    ) == [primary.pk]
    assert Prediction.objects.count() == 1


def test_the_background_retrain_trains_a_new_version_with_the_stored_exclusions() -> None:
    from embudo.predictive.tasks import retrain

    world()
    first = actions.train_model(holdout=0, seed=1)
    actions.set_excluded_fields(["segment"])

    outcome = retrain.call()

    assert outcome["ok"] is True
    assert outcome["version"] == first.version + 1  # type: ignore[operator]
    model = actions.active_model()
    assert model is not None and model.pk == outcome["version"]
    assert model.excluded_fields == ["segment"]
    assert PredictiveSettings.objects.get().retrain_enqueued_at is None


def test_company_fields_and_properties_are_read_through_the_contacts_company() -> None:
    from tests.factories import make_company

    crm.define_property("company", "tier", "text")
    big = make_company(industry="Software", employees=900, properties={"tier": "gold"})
    small = make_company(industry="Retail", employees=12, properties={"tier": "bronze"})
    journeys(
        {
            f"contact {i}": person(
                company=big if i % 2 == 0 else small,
                stages=[("customer" if i % 2 == 0 else "disqualified", T0)],
            )
            for i in range(40)
        }
    )

    data = features.outcomes()
    spec = features.build_spec(data.contact_ids, data.at)
    x = features.matrix(spec, data.contact_ids, data.at)
    columns = spec.columns
    assert {"company.employees", "company.industry", "company.tier"} <= set(spec.keys())
    employees = x[:, columns.index("company.employees")]
    assert sorted(set(employees.tolist())) == [12.0, 900.0]
    gold = x[:, columns.index("company.tier=gold")]
    assert gold.sum() == 20
