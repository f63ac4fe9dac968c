"""Campaign costs through `embudo import costs` (good file, row errors with line and column,
unknown campaigns, currencies, all or nothing, re-import) and the ROI report built on them."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from embudo.analytics.attribution import AttributionRequest
from embudo.analytics.demo import seed_costs
from embudo.analytics.models import Cost
from embudo.analytics.roi import roi
from embudo.csvimport.run import run_import
from embudo.deals import actions as deal_actions
from embudo.demo.seed import DEMO_SEED
from tests.factories import make_campaign
from tests.journeys import T0, Deal, Touch, days, journey, journeys, person

pytestmark = pytest.mark.django_db


def write(tmp_path: Path, text: str, name: str = "costs.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def imported(*args: str) -> str:
    out = io.StringIO()
    call_command("import", "costs", *args, "--quiet", stdout=out)
    return out.getvalue()


def test_a_good_file_records_each_cost_in_the_reporting_currency(tmp_path: Path) -> None:
    spring = make_campaign("spring-sale")
    deal_actions.set_exchange_rate("USD", "0.9")
    path = write(
        tmp_path,
        "campaign,channel,period,amount,currency\n"
        "spring-sale,,2026-03,1000,USD\n"
        ',Paid search,2026-Q1,"€1.500,50",\n'
        ",email,2026-03-01..2026-03-15,200,EUR\n",
    )

    out = imported(str(path))

    assert "3 created" in out
    costs = {(c.campaign_id, c.channel): c for c in Cost.objects.all()}
    usd = costs[(spring.pk, "")]
    assert (usd.amount, usd.currency, usd.amount_reporting) == (
        Decimal("1000.00"),
        "USD",
        Decimal("900.00"),
    )
    assert (usd.period_start.isoformat(), usd.period_end.isoformat()) == (
        "2026-03-01",
        "2026-03-31",
    )
    search = costs[(None, "paid_search")]
    assert (search.amount_reporting, search.period_end.isoformat()) == (
        Decimal("1500.50"),
        "2026-03-31",
    )
    assert costs[(None, "email")].period_end.isoformat() == "2026-03-15"


def test_importing_a_corrected_file_again_updates_instead_of_counting_twice(
    tmp_path: Path,
) -> None:
    make_campaign("spring-sale")
    imported(str(write(tmp_path, "campaign,period,amount\nspring-sale,2026-03,1000\n")))

    out = imported(str(write(tmp_path, "campaign,period,amount\nspring-sale,2026-03,1200\n")))

    assert "1 updated" in out
    assert [c.amount for c in Cost.objects.all()] == [Decimal("1200.00")]


def test_bad_rows_are_named_by_line_and_column_and_nothing_is_written(tmp_path: Path) -> None:
    make_campaign("spring-sale")
    path = write(
        tmp_path,
        "campaign,channel,period,amount,currency\n"
        "spring-sale,,2026-03,1000,EUR\n"  # good, but the file fails as a whole
        "sprng-sale,,2026-03,50,EUR\n"  # line 3: typo
        ",radio,2026-03,50,EUR\n"  # line 4: no such channel
        ",email,2026-13,50,EUR\n"  # line 5: no such month
        ",email,2026-04,-5,EUR\n"  # line 6: negative
        ",email,2026-05,50,XYZ\n"  # line 7: no exchange rate
        "spring-sale,email,2026-06,50,EUR\n"  # line 8: both targets
        "spring-sale,,2026-03,70,EUR\n",  # line 9: same campaign and period as line 2
    )

    result = run_import("costs", path)

    assert not result.committed and Cost.objects.count() == 0
    problems = {(e.line, e.column): e.problem for e in result.errors}
    assert (
        "no campaign named 'sprng-sale'; did you mean 'spring-sale'?" in problems[(3, "campaign")]
    )
    assert "'radio' is not a channel" in problems[(4, "channel")]
    assert "month 13 does not exist" in problems[(5, "period")]
    assert "negative" in problems[(6, "amount")]
    assert "no exchange rate from XYZ" in problems[(7, "currency")]
    assert "not both" in problems[(8, "channel")]
    assert "appears on line 2 and line 9" in problems[(9, "campaign")]


def test_the_cli_refuses_the_file_and_says_why(tmp_path: Path) -> None:
    path = write(tmp_path, "campaign,period,amount\nnever-seen,2026-03,10\n")

    with pytest.raises(CommandError, match="nothing was imported"):
        imported(str(path))

    assert Cost.objects.count() == 0


def test_a_file_without_the_needed_columns_is_refused_before_any_row(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="needs an amount column"):
        imported(str(write(tmp_path, "campaign,period\nspring,2026-03\n")))


def test_skip_invalid_imports_the_good_rows_and_reports_the_others(tmp_path: Path) -> None:
    make_campaign("spring-sale")
    path = write(tmp_path, "campaign,period,amount\nspring-sale,2026-03,10\nnope,2026-03,10\n")

    out = imported(str(path), "--skip-invalid")

    assert "1 created" in out and "1 invalid rows skipped" in out
    assert Cost.objects.count() == 1


# -- the ROI report -----------------------------------------------------------------------------


def test_roi_divides_attributed_revenue_by_the_spend_of_the_period(tmp_path: Path) -> None:
    spring = make_campaign("spring-sale")
    brand = make_campaign("brand", source="newsletter", medium="email")
    journeys(
        {
            "buyer": person(
                at=days(-7.5),
                stage="lead",
                touches=[Touch("paid_search", days(-8), spring), Touch("email", days(-3), brand)],
                deals=[Deal("3000", opened=days(-2), won=T0)],
            ),
            "a lead from the spring sale that did not buy": person(
                at=days(-6), stage="lead", touches=[Touch("paid_search", days(-7), spring)]
            ),
        }
    )
    imported(
        str(
            write(
                tmp_path,
                "campaign,start,end,amount\n"
                "spring-sale,2026-03-01,2026-03-31,3100\n"  # 31 days, 10 inside the period
                "brand,2026-03-12,2026-03-21,500\n",
            )
        )
    )
    request = AttributionRequest(
        date_from=days(-9).date(), date_to=days(0).date(), by="campaign"
    )  # 2026-03-11..2026-03-20

    result = roi(request)

    rows = {row.label: row for row in result.rows}
    sale = rows["spring-sale"]
    assert sale.cost == pytest.approx(1000.0)
    assert (sale.leads, sale.customers) == (2.0, 1.0)
    assert sale.per(sale.leads) == 500.0 and sale.per(sale.customers) == 1000.0
    assert sale.revenue["first_touch"] == 3000.0 and sale.roi("first_touch") == 3.0
    assert sale.revenue["last_touch"] == 0.0 and sale.roi("last_touch") == 0.0
    email = rows["brand"]
    assert email.cost == pytest.approx(450.0)  # 9 of its 10 days
    assert email.revenue["linear"] == 1500.0 and email.roi("linear") == pytest.approx(3.3333, 1e-3)
    assert result.total.cost == pytest.approx(1450.0)


def test_roi_by_channel_puts_campaign_spend_on_the_campaigns_channel(tmp_path: Path) -> None:
    make_campaign("spring-sale", source="google", medium="cpc")
    imported(
        str(
            write(
                tmp_path,
                "campaign,channel,period,amount\nspring-sale,,2026-03,310\n,email,2026-03,62\n",
            )
        )
    )

    result = roi(AttributionRequest(date_from=days(-19).date(), date_to=days(11).date()))

    costs = {row.key: row.cost for row in result.rows}
    assert costs == {"paid_search": pytest.approx(310.0), "email": pytest.approx(62.0)}


def test_roi_through_the_cli_and_api(client: Client, logged_in: Any, tmp_path: Path) -> None:
    make_campaign("spring-sale")
    imported(str(write(tmp_path, "campaign,period,amount\nspring-sale,2026-03,310\n")))
    logged_in("marketing")

    out = io.StringIO()
    call_command(
        "report", "roi", "--from", "2026-03-01", "--to", "2026-03-31", "--by", "campaign",
        "--model", "markov", "--format", "json", stdout=out,
    )  # fmt: skip
    api = client.get("/api/v1/reports/roi?from=2026-03-01&to=2026-03-31&by=campaign")
    bad = client.get("/api/v1/reports/roi?from=2026-03-01&to=2026-03-31&by=weather")

    body = json.loads(out.getvalue())
    assert body["rows"][0]["cost"] == 310.0 and list(body["rows"][0]["models"]) == ["markov"]
    assert api.status_code == 200 and api.json()["total"]["cost"] == 310.0
    assert bad.status_code == 422


# -- the demo's costs step ----------------------------------------------------------------------


@dataclass
class DemoContext:
    """The part of the demo's SeedContext the costs step reads."""

    now: dt.datetime
    counts: dict[str, int] = field(default_factory=dict)

    def rng(self, step: str) -> random.Random:
        return random.Random(f"{DEMO_SEED}:{step}")


