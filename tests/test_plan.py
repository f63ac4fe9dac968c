"""The reverse-funnel plan: its arithmetic (rounded up at every stage), rates given or measured
by cohort from declared journeys, the fall-backs when data is thin, pacing, and bad input."""

from __future__ import annotations

import datetime as dt
import io
import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from embudo.deals import actions
from embudo.deals.periods import parse_period
from embudo.deals.planner import PlanError, PlanRequest, make_plan, measure_rates, parse_rate
from tests.factories import make_contact
from tests.journeys import StageStep, journeys, person

pytestmark = pytest.mark.django_db

MAY = parse_period("2026-05")
AS_OF = dt.datetime(2026, 5, 16, 0, 0, tzinfo=dt.UTC)  # 15 of May's 31 days gone


def at(day: int, month: int = 5, hour: int = 9) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, tzinfo=dt.UTC)


def plan(*rates: str, **kwargs: object) -> object:
    values: dict[str, object] = {"period": MAY, "as_of": AS_OF, **kwargs}
    values["rates"] = tuple(parse_rate(r) for r in rates)
    return make_plan(PlanRequest(**values))  # type: ignore[arg-type]


def run_plan_cli(*args: str) -> str:
    out = io.StringIO()
    call_command("plan", *args, stdout=out)
    return out.getvalue()


# -- the arithmetic -----------------------------------------------------------------------------


def test_the_worked_example_needs_10_deals_and_200_leads() -> None:
    result = plan("lead:customer=0.05", revenue=Decimal(20000), deal_value=Decimal(2000))

    assert result.deals_needed == 10
    assert result.step("lead").needed == 200
    assert result.step("lead").source == "given end-to-end"
    # The stages inside a given end-to-end rate are not invented.
    assert result.step("mql").needed is None
    assert "inside the given lead→customer rate" in result.step("mql").note


def test_the_cli_answers_the_worked_example() -> None:
    out = run_plan_cli(
        "--revenue", "20000", "--deal-value", "2000", "--rate", "lead:customer=0.05",
        "--period", "2026-05", "--format", "json",
    )  # fmt: skip

    data = json.loads(out)
    steps = {s["stage"]: s["needed"] for s in data["steps"]}
    assert data["deals_needed"] == 10
    assert steps["customer"] == 10
    assert steps["lead"] == 200


def test_the_cli_table_states_deals_and_leads() -> None:
    out = run_plan_cli("--revenue", "20000", "--deal-value", "2000", "--rate", "lead:customer=5%")

    assert "Deals to win:   10" in out
    lead_row = next(line for line in out.splitlines() if line.startswith("lead "))
    assert lead_row.split()[1] == "200"


def test_every_stage_is_rounded_up() -> None:
    result = plan(
        "opportunity=0.3", "sql=0.5", "mql=0.4", "lead=0.25",
        revenue=Decimal(18600), deal_value=Decimal(2000),
    )  # fmt: skip

    # 9.3 deals → 10; 10 / 0.3 = 33.3 → 34; 34 / 0.5 = 68; 68 / 0.4 = 170; 170 / 0.25 = 680.
    needed = {s.stage: s.needed for s in result.steps}
    assert needed == {
        "customer": 10,
        "opportunity": 34,
        "sql": 68,
        "mql": 170,
        "lead": 680,
        "visitor": None,
    }
    assert result.mqls_needed == 170


def test_a_given_visitor_rate_plans_visitors_and_without_one_the_plan_says_so() -> None:
    with_rate = plan("lead:customer=0.05", "visitor=0.02", revenue=Decimal(20000), deal_value=2000)
    without = plan("lead:customer=0.05", revenue=Decimal(20000), deal_value=Decimal(2000))

    assert with_rate.step("visitor").needed == 10_000
    assert without.step("visitor").needed is None
    assert "give visitor=R" in without.step("visitor").note


