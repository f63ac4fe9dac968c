"""What the reports keep in memory between requests (embudo.analytics.stamps) is dropped by the
writes that change their answer: a new touchpoint, a stitched visit, a stage change, a won deal,
a changed amount, a cost import; and never outlives a rolled-back write."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from embudo.analytics import stamps
from embudo.analytics.attribution import AttributionRequest, attribution
from embudo.analytics.roi import roi
from embudo.crm.models import Contact
from embudo.deals import actions as deal_actions
from embudo.reports import run_report
from embudo.tracking.actions import identify_visitor
from embudo.tracking.models import Touchpoint
from tests.factories import make_campaign
from tests.journeys import T0, Deal, Touch, days, journey, journeys, person

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(
        connection.vendor != "sqlite", reason="reads are kept only on SQLite (see stamps.py)"
    ),
]

MARCH = AttributionRequest(dt.date(2026, 3, 1), dt.date(2026, 3, 31))


def channels(request: AttributionRequest = MARCH) -> dict[str, tuple[int, float]]:
    """Touchpoints and linear revenue per channel, as the report gives them."""
    result = attribution(request)
    return {r.key: (r.touchpoints, round(r.credit["linear"].revenue, 2)) for r in result.rows}


def touchpoint_reads(run: object) -> int:
    with CaptureQueriesContext(connection) as captured:
        assert callable(run)
        run()
    return sum('"tracking_touchpoint"' in q["sql"] for q in captured.captured_queries)


def a_customer() -> None:
    journey(
        person(
            at=days(-10),
            stage="lead",
            touches=[Touch("paid_search", days(-9))],
            deals=[Deal("1000", opened=days(-5), won=days(0))],
        )
    )


def test_a_second_report_on_unchanged_data_reads_no_touchpoints_and_answers_the_same() -> None:
    a_customer()
    first = channels()

    reads = touchpoint_reads(channels)

    assert reads == 0
    assert channels() == first == {"paid_search": (1, 1000.0)}


def test_a_new_touchpoint_changes_the_kept_answer() -> None:
    a_customer()
    buyer = Touchpoint.objects.get().contact
    assert buyer is not None
    assert channels() == {"paid_search": (1, 1000.0)}

    journey(buyer, touches=[Touch("email", days(-3))])

    assert channels() == {"paid_search": (1, 500.0), "email": (1, 500.0)}


def test_a_stitched_anonymous_visit_joins_the_journey() -> None:
    a_customer()
    buyer = Touchpoint.objects.get().contact
    assert buyer is not None
    Touchpoint.objects.create(visitor_id="v-1", channel="email", occurred_at=days(-2))
    assert channels() == {"paid_search": (1, 1000.0)}

    identify_visitor("v-1", buyer)

    assert channels() == {"paid_search": (1, 500.0), "email": (1, 500.0)}


def test_a_stage_change_adds_a_conversion() -> None:
    a_customer()
    other = journey(person(at=days(-8), stage="lead", touches=[Touch("email", days(-7))]))
    assert attribution(MARCH).conversions == 1

    journey(other, stages=[("customer", days(1))])

    result = attribution(MARCH)
    assert result.conversions == 2
    assert {r.key: r.touchpoints for r in result.rows} == {"paid_search": 1, "email": 1}


def test_a_changed_amount_changes_the_revenue() -> None:
    buyer = journey(
        person(
            at=days(-10),
            stage="lead",
            touches=[Touch("paid_search", days(-9))],
            deals=[Deal("1000", opened=days(-5), won=days(0))],
        )
    )
    deal = buyer.deals.get()
    assert attribution(MARCH).revenue == 1000.0

    deal_actions.update_deal(deal, {"amount": "1500"})

    assert attribution(MARCH).revenue == 1500.0


def test_a_funnel_report_sees_a_new_stage_entry() -> None:
    def leads() -> int:
        result = run_report("funnel", date_from="2026-03-01", date_to="2026-03-31", options={})
        return int(result.total.step("lead").entered)  # type: ignore[attr-defined]

    journey(person(at=days(-10), stage="lead"))
    assert leads() == 1

    journey(person(at=days(-4), stage="lead"))

    assert leads() == 2


def test_a_changed_original_source_moves_the_contact_to_its_new_group() -> None:
    def by_source() -> dict[str, int]:
        result = run_report(
            "funnel",
            date_from="2026-03-01",
            date_to="2026-03-31",
            options={"breakdown": "source"},
        )
        groups = result.groups  # type: ignore[attr-defined]
        return {g.key: g.step("lead").entered for g in groups}

    people = journeys(
        {
            "moves": person(at=days(-10), stage="lead", original_source="google"),
            "stays": person(at=days(-9), stage="lead", original_source="google"),
        }
    )
    assert by_source() == {"google": 2}

    # As tracking gives a contact its first touch: one column, set-based.
    Contact.objects.filter(pk=people["moves"].pk).update(original_source="newsletter")

    assert by_source() == {"google": 1, "newsletter": 1}


def test_a_cost_import_changes_the_roi(tmp_path: Path) -> None:
    spring = make_campaign("spring-sale")
    journey(
        person(
            at=days(-10),
            stage="lead",
            touches=[Touch("paid_search", days(-9), spring)],
            deals=[Deal("1000", opened=days(-5), won=days(0))],
        )
    )
    request = AttributionRequest(dt.date(2026, 3, 1), dt.date(2026, 3, 31), by="campaign")
    assert roi(request).total.cost == 0
    path = tmp_path / "costs.csv"
    path.write_text("campaign,period,amount,currency\nspring-sale,2026-03,500,EUR\n")

    call_command("import", "costs", str(path), "--quiet", stdout=io.StringIO())

    result = roi(request)
    assert result.total.cost == 500.0
    assert result.rows[0].roi("linear") == 2.0


def test_a_rolled_back_write_leaves_no_answer_behind_for_a_later_write() -> None:
    a_customer()
    buyer = Touchpoint.objects.get().contact
    assert buyer is not None
    assert channels() == {"paid_search": (1, 1000.0)}
    with pytest.raises(RuntimeError), transaction.atomic():
        journey(buyer, touches=[Touch("email", days(-3))])
        assert channels() == {"paid_search": (1, 500.0), "email": (1, 500.0)}
        raise RuntimeError("the import failed")

    journey(buyer, touches=[Touch("display", days(-2))])

    assert channels() == {"paid_search": (1, 500.0), "display": (1, 500.0)}


def test_without_its_triggers_nothing_is_kept() -> None:
    a_customer()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {stamps.TRIGGER_PREFIX}tracking_touchpoint_insert")
    assert channels() == {"paid_search": (1, 1000.0)}

    assert touchpoint_reads(channels) > 0


def test_migrate_puts_the_triggers_back() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {stamps.TRIGGER_PREFIX}deals_deal_update")
    assert stamps.current(("deals_deal",)) is None

    stamps.install()

    assert stamps.current(("deals_deal",)) is not None


def test_the_period_is_part_of_what_is_kept() -> None:
    a_customer()
    april = AttributionRequest(dt.date(2026, 4, 1), dt.date(2026, 4, 30))
    assert channels() == {"paid_search": (1, 1000.0)}

    assert channels(april) == {}
    assert T0.month == 3