def test_demo_costs_give_the_roi_report_numbers_and_are_deterministic() -> None:
    spring = make_campaign("spring-sale")
    journey(
        person(
            at=days(-9),
            stage="lead",
            touches=[Touch("paid_search", days(-10), spring)],
            deals=[Deal("3000", opened=days(-2), won=T0)],
        )
    )
    ctx = DemoContext(now=T0)

    seed_costs(ctx)
    first = list(Cost.objects.values_list("campaign_id", "channel", "period_start", "amount"))
    seed_costs(ctx)  # the same again: figures are replaced, not added

    assert ctx.counts["costs"] == 13 * 3  # 12 months back and this one; the campaign + 2 channels
    assert list(Cost.objects.values_list("campaign_id", "channel", "period_start", "amount")) == (
        first
    )
    result = roi(AttributionRequest(date_from=dt.date(2026, 3, 1), date_to=dt.date(2026, 3, 31),
                                    by="campaign"))  # fmt: skip
    sale = next(row for row in result.rows if row.label == "spring-sale")
    assert sale.cost > 0 and sale.roi("first_touch") == round(3000 / sale.cost, 4)


def test_admin_fixes_a_figure_and_a_refused_one_keeps_the_old(
    client: Client, logged_in: Any, tmp_path: Path
) -> None:
    spring = make_campaign("spring-sale")
    imported(str(write(tmp_path, "campaign,period,amount\nspring-sale,2026-03,100\n")))
    cost = Cost.objects.get()
    logged_in("admin")
    form = {
        "campaign": spring.pk, "channel": "", "period_start": "2026-03-01",
        "period_end": "2026-03-31", "amount": "250", "currency": "eur", "note": "",
    }  # fmt: skip

    fixed = client.post(f"/admin/analytics/cost/{cost.pk}/change/", form)
    refused = client.post(f"/admin/analytics/cost/{Cost.objects.get().pk}/change/",
                          {**form, "amount": "300", "currency": "XYZ"}, follow=True)  # fmt: skip

    assert fixed.status_code == 302
    assert "no exchange rate from XYZ" in refused.content.decode()
    kept = Cost.objects.get()
    assert (kept.amount, kept.currency, kept.amount_reporting) == (
        Decimal("250.00"),
        "EUR",
        Decimal("250.00"),
    )
