"""The KPIs report: new contacts per stage by period and source, MQL acceptance, the deals
app's win rate and cycle, and goal pacing."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from freezegun import freeze_time

from embudo.deals import actions as deals
from embudo.deals.periods import month
from embudo.reports import ReportError, run_report
from tests.journeys import Person, StageStep, journeys, person

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now() -> Any:
    with freeze_time("2026-03-16 00:00:00"):
        yield


def at(m: int, d: int, h: int = 12) -> dt.datetime:
    return dt.datetime(2026, m, d, h, tzinfo=dt.UTC)


NEW_YEAR = at(1, 1, 0)  # when the contacts are created


def test_new_contacts_per_month_count_each_contact_once_per_stage() -> None:
    journeys(
        {
            "recycled, from ads": person(
                at=NEW_YEAR,
                original_source="ads",
                stages=[
                    ("lead", at(1, 2)),
                    ("mql", at(1, 3)),
                    ("lead", at(1, 4)),
                    ("mql", at(2, 5)),
                ],
            ),
            "february lead": person(at=NEW_YEAR, stages=[("lead", at(2, 2))]),
        }
    )
    result = run_report("kpis", date_from="2026-01-01", date_to="2026-02-28")
    rows = {row.label: row.new for row in result.rows}
    assert rows["2026-01"]["lead"] == 1 and rows["2026-01"]["mql"] == 1
    assert rows["2026-02"]["lead"] == 1 and rows["2026-02"]["mql"] == 1
    # Over the two months the recycled contact is still one new lead (and one new MQL).
    assert result.total.new["lead"] == 2 and result.total.new["mql"] == 1
    by_source = run_report(
        "kpis", date_from="2026-01-01", date_to="2026-02-28", options={"breakdown": "source"}
    )
    assert {r.label: r.new["lead"] for r in by_source.rows} == {"ads": 1, "No source": 1}


def test_mql_acceptance_is_the_share_of_new_mqls_that_reached_sql() -> None:
    def new_mql(i: int, *then: StageStep) -> Person:
        return person(at=NEW_YEAR, stages=[("lead", at(1, 2 + i)), ("mql", at(1, 3 + i)), *then])

    accepted = ("sql", at(1, 20))
    journeys(
        {
            "accepted": new_mql(0, accepted),
            "accepted too": new_mql(1, accepted),
            "waiting": new_mql(2),
            "waiting too": new_mql(3),
        }
    )
    result = run_report("kpis", date_from="2026-01-01", date_to="2026-01-31")
    assert (result.mqls, result.mql_accepted, result.mql_acceptance_rate) == (4, 2, 0.5)


def test_goal_pacing_compares_the_month_goal_with_revenue_won_so_far(admin_user: Any) -> None:
    deals.set_goal(month(2026, 3), Decimal("10000"), actor=admin_user)
    pacing = run_report("kpis", date_from="2026-03-01", date_to="2026-03-31").pacing
    assert pacing is not None
    assert (pacing.period, pacing.goal, pacing.won, pacing.status) == (
        "2026-03",
        Decimal("10000"),
        Decimal("0"),
        "behind",
    )
    # Half of March (15 of 31 days) has gone by.
    assert pacing.expected_by_now == Decimal("4838.71")


def test_no_goal_means_no_pacing_tile_rather_than_an_error() -> None:
    assert run_report("kpis", date_from="2026-03-01", date_to="2026-03-31").pacing is None


def test_kpis_refuse_a_breakdown_they_do_not_offer() -> None:
    with pytest.raises(ReportError, match="breakdown='owner' is not one of"):
        run_report("kpis", options={"breakdown": "owner"})
