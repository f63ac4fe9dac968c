"""Deals through their actions: stages and history, contacts through the lifecycle, winning and
losing with reasons, currencies and exchange rates, pipelines and goals."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from embudo.accounts.models import AuditEntry
from embudo.crm.models import LifecycleTransition
from embudo.deals import actions
from embudo.deals.models import Deal, DealStageChange, ExchangeRate, Goal, LostReason, Stage
from embudo.deals.periods import parse_period
from embudo.errors import ValidationFailed
from tests.factories import make_contact, make_user
from tests.journeys import journey

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def days(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def stage(name: str) -> Stage:
    pipeline = actions.default_pipeline()
    return Stage.objects.get(pipeline=pipeline, name=name)


def deal(**data: object) -> Deal:
    values = {"name": "Acme", "amount": "1000", "expected_close_date": "2026-04-30", **data}
    return actions.create_deal(values, at=values.pop("at", None))  # type: ignore[arg-type]


def test_new_deal_moves_its_contacts_to_opportunity_with_the_cause() -> None:
    lead = make_contact(lifecycle_stage="lead", at=days(-10))
    sql = make_contact(lifecycle_stage="sql", at=days(-5))

    created = actions.create_deal(
        {
            "name": "Acme pilot",
            "amount": "1200.50",
            "expected_close_date": "2026-04-30",
            "contact_ids": [lead.pk, sql.pk],
        },
        cause="api",
        at=T0,
    )

    for contact in (lead, sql):
        contact.refresh_from_db()
        assert contact.lifecycle_stage == "opportunity"
        last = LifecycleTransition.objects.filter(contact=contact).order_by("-changed_at").first()
        assert last is not None
        assert (last.to_stage, last.cause, last.changed_at) == ("opportunity", "api", T0)
        assert f"deal {created.pk}" in last.note
    assert created.stage.name == "Qualified"
    assert created.amount_reporting == Decimal("1200.50")
    assert list(created.stage_changes.values_list("from_stage", "to_stage__name")) == [
        (None, "Qualified")
    ]


def test_customer_on_a_new_deal_stays_customer() -> None:
    customer = make_contact(lifecycle_stage="customer")

    deal(contact_ids=[customer.pk])

    customer.refresh_from_db()
    assert customer.lifecycle_stage == "customer"
    assert customer.transitions.count() == 1


def test_engagement_starts_when_a_contact_became_sql() -> None:
    contact = make_contact(lifecycle_stage="lead", at=days(-30))
    journey(contact, stages=[("mql", days(-20)), ("sql", days(-12))])

    created = deal(contact_ids=[contact.pk], at=T0)

    assert created.engaged_at == days(-12)
    assert created.created_at == T0


def test_winning_makes_contacts_customers_and_records_the_stage_move() -> None:
    contact = make_contact(lifecycle_stage="sql", at=days(-3))
    created = deal(contact_ids=[contact.pk], at=T0)
    actions.move_deal_stage(created, stage("Proposal"), at=days(5))

    actions.win_deal(created, at=days(20))

    created.refresh_from_db()
    contact.refresh_from_db()
    assert (created.status, created.stage.name, created.closed_at) == ("won", "Won", days(20))
    assert created.forecast_category == "closed_won"
    assert contact.lifecycle_stage == "customer"
    assert contact.lifecycle_stage_changed_at == days(20)
    moves = [
        (c.from_stage.name if c.from_stage else None, c.to_stage.name, c.changed_at)
        for c in DealStageChange.objects.filter(deal=created).order_by("changed_at")
    ]
    assert moves == [
        (None, "Qualified", T0),
        ("Qualified", "Proposal", days(5)),
        ("Proposal", "Won", days(20)),
    ]
    assert AuditEntry.objects.filter(action="deal.stage", object_id=str(created.pk)).count() == 2


def test_losing_needs_a_reason_from_the_list() -> None:
    created = deal()

    with pytest.raises(ValidationFailed) as failed:
        actions.lose_deal(created, None)

    assert "needs a reason" in failed.value.errors["lost_reason"][0]
    assert "Price" in failed.value.errors["lost_reason"][0]
    created.refresh_from_db()
    assert created.status == "open"
    assert created.stage_changes.count() == 1


def test_lost_deal_keeps_reason_and_note_and_contacts_stay_opportunities() -> None:
    contact = make_contact(lifecycle_stage="mql")
    created = deal(contact_ids=[contact.pk])
    reason = LostReason.objects.get(name="Price")

    actions.lose_deal(created, reason, note="went with the cheaper one")

    created.refresh_from_db()
    contact.refresh_from_db()
    assert (created.status, created.lost_reason, created.lost_note) == (
        "lost",
        reason,
        "went with the cheaper one",
    )
    assert created.forecast_category == "omitted"
    assert contact.lifecycle_stage == "opportunity"


def test_retired_lost_reason_cannot_be_chosen_and_a_new_one_can() -> None:
    created = deal()
    retired = actions.set_lost_reason_active(LostReason.objects.get(name="Timing"), False)
    added = actions.create_lost_reason("Security review failed")

    with pytest.raises(ValidationFailed):
        actions.lose_deal(created, retired)
    actions.lose_deal(created, added)

    assert Deal.objects.get(pk=created.pk).lost_reason == added


def test_reopening_a_lost_deal_clears_its_close() -> None:
    created = deal()
    actions.lose_deal(created, LostReason.objects.get(name="Price"))

    actions.move_deal_stage(created, stage("Negotiation"))

    created.refresh_from_db()
    assert (created.status, created.closed_at, created.lost_reason) == ("open", None, None)
    assert created.forecast_category == "commit"


def test_moving_to_the_current_stage_records_nothing() -> None:
    created = deal()

    assert actions.move_deal_stage(created, stage("Qualified")) is None
    assert created.stage_changes.count() == 1


def test_currency_without_an_exchange_rate_is_refused_and_nothing_is_stored() -> None:
    contact = make_contact(lifecycle_stage="lead")

    with pytest.raises(ValidationFailed) as failed:
        deal(currency="USD", contact_ids=[contact.pk])

    message = failed.value.errors["currency"][0]
    assert "no exchange rate from USD to EUR" in message
    assert Deal.objects.count() == 0
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "lead"


def test_foreign_amounts_are_reported_in_the_reporting_currency() -> None:
    actions.set_exchange_rate("USD", "0.9")

    created = deal(currency="usd", amount="1234.56")

    assert created.currency == "USD"
    assert created.amount_reporting == Decimal("1111.10")


def test_new_rate_re_expresses_open_deals_but_not_closed_ones() -> None:
    actions.set_exchange_rate("USD", "0.9")
    open_deal = deal(currency="USD", amount="1000")
    won_deal = deal(currency="USD", amount="1000")
    actions.win_deal(won_deal)

    actions.set_exchange_rate("USD", "0.8")

    open_deal.refresh_from_db()
    won_deal.refresh_from_db()
    assert open_deal.amount_reporting == Decimal("800.00")
    assert won_deal.amount_reporting == Decimal("900.00")


@pytest.mark.parametrize("rate", ["0", "-1", "abc", ""])
def test_bad_exchange_rates_are_refused(rate: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        actions.set_exchange_rate("USD", rate)

    assert "rate" in failed.value.errors
    assert not ExchangeRate.objects.exists()


def test_reporting_currency_has_no_rate_to_set() -> None:
    with pytest.raises(ValidationFailed) as failed:
        actions.set_exchange_rate("EUR", "1.1")

    assert "is the reporting currency" in failed.value.errors["currency"][0]


def test_reporting_currency_can_change_only_before_the_first_deal() -> None:
    actions.set_reporting_currency("USD")
    assert actions.reporting_currency() == "USD"
    deal(amount="10")

    with pytest.raises(ValidationFailed) as failed:
        actions.set_reporting_currency("EUR")

    assert "already expressed in USD" in failed.value.errors["currency"][0]


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"amount": "-5"}, "amount"),
        ({"amount": "ten"}, "amount"),
        ({"name": "  "}, "name"),
        ({"expected_close_date": ""}, "expected_close_date"),
        ({"expected_close_date": "31/02/2026"}, "expected_close_date"),
        ({"currency": "EURO"}, "currency"),
        ({"contact_ids": [999999]}, "contact_ids"),
        ({"owner_id": 999999}, "owner_id"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_deal_fields_are_named_and_nothing_is_stored(
    data: dict[str, object], field: str
) -> None:
    with pytest.raises(ValidationFailed) as failed:
        deal(**data)

    assert field in failed.value.errors
    assert Deal.objects.count() == 0


def test_a_pipeline_needs_open_won_and_lost_stages_with_sane_probabilities() -> None:
    with pytest.raises(ValidationFailed) as failed:
        actions.create_pipeline(
            "Renewals",
            [
                {"name": "Due", "probability": "1.5"},
                {"name": "Renewed", "probability": "1", "kind": "won"},
            ],
        )

    assert "between 0 and 1" in failed.value.errors["stages.0.probability"][0]

    with pytest.raises(ValidationFailed) as failed:
        actions.create_pipeline(
            "Renewals",
            [
                {"name": "Due", "probability": "0.5"},
                {"name": "Renewed", "probability": "1", "kind": "won"},
            ],
        )
    assert "one open, one won and one lost" in failed.value.errors["stages"][0]


def test_deals_in_a_second_pipeline_start_at_its_first_stage() -> None:
    renewals = actions.create_pipeline(
        "Renewals",
        [
            {"name": "Due", "probability": "0.6", "forecast_category": "best_case"},
            {"name": "Renewed", "probability": "1", "kind": "won"},
            {"name": "Churned", "probability": "0", "kind": "lost"},
        ],
    )

    created = deal(pipeline_id=renewals.pk)
    actions.win_deal(created)

    assert created.stage.name == "Renewed"
    assert Deal.objects.get(pk=created.pk).pipeline == renewals


def test_stage_probability_and_category_changes_follow_to_open_deals() -> None:
    proposal = stage("Proposal")
    created = deal(stage_id=proposal.pk)

    actions.update_stage(proposal, {"probability": "0.6", "forecast_category": "commit"})

    created.refresh_from_db()
    assert created.forecast_category == "commit"
    assert Stage.objects.get(pk=proposal.pk).probability == Decimal("0.6")


def test_goal_is_set_once_per_period_and_replaced_on_a_second_set() -> None:
    period = parse_period("2026-05")
    rep = make_user("sales")

    actions.set_goal(period, "20000")
    actions.set_goal(period, "25000")
    actions.set_goal(period, "5000", owner=rep)

    company_goal = Goal.objects.get(period_start=dt.date(2026, 5, 1), owner=None)
    assert company_goal.amount == Decimal("25000.00")
    assert Goal.objects.count() == 2


@pytest.mark.parametrize("amount", ["0", "-100"])
def test_zero_or_negative_goal_is_refused(amount: str) -> None:
    with pytest.raises(ValidationFailed) as failed:
        actions.set_goal(parse_period("2026-05"), amount)

    assert "greater than zero" in failed.value.errors["amount"][0]
    assert not Goal.objects.exists()


def test_merging_two_contacts_on_one_deal_keeps_one_link_and_every_other_deal() -> None:
    from embudo.crm.actions import merge_contacts

    primary = make_contact(lifecycle_stage="sql", at=days(-9))
    duplicate = make_contact(lifecycle_stage="sql", at=days(-8))
    shared = deal(contact_ids=[primary.pk, duplicate.pk])
    own = deal(name="Second", contact_ids=[duplicate.pk])

    merge_contacts(primary, duplicate)

    assert list(shared.contacts.values_list("pk", flat=True)) == [primary.pk]
    assert list(own.contacts.values_list("pk", flat=True)) == [primary.pk]
