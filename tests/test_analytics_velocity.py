"""The velocity report on declared journeys: days in each stage (median, p75, p90), lead to
customer, open stays, ties, recycling and breakdowns."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import override_settings
from freezegun import freeze_time

from embudo.analytics.funnel import FunnelRequest
from embudo.analytics.velocity import velocity
from embudo.crm.models import TransitionCause
from embudo.reports import ReportError, run_report
from tests.journeys import journey, journeys, person

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now() -> Any:
    with freeze_time("2026-06-15 12:00:00"):
        yield


def at(month: int, day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


NEW_YEAR = at(1, 1, 0)  # when the contacts are created


def january(**kwargs: Any) -> Any:
    return velocity(FunnelRequest(dt.date(2026, 1, 1), dt.date(2026, 1, 31), **kwargs))


def test_time_in_stage_percentiles_interpolate_between_durations() -> None:
    journeys(
        {
            **{
                f"sql after {days} days": person(
                    at=NEW_YEAR,
                    stages=[("lead", at(1, day)), ("mql", at(1, day)), ("sql", at(1, day + days))],
                )
                for day, days in ((3, 1), (4, 2), (5, 10))
            },
            "still waiting": person(at=NEW_YEAR, stages=[("lead", at(1, 6)), ("mql", at(1, 6))]),
        }
    )
    mql = january().total.span("mql")
    assert (mql.entered, mql.measured, mql.still_open) == (4, 3, 1)
    # numpy's linear percentiles over [1, 2, 10]: p50 = 2, p75 = 6, p90 = 8.4.
    assert (mql.median_days, mql.p75_days, mql.p90_days) == (2.0, 6.0, 8.4)
    assert mql.mean_days == round(13 / 3, 2)
    # Lead to MQL happened at the same instant: zero days in lead, not a missing value.
    assert january().total.span("lead").median_days == 0.0


def test_lead_to_customer_runs_from_the_lead_entry_to_the_first_customer_entry() -> None:
    journeys(
        {
            "customer": person(
                at=NEW_YEAR,
                stages=[
                    ("lead", at(1, 5)),
                    ("mql", at(1, 10)),
                    ("sql", at(2, 1)),
                    ("opportunity", at(2, 10)),
                    ("customer", at(3, 1)),
                ],
            ),
            "lead": person(at=NEW_YEAR, stages=[("lead", at(1, 6))]),
        }
    )
    span = january().total.span("lead_to_customer")
    assert (span.entered, span.measured, span.median_days) == (2, 1, 55.0)


def test_a_recycled_contact_contributes_its_first_stay_in_the_period() -> None:
    journey(
        person(
            at=NEW_YEAR,
            stages=[
                ("lead", at(1, 2)),
                ("mql", at(1, 3)),
                ("lead", at(1, 7)),  # four days in mql, then recycled
                ("mql", at(1, 8)),
                ("sql", at(1, 28)),
            ],
        )
    )
    mql = january().total.span("mql")
    assert (mql.entered, mql.measured, mql.median_days) == (1, 1, 4.0)


def test_a_stage_entered_by_import_is_measured_from_the_import() -> None:
    journey(
        person(
            at=at(1, 10),
            stage="sql",
            cause=TransitionCause.IMPORT,
            stages=[("opportunity", at(1, 13))],
        )
    )
    assert january().total.span("sql").median_days == 3.0


def test_breakdown_by_source_measures_each_group_apart() -> None:
    journeys(
        {
            "ads": person(
                at=NEW_YEAR, original_source="ads", stages=[("lead", at(1, 2)), ("mql", at(1, 4))]
            ),
            "blog": person(
                at=NEW_YEAR, original_source="blog", stages=[("lead", at(1, 2)), ("mql", at(1, 12))]
            ),
        }
    )
    groups = {g.label: g.span("lead").median_days for g in january(breakdown="source").groups}
    assert groups == {"ads": 2.0, "blog": 10.0}


@override_settings(TIME_ZONE="America/Mexico_City")
def test_cohort_months_follow_the_site_time_zone() -> None:
    # 03:00 UTC on 1 February is still 31 January (21:00) in Mexico City.
    journey(
        person(
            at=NEW_YEAR,
            stages=[("lead", dt.datetime(2026, 2, 1, 3, tzinfo=dt.UTC)), ("mql", at(2, 3))],
        )
    )
    result = velocity(FunnelRequest(dt.date(2026, 1, 1), dt.date(2026, 2, 28), breakdown="period"))
    assert [(g.label, g.span("lead").entered) for g in result.groups] == [
        ("2026-01", 1),
        ("2026-02", 0),
    ]


def test_unknown_breakdown_is_refused_with_the_choices() -> None:
    with pytest.raises(ReportError, match="is not one of none, source, channel"):
        run_report("velocity", options={"breakdown": "weather"})
