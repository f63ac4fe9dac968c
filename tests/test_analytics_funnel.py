"""The funnel report on declared journeys: cohorts, skipped stages, recycling, ties, time zones,
breakdowns, and periods."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.test import override_settings
from django.utils import translation
from freezegun import freeze_time

from embudo.analytics.funnel import Filters, FunnelRequest, funnel
from embudo.crm.models import TransitionCause
from embudo.reports import ReportError, run_report
from tests.factories import make_company, make_user
from tests.journeys import Touch, journey, journeys, person

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _now() -> Any:
    with freeze_time("2026-06-15 12:00:00"):
        yield


UTC = dt.UTC
JAN = (dt.date(2026, 1, 1), dt.date(2026, 1, 31))
NEW_YEAR = dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # when the contacts are created


def at(month: int, day: int, hour: int = 12, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


def steps(result: Any) -> dict[str, Any]:
    return {s.stage: s for s in result.total.steps}


def january(**kwargs: Any) -> Any:
    return funnel(FunnelRequest(date_from=JAN[0], date_to=JAN[1], **kwargs))


def test_cohort_follows_each_stage_to_the_next_at_any_later_time() -> None:
    journeys(
        {
            "all the way, the later steps after January": person(
                at=NEW_YEAR,
                stages=[
                    ("lead", at(1, 5)),
                    ("mql", at(1, 10)),
                    ("sql", at(2, 1)),
                    ("opportunity", at(2, 10)),
                    ("customer", at(3, 1)),
                ],
            ),
            "stops at mql": person(at=NEW_YEAR, stages=[("lead", at(1, 6)), ("mql", at(1, 20))]),
        }
    )
    result = steps(january())
    assert (result["lead"].entered, result["lead"].converted) == (2, 2)
    assert (result["mql"].entered, result["mql"].converted, result["mql"].rate) == (2, 1, 0.5)
    # Only contacts that entered SQL in January are SQL's cohort: the one that went all the
    # way entered it in February.
    assert result["sql"].entered == 0
    assert result["customer"].entered == 0 and result["customer"].converted is None


def test_a_window_counts_only_conversions_within_so_many_days() -> None:
    journeys(
        {
            "sql 22 days after mql": person(
                at=NEW_YEAR, stages=[("lead", at(1, 5)), ("mql", at(1, 10)), ("sql", at(2, 1))]
            ),
            "sql 10 days after mql": person(
                at=NEW_YEAR, stages=[("lead", at(1, 6)), ("mql", at(1, 7)), ("sql", at(1, 17))]
            ),
        }
    )
    assert steps(january(window_days=15))["mql"].converted == 1
    assert steps(january(window_days=30))["mql"].converted == 2
    assert steps(january())["mql"].converted == 2


def test_contact_imported_as_sql_counts_in_sql_and_is_labelled_as_skipping_mql() -> None:
    journeys(
        {
            "imported as sql": person(
                at=at(1, 15),
                stage="sql",
                cause=TransitionCause.IMPORT,
                stages=[("opportunity", at(1, 20))],
            ),
            "through mql": person(
                at=NEW_YEAR, stages=[("lead", at(1, 3)), ("mql", at(1, 4)), ("sql", at(1, 5))]
            ),
        }
    )
    result = january()
    sql = steps(result)["sql"]
    assert (sql.entered, sql.skipped_previous, sql.converted) == (2, 1, 1)
    assert result.to_dict()["labels"]["skipped_previous"]["sql"] == "entered sql without mql"
    # Neither lead nor MQL counts the imported contact: it never entered them.
    assert steps(result)["lead"].entered == 1 and steps(result)["mql"].entered == 1


def test_a_lead_moved_straight_to_opportunity_converts_past_mql_and_is_labelled() -> None:
    journey(person(at=NEW_YEAR, stages=[("lead", at(1, 3)), ("opportunity", at(1, 9))]))
    result = steps(january())
    assert (result["lead"].converted, result["lead"].skipped_next) == (1, 1)
    assert (result["opportunity"].entered, result["opportunity"].skipped_previous) == (1, 1)
    assert result["mql"].entered == 0 and result["sql"].entered == 0


def test_a_recycled_contact_counts_once_per_cohort() -> None:
    journey(
        person(
            at=NEW_YEAR,
            stages=[
                ("lead", at(1, 2)),
                ("mql", at(1, 3)),
                ("lead", at(1, 4)),  # sales sent it back
                ("mql", at(1, 5)),
                ("sql", at(1, 6)),
            ],
        )
    )
    result = steps(january())
    assert (result["mql"].entered, result["mql"].converted) == (1, 1)
    assert (result["lead"].entered, result["lead"].converted) == (1, 1)
    # Re-entering MQL from lead is no skip; by period both entries show, as one contact.
    assert result["mql"].skipped_previous == 0
    by_period = steps(january(mode="period"))
    assert (by_period["mql"].entered, by_period["mql"].contacts) == (2, 1)


def test_a_move_back_to_a_lower_stage_is_not_a_conversion() -> None:
    journey(person(at=NEW_YEAR, stages=[("lead", at(1, 2)), ("mql", at(1, 3)), ("lead", at(1, 9))]))
    assert steps(january())["mql"].converted == 0


def test_stages_entered_at_the_same_instant_count_as_converted() -> None:
    same = at(1, 10, 9)
    journey(person(at=NEW_YEAR, stages=[("lead", same), ("mql", same), ("sql", same)]))
    result = steps(january())
    assert (result["lead"].converted, result["mql"].converted) == (1, 1)
    assert result["sql"].skipped_previous == 0


@override_settings(TIME_ZONE="Europe/Madrid")
def test_period_borders_are_midnight_in_the_site_time_zone() -> None:
    journeys(
        {
            # 23:30 UTC on 31 January is 00:30 on 1 February in Madrid.
            "february in madrid": person(at=NEW_YEAR, stages=[("lead", at(1, 31, 23, 30))]),
            # 23:30 UTC on 31 December is 00:30 on 1 January in Madrid.
            "january in madrid": person(
                at=NEW_YEAR - dt.timedelta(days=5),
                stages=[("lead", dt.datetime(2025, 12, 31, 23, 30, tzinfo=UTC))],
            ),
        }
    )
    assert steps(january())["lead"].entered == 1
    feb = funnel(FunnelRequest(date_from=dt.date(2026, 2, 1), date_to=dt.date(2026, 2, 28)))
    assert steps(feb)["lead"].entered == 1
    months = funnel(
        FunnelRequest(date_from=dt.date(2026, 1, 1), date_to=dt.date(2026, 2, 28), mode="period")
    )
    assert [(g.label, g.step("lead").entered) for g in months.groups] == [
        ("2026-01", 1),
        ("2026-02", 1),
    ]


def test_breakdown_by_original_source_and_first_touch_channel() -> None:
    journeys(
        {
            "from google, touched": person(
                at=NEW_YEAR,
                original_source="google",
                stages=[("lead", at(1, 5)), ("mql", at(1, 6))],
                touches=[Touch("organic_social", at(1, 4)), Touch("paid_search", at(1, 3))],
            ),
            "from google": person(
                at=NEW_YEAR, original_source="google", stages=[("lead", at(1, 7))]
            ),
            "no source, no touchpoint": person(
                at=NEW_YEAR, stages=[("lead", at(1, 8)), ("mql", at(1, 9))]
            ),
        }
    )
    by_source = {g.label: g.step("lead") for g in january(breakdown="source").groups}
    assert {k: (v.entered, v.converted) for k, v in by_source.items()} == {
        "google": (2, 1),
        "No source": (1, 1),
    }
    # Channel names are the tracking app's, in the active language (English here).
    with translation.override("en"):
        channels = january(breakdown="channel").groups
    assert {g.label: g.step("lead").entered for g in channels} == {
        "Paid search": 1,
        "No touchpoint": 2,
    }
    assert {g.key for g in channels} == {"paid_search", ""}


def test_breakdown_by_owner_campaign_and_company_property() -> None:
    rep = make_user("sales")
    acme = make_company(industry="Software", properties={})
    journeys(
        {
            "the rep's, at acme": person(
                at=NEW_YEAR, owner_id=rep.pk, company=acme, stages=[("lead", at(1, 5))]
            ),
            "from spring": person(
                at=NEW_YEAR, original_campaign="spring", stages=[("lead", at(1, 6))]
            ),
        }
    )
    owners = {g.label: g.step("lead").entered for g in january(breakdown="owner").groups}
    assert owners == {rep.username: 1, "Unassigned": 1}
    campaigns = {g.label: g.step("lead").entered for g in january(breakdown="campaign").groups}
    assert campaigns == {"spring": 1, "No campaign": 1}
    industries = {
        g.label: g.step("lead").entered for g in january(breakdown="company.industry").groups
    }
    assert industries == {"Software": 1, "Unknown": 1}


def test_source_filter_keeps_only_those_contacts() -> None:
    journeys(
        {
            "google": person(at=NEW_YEAR, original_source="google", stages=[("lead", at(1, 5))]),
            "bing": person(at=NEW_YEAR, original_source="bing", stages=[("lead", at(1, 6))]),
        }
    )
    assert steps(january(filters=Filters(source="bing")))["lead"].entered == 1


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"breakdown": "zodiac"}, "breakdown='zodiac' is not one of"),
        ({"breakdown": "company.shoe_size"}, "the company has no field 'shoe_size'"),
        ({"window": "-3"}, "window='-3' is not a number of days"),
        ({"mode": "sideways"}, "mode='sideways' is not one of cohort, period"),
        ({"team": "sales"}, "team='sales' is not a team id"),
    ],
)
def test_bad_options_are_named(options: dict[str, str], words: str) -> None:
    with pytest.raises(ReportError, match=words.replace("(", r"\(").replace(")", r"\)")):
        run_report("funnel", date_from="2026-01-01", date_to="2026-01-31", options=options)


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ReportError, match="ends"):
        run_report("funnel", date_from="2026-02-01", date_to="2026-01-31")


def test_an_empty_period_gives_zeros_not_an_error() -> None:
    result = january()
    assert [s.entered for s in result.total.steps] == [0, 0, 0, 0, 0]
    assert result.total.step("lead").rate is None
    assert result.table().rows  # the total row is still there


def test_breakdown_and_filter_by_persona_from_the_segments_app() -> None:
    from embudo.segments import actions as segments

    journeys(
        {
            "engineer": person(
                at=NEW_YEAR,
                job_title="Data engineer",
                stages=[("lead", at(1, 5)), ("mql", at(1, 6))],
            ),
            "cfo": person(at=NEW_YEAR, job_title="CFO", stages=[("lead", at(1, 7))]),
        }
    )
    engineers = segments.create_persona(
        {
            "name": "Engineer",
            "conditions": {"field": "job_title", "op": "contains", "value": "engineer"},
        }
    )
    by_persona = {g.label: g.step("lead") for g in january(breakdown="persona").groups}
    assert {k: (v.entered, v.converted) for k, v in by_persona.items()} == {
        "Engineer": (1, 1),
        "No persona": (1, 0),
    }
    only = january(filters=Filters(persona=str(engineers.pk)))
    assert steps(only)["lead"].entered == 1
    assert steps(january(filters=Filters(persona="Engineer")))["mql"].entered == 1