def test_quarterly_plan_states_the_mqls_per_month() -> None:
    result = plan(
        "opportunity=0.5", "sql=0.5", "mql=0.5",
        period=parse_period("2026-Q2"), revenue=Decimal(100000), deal_value=Decimal(1000),
    )  # fmt: skip

    assert result.mqls_needed == 800
    assert result.mqls_per_month == 267


# -- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"revenue": Decimal(0)}, "revenue", "greater than zero"),
        ({"revenue": Decimal(-5)}, "revenue", "greater than zero"),
        ({"deal_value": Decimal(0)}, "deal_value", "greater than zero"),
    ],
)
def test_zero_or_negative_targets_are_refused(kwargs: dict, field: str, words: str) -> None:
    values = {"revenue": Decimal(20000), "deal_value": Decimal(2000), **kwargs}

    with pytest.raises(PlanError) as failed:
        plan("lead:customer=0.05", **values)

    assert failed.value.field == field
    assert words in failed.value.message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("mql=0", "greater than 0 and at most 1"),
        ("mql=1.5", "greater than 0 and at most 1"),
        ("mql=-0.2", "not a rate"),
        ("prospect=0.2", "not a funnel stage"),
        ("customer=0.5", "customer is the last stage"),
        ("sql:lead=0.5", "does not come after"),
        ("mql", "not a rate"),
    ],
)
def test_rates_outside_zero_to_one_or_unknown_stages_are_refused(text: str, words: str) -> None:
    with pytest.raises(PlanError) as failed:
        parse_rate(text)

    assert words in failed.value.message


def test_a_bad_rate_on_the_cli_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="at most 1"):
        run_plan_cli("--revenue", "20000", "--deal-value", "2000", "--rate", "lead=2")


def test_without_revenue_the_goal_of_the_period_is_used_or_asked_for() -> None:
    with pytest.raises(PlanError) as failed:
        plan("lead:customer=0.05", deal_value=Decimal(2000))
    assert "no goal is set for 2026-05" in failed.value.message

    actions.set_goal(MAY, "30000")
    result = plan("lead:customer=0.05", deal_value=Decimal(2000))

    assert result.revenue == Decimal("30000.00")
    assert result.revenue_source == "goal for 2026-05"
    assert result.deals_needed == 15


def test_a_measured_deal_value_needs_enough_won_deals() -> None:
    with pytest.raises(PlanError) as failed:
        plan("lead:customer=0.05", revenue=Decimal(20000))

    assert failed.value.field == "deal_value"
    assert "only 0 won deal(s)" in failed.value.message


def test_the_deal_value_is_measured_as_the_mean_won_deal() -> None:
    for amount in ("1000", "3000", "2000"):
        won = actions.create_deal(
            {"name": "d", "amount": amount, "expected_close_date": "2026-04-01"}, at=at(1, 3)
        )
        actions.win_deal(won, at=at(1, 4))

    result = plan("lead:customer=0.05", revenue=Decimal(20000), min_deals=3)

    assert result.deal_value == Decimal("2000.00")
    assert result.deal_value_sample == 3
    assert result.deals_needed == 10


# -- rates measured by cohort -------------------------------------------------------------------


def _cohort(n: int, *steps: StageStep, start: dt.datetime) -> None:
    journeys({f"lead {i}": person(at=start, stage="lead", stages=steps) for i in range(n)})


def test_rates_are_measured_by_cohort_with_their_sample_size() -> None:
    start = at(1, 2)
    # 10 leads entered in February: 4 became MQLs, 2 of those SQLs, 1 an opportunity, 1 won.
    _cohort(6, start=start)
    _cohort(2, ("mql", at(10, 2)), start=start)
    _cohort(1, ("mql", at(10, 2)), ("sql", at(20, 2)), start=start)
    _cohort(1, ("mql", at(10, 2)), ("sql", at(20, 2)), ("opportunity", at(1, 3)),
            ("customer", at(1, 4)), start=start)  # fmt: skip

    rates = measure_rates(at(1, 1), AS_OF)

    assert (rates["lead"].entered, rates["lead"].converted) == (10, 4)
    assert (rates["mql"].entered, rates["mql"].converted) == (4, 2)
    assert (rates["sql"].entered, rates["sql"].converted) == (2, 1)
    assert (rates["opportunity"].entered, rates["opportunity"].converted) == (1, 1)


