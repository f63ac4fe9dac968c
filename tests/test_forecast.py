"""The forecast and the sales metrics: weighted pipeline and categories by period, owner and
team; win rate both ways, average won deal, sales cycle; and `embudo report`."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from embudo.deals import actions
from embudo.deals.models import Deal, LostReason, Stage
from embudo.deals.reports import ForecastRequest, SalesRequest, forecast, sales_metrics
from tests.factories import make_company, make_user

pytestmark = pytest.mark.django_db

MAY_1 = dt.date(2026, 5, 1)
JUNE_30 = dt.date(2026, 6, 30)


def at(day: int, month: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, tzinfo=dt.UTC)


def stage(name: str) -> Stage:
    return Stage.objects.get(pipeline=actions.default_pipeline(), name=name)


def open_deal(amount: str, close: str, stage_name: str = "Qualified", **data: Any) -> Deal:
    created = data.pop("created", None) or at(1, 4)
    return actions.create_deal(
        {
            "name": f"{stage_name} {amount}",
            "amount": amount,
            "expected_close_date": close,
            "stage_id": stage(stage_name).pk,
            **data,
        },
        at=created,
    )


def won_deal(amount: str, created: dt.datetime, closed: dt.datetime, **data: Any) -> Deal:
    deal = actions.create_deal(
        {"name": f"won {amount}", "amount": amount, "expected_close_date": "2026-05-31", **data},
        at=created,
    )
    actions.win_deal(deal, at=closed)
    return deal


def lost_deal(amount: str, created: dt.datetime, closed: dt.datetime, **data: Any) -> Deal:
    deal = actions.create_deal(
        {"name": f"lost {amount}", "amount": amount, "expected_close_date": "2026-05-31", **data},
        at=created,
    )
    actions.lose_deal(deal, LostReason.objects.get(name="Price"), at=closed)
    return deal


# -- forecast -----------------------------------------------------------------------------------


def test_weighted_pipeline_and_categories_add_up_by_month() -> None:
    open_deal("1000", "2026-05-10", "Qualified")  # 10 %, pipeline
    open_deal("2000", "2026-05-20", "Proposal")  # 50 %, best case
    open_deal("4000", "2026-06-05", "Negotiation")  # 80 %, commit
    won_deal("3000", at(1, 4), at(15, 5))  # closed won in May
    open_deal("9999", "2026-07-01", "Negotiation")  # after the period
    lost_deal("5000", at(1, 4), at(2, 5))  # lost: in no category

    result = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30))

    may, june = result.rows
    assert (may.label, june.label) == ("2026-05", "2026-06")
    assert (may.pipeline, may.best_case, may.commit, may.closed_won) == (
        Decimal("1000.00"),
        Decimal("2000.00"),
        Decimal("0.00"),
        Decimal("3000.00"),
    )
    assert may.weighted == Decimal("1100.00")  # 1000 * 0.1 + 2000 * 0.5
    assert may.commit_forecast == Decimal("3000.00")
    assert may.best_case_forecast == Decimal("5000.00")
    assert may.expected == Decimal("4100.00")
    assert (june.commit, june.weighted, june.open_deals) == (
        Decimal("4000.00"),
        Decimal("3200.00"),
        1,
    )
    total = result.total
    assert total.weighted == Decimal("4300.00")
    assert total.open_deals == 3
    assert total.won_deals == 1
    assert total.expected == Decimal("7300.00")


def test_a_reps_category_override_moves_the_deal_between_categories() -> None:
    deal = open_deal("1000", "2026-05-10", "Qualified")
    actions.update_deal(deal, {"forecast_category": "commit"})

    row = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30)).total

    assert (row.pipeline, row.commit) == (Decimal("0.00"), Decimal("1000.00"))
    assert row.weighted == Decimal("100.00")  # the probability stays the stage's


def test_foreign_currency_deals_count_in_the_reporting_currency() -> None:
    actions.set_exchange_rate("USD", "0.5")
    open_deal("1000", "2026-05-10", "Proposal", currency="USD")

    row = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30)).total

    assert row.best_case == Decimal("500.00")
    assert row.weighted == Decimal("250.00")


def test_forecast_by_owner_and_by_team() -> None:
    ana, ben, cam = make_user("sales"), make_user("sales"), make_user("sales")
    north = actions.create_team("North")
    actions.set_team(ana, north)
    actions.set_team(ben, north)
    open_deal("1000", "2026-05-10", "Proposal", owner_id=ana.pk)
    open_deal("3000", "2026-05-11", "Proposal", owner_id=ben.pk)
    open_deal("500", "2026-05-12", "Proposal", owner_id=cam.pk)
    open_deal("200", "2026-05-12", "Proposal")

    by_owner = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30, by="owner"))
    by_team = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30, by="team"))

    owners = {row.label: row.best_case for row in by_owner.rows}
    assert owners == {
        ana.username: Decimal("1000.00"),
        ben.username: Decimal("3000.00"),
        cam.username: Decimal("500.00"),
        "Unassigned": Decimal("200.00"),
    }
    teams = {row.label: row.weighted for row in by_team.rows}
    assert teams == {"North": Decimal("2000.00"), "No team": Decimal("350.00")}


# -- sales metrics ------------------------------------------------------------------------------


def test_win_rate_is_given_both_ways_and_labelled() -> None:
    won_deal("1000", at(1, 5), at(11, 5))
    won_deal("3000", at(2, 5), at(22, 5))
    lost_deal("500", at(3, 5), at(5, 5))
    open_deal("800", "2026-07-01", created=at(4, 5))

    result = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30))

    total = result.total
    assert (total.deals, total.won, total.lost, total.open) == (4, 2, 1, 1)
    assert total.win_rate_closed == pytest.approx(2 / 3, abs=1e-4)
    assert total.win_rate_all == 0.5
    assert total.average_won == Decimal("2000.00")
    assert result.labels["win_rate_closed"].startswith("Win rate (won ÷ closed")
    assert "all deals" in result.labels["win_rate_all"]


def test_sales_cycle_median_and_mean_in_days() -> None:
    won_deal("100", at(1, 5), at(11, 5))  # 10 days
    won_deal("100", at(1, 5), at(21, 5))  # 20 days
    won_deal("100", at(1, 5), at(31, 5))  # 30 days
    won_deal("100", at(2, 5), at(3, 6, hour=0))  # 31.5 days

    total = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30)).total

    assert total.cycle_median_days == 25.0
    assert total.cycle_mean_days == pytest.approx((10 + 20 + 30 + 31.5) / 4, abs=0.05)


def test_cycle_from_engagement_starts_when_sales_work_began() -> None:
    won_deal("100", at(10, 5), at(20, 5), engaged_at=at(1, 5))

    created = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30)).total
    engaged = sales_metrics(
        SalesRequest(date_from=MAY_1, date_to=JUNE_30, cycle_from="engaged")
    ).total

    assert created.cycle_median_days == 10.0
    assert engaged.cycle_median_days == 19.0


def test_sales_metrics_by_owner_product_and_region() -> None:
    ana, ben = make_user("sales"), make_user("sales")
    spain = make_company(country="Spain")
    mexico = make_company(country="Mexico")
    cloud = actions.create_product_line("Cloud")
    won_deal("1000", at(1, 5), at(5, 5), owner_id=ana.pk, company_id=spain.pk,
             product_line_id=cloud.pk)  # fmt: skip
    won_deal("3000", at(1, 5), at(9, 5), owner_id=ana.pk, company_id=mexico.pk)
    lost_deal("700", at(1, 5), at(3, 5), owner_id=ben.pk, company_id=spain.pk)

    by_owner = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30, by="owner"))
    by_region = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30, by="region"))
    by_product = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30, by="product"))

    owners = {r.label: (r.won, r.lost, r.average_won, r.cycle_median_days) for r in by_owner.rows}
    assert owners == {
        ana.username: (2, 0, Decimal("2000.00"), 6.0),
        ben.username: (0, 1, None, None),
    }
    regions = {r.label: (r.win_rate_closed, r.won_amount) for r in by_region.rows}
    assert regions == {"Spain": (0.5, Decimal("1000.00")), "Mexico": (1.0, Decimal("3000.00"))}
    products = {r.label: r.won for r in by_product.rows}
    assert products == {"Cloud": 1, "No product line": 1}


def test_deals_created_outside_the_period_are_left_out() -> None:
    won_deal("1000", at(1, 3), at(5, 5))
    won_deal("2000", at(1, 5), at(5, 5))

    total = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30)).total

    assert (total.deals, total.won_amount) == (1, Decimal("2000.00"))


def test_a_period_with_no_deals_has_no_rates_rather_than_a_division_by_zero() -> None:
    total = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30)).total

    assert (total.deals, total.win_rate_closed, total.win_rate_all, total.average_won) == (
        0,
        None,
        None,
        None,
    )
    assert total.cycle_median_days is None


# -- the `embudo report` command ----------------------------------------------------------------


def report(*args: str) -> str:
    out = io.StringIO()
    call_command("report", *args, stdout=out)
    return out.getvalue()


def test_report_forecast_as_json_csv_and_table_agree() -> None:
    open_deal("1000", "2026-05-10", "Proposal")

    as_json = json.loads(report("forecast", "--from", "2026-05-01", "--to", "2026-06-30",
                                "--format", "json"))  # fmt: skip
    as_csv = list(csv.reader(io.StringIO(report("forecast", "--from", "2026-05-01", "--to",
                                                "2026-06-30", "--format", "csv"))))  # fmt: skip
    as_table = report("forecast", "--from", "2026-05-01", "--to", "2026-06-30")

    assert as_json["total"]["weighted"] == 500.0
    assert as_json["rows"][0]["label"] == "2026-05"
    header, may, total = as_csv
    assert header[0] == "Period"
    assert may[header.index("Weighted pipeline (EUR)")] == "500.00"
    assert total[0] == "Total"
    assert "2026-05" in as_table
    assert "500.00" in as_table


def test_report_sales_by_owner_from_the_cli() -> None:
    rep = make_user("sales", first_name="Ana", last_name="Ruiz")
    won_deal("1000", at(1, 5), at(5, 5), owner_id=rep.pk)

    data = json.loads(report("sales", "--from", "2026-05-01", "--to", "2026-05-31", "--by",
                             "owner", "--format", "json"))  # fmt: skip

    assert data["rows"][0]["label"] == "Ana Ruiz"
    assert data["rows"][0]["win_rate_closed"] == 1.0
    assert data["labels"]["win_rate_all"].startswith("Win rate (won ÷ all")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("funnel-of-dreams",), "no report named 'funnel-of-dreams'; the reports are:"),
        (("forecast", "--from", "2026-05-40"), "is not a date"),
        (("forecast", "--from", "2026-06-01", "--to", "2026-05-01"), "ends (2026-05-01) before"),
        (("sales", "--by", "weather"), "is not one of none, period, owner"),
        (("sales", "--interval", "month"), "report sales has no option --interval"),
    ],
)
def test_report_errors_are_clear(args: tuple[str, ...], words: str) -> None:
    with pytest.raises(CommandError) as failed:
        report(*args)

    assert words in str(failed.value)


def test_period_edges_follow_the_sites_time_zone() -> None:
    from django.utils import timezone

    # 22:30 UTC on 31 May is already 1 June in Madrid.
    won_deal("1000", at(1, 5), dt.datetime(2026, 5, 31, 22, 30, tzinfo=dt.UTC))

    in_utc = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30))
    with timezone.override("Europe/Madrid"):
        in_madrid = forecast(ForecastRequest(date_from=MAY_1, date_to=JUNE_30))

    assert [(r.label, r.closed_won) for r in in_utc.rows] == [("2026-05", Decimal("1000.00"))]
    assert [(r.label, r.closed_won) for r in in_madrid.rows] == [("2026-06", Decimal("1000.00"))]


def test_sales_metrics_by_month_of_creation() -> None:
    won_deal("1000", at(3, 5), at(13, 5))
    lost_deal("500", at(20, 5), at(25, 5))
    won_deal("3000", at(2, 6), at(12, 6))

    result = sales_metrics(SalesRequest(date_from=MAY_1, date_to=JUNE_30, by="period"))

    assert [(r.label, r.deals, r.won, r.win_rate_closed) for r in result.rows] == [
        ("2026-05", 2, 1, 0.5),
        ("2026-06", 1, 1, 1.0),
    ]
    assert [r.key for r in result.rows] == ["2026-05-01", "2026-06-01"]