def test_skipped_stages_count_as_reached_and_recycling_counts_once() -> None:
    start = at(1, 2)
    journeys(
        {
            # Never an MQL: reached MQL's next stage anyway.
            "skipper": person(at=start, stage="lead", stages=[("sql", at(5, 2))]),
            "recycled": person(
                at=start,
                stage="lead",
                stages=[("mql", at(3, 2)), ("lead", at(8, 2)), ("mql", at(12, 2))],
            ),
            # Its SQL came before this cohort.
            "fell back": person(
                at=at(1, 1), stage="mql", stages=[("sql", at(2, 1)), ("mql", at(9, 2))]
            ),
        }
    )

    rates = measure_rates(at(1, 2), AS_OF)

    assert (rates["lead"].entered, rates["lead"].converted) == (2, 2)
    # MQL cohort in February: the recycled contact and the fallen-back one; neither reached SQL
    # after entering MQL in the window.
    assert (rates["mql"].entered, rates["mql"].converted) == (2, 0)


def test_contacts_that_entered_before_the_window_are_outside_the_cohort() -> None:
    _cohort(3, ("mql", at(5, 1)), start=at(1, 1))
    _cohort(2, start=at(1, 3))

    rates = measure_rates(at(1, 2), AS_OF)

    assert rates["lead"].entered == 2
    assert rates["lead"].converted == 0


def test_the_plan_uses_measured_rates_and_shows_their_sample() -> None:
    start = at(1, 2)
    _cohort(30, start=start)
    _cohort(10, ("mql", at(5, 2)), start=start)
    _cohort(5, ("mql", at(5, 2)), ("sql", at(9, 2)), start=start)
    _cohort(5, ("mql", at(5, 2)), ("sql", at(9, 2)), ("opportunity", at(12, 2)), start=start)
    _cohort(5, ("mql", at(5, 2)), ("sql", at(9, 2)), ("opportunity", at(12, 2)),
            ("customer", at(1, 3)), start=start)  # fmt: skip

    result = plan(revenue=Decimal(10000), deal_value=Decimal(1000), min_sample=10)

    # lead 25/55, mql 15/25, sql 10/15; opportunity has 10 entries and 5 wins: 1/2.
    lead, mql, sql, opportunity = (result.step(s) for s in ("lead", "mql", "sql", "opportunity"))
    assert (opportunity.sample, opportunity.converted, opportunity.needed) == (10, 5, 20)
    assert (sql.sample, sql.converted, sql.needed) == (15, 10, 30)
    assert (mql.sample, mql.converted, mql.needed) == (25, 15, 50)
    assert (lead.sample, lead.converted, lead.needed) == (55, 25, 110)
    assert lead.source == "measured over the last 180 days"


def test_a_given_step_rate_wins_over_the_measured_one() -> None:
    _cohort(40, ("mql", at(5, 2)), start=at(1, 2))

    result = plan("lead=0.5", "mql:customer=0.1", revenue=Decimal(1000), deal_value=Decimal(100))

    assert result.step("mql").needed == 100
    assert result.step("lead").needed == 200
    assert result.step("lead").source == "given"


def test_too_little_data_falls_back_to_all_history_then_asks_for_a_rate() -> None:
    # 18 leads two years ago, 6 of them became MQLs; 2 leads in the window, none converted.
    for _ in range(12):
        make_contact(lifecycle_stage="lead", at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    journeys(
        {
            f"mql {i}": person(
                at=dt.datetime(2024, 2, 1, tzinfo=dt.UTC),
                stage="lead",
                stages=[("mql", dt.datetime(2024, 2, 10 + i, tzinfo=dt.UTC))],
            )
            for i in range(6)
        }
    )
    _cohort(2, start=at(1, 2))

    result = plan(
        "mql:customer=0.1",
        revenue=Decimal(1000),
        deal_value=Decimal(100),
        min_sample=10,
    )

    lead = result.step("lead")
    assert lead.source == "measured over all history"
    assert (lead.sample, lead.converted) == (20, 6)
    assert lead.needed == 334  # 100 MQLs / (6/20), rounded up
    assert any("only 2 contact(s) entered lead" in note for note in result.notes)

    thin = plan("mql:customer=0.1", revenue=Decimal(1000), deal_value=100, min_sample=50)
    assert thin.step("lead").needed is None
    assert "give lead=R" in thin.step("lead").note


def test_a_stage_with_no_data_is_reported_not_divided_by_zero() -> None:
    result = plan(revenue=Decimal(1000), deal_value=Decimal(100))

    assert result.deals_needed == 10
    assert result.step("opportunity").needed is None
    assert "too little data" in result.step("opportunity").note
    assert result.step("lead").needed is None
    assert result.mqls_needed is None


# -- pacing -------------------------------------------------------------------------------------


def test_pacing_compares_the_period_so_far_with_the_plan() -> None:
    # Half of May gone (15 of 31 days); 100 leads needed, 30 entered so far: behind by 19.
    for day in range(1, 16):
        make_contact(lifecycle_stage="lead", at=at(day))
        make_contact(lifecycle_stage="lead", at=at(day, hour=15))
    make_contact(lifecycle_stage="lead", at=at(20))  # after "now": not counted
    won = actions.create_deal(
        {"name": "d", "amount": "6000", "expected_close_date": "2026-05-10"}, at=at(2)
    )
    actions.win_deal(won, at=at(10))

    result = plan("lead:customer=0.1", revenue=Decimal(10000), deal_value=Decimal(1000))

    lead = result.step("lead")
    assert (lead.needed, lead.actual) == (100, 30)
    assert lead.expected_by_now == 49  # ceil(100 * 15/31)
    assert (lead.gap, lead.remaining, lead.status) == (19, 70, "behind")
    customer = result.step("customer")
    assert (customer.needed, customer.actual, customer.status) == (10, 1, "behind")
    assert result.revenue_actual == Decimal("6000.00")
    assert result.revenue_status == "on track"  # 6,000 >= 10,000 * 15/31


def test_a_future_period_has_not_started() -> None:
    result = plan(
        "lead:customer=0.05",
        period=parse_period("2026-07"),
        revenue=Decimal(20000),
        deal_value=Decimal(2000),
    )

    assert result.elapsed == 0
    assert result.step("lead").status == "not started"
    assert result.step("lead").gap == 0


def test_two_rates_for_one_step_are_refused() -> None:
    with pytest.raises(PlanError) as failed:
        plan("lead:customer=0.05", "mql=0.4", revenue=Decimal(20000), deal_value=Decimal(2000))

    assert "overlap at mql→sql" in failed.value.message

    with pytest.raises(PlanError) as twice:
        plan("mql=0.4", "mql=0.5", revenue=Decimal(20000), deal_value=Decimal(2000))
    assert "given twice" in twice.value.message


def test_a_teams_plan_uses_the_teams_goal_and_won_deals() -> None:
    from tests.factories import make_user

    north = actions.create_team("North")
    ana, other = make_user("sales"), make_user("sales")
    actions.set_team(ana, north)
    actions.set_goal(MAY, "9000", team=north)
    actions.set_goal(MAY, "50000")
    for owner, amount in ((ana, "3000"), (other, "500")):
        won = actions.create_deal(
            {
                "name": "d",
                "amount": amount,
                "expected_close_date": "2026-05-10",
                "owner_id": owner.pk,
            },
            at=at(2),
        )
        actions.win_deal(won, at=at(10))

    result = plan("lead:customer=0.1", team_id=north.pk, deal_value=Decimal(1000))

    assert result.revenue == Decimal("9000.00")
    assert result.revenue_source == "goal for 2026-05"
    assert result.revenue_actual == Decimal("3000.00")
    assert result.step("customer").actual == 1
    assert any("whole company's" in note for note in result.notes)
