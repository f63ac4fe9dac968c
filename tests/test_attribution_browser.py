"""Attribution and ROI on the shared dashboard, in headless Chromium: the model comparison and
the ROI table draw with the numbers the CLI gives, and the CSV link downloads them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from embudo.analytics.costs import CostKey, set_cost
from tests.factories import make_campaign, make_user
from tests.journeys import Deal, Touch, journey, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_compares_the_models_and_shows_the_roi(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    now = timezone.now().replace(microsecond=0)
    hour = dt.timedelta(hours=1)
    spring = make_campaign("spring-sale")
    journey(
        person(
            at=now - 30 * hour,
            stage="lead",
            touches=[
                Touch("paid_search", now - 40 * hour, spring),
                Touch("email", now - 20 * hour),
            ],
            deals=[Deal("2000", opened=now - 10 * hour, won=now - 2 * hour)],
        )
    )
    today = timezone.localdate()
    set_cost(CostKey(spring.pk, "", today, today), Decimal("500"), "EUR")
    dates = f"from={today - dt.timedelta(days=7)}&to={today}"

    browser_login(make_user("marketing"))
    page.goto(f"{live_server.url}/analytics/?{dates}")

    page.wait_for_selector("#chart-attribution[data-rendered='1'] .main-svg")
    page.wait_for_selector("#chart-roi[data-rendered='1'] .main-svg")
    attribution = page.get_by_test_id("table-attribution")
    search = attribution.locator("tbody tr", has_text="Paid search").locator("td")
    cells = [search.nth(i).inner_text() for i in range(search.count())]
    # First touch: all 2,000 to paid search; last touch: none.
    assert cells[1:6] == ["1", "1", "2000", "0", "0"]
    page.screenshot(path="/tmp/embudo-attribution.png", full_page=True)
    # By channel (the dashboard's view), the campaign's spend is on its channel.
    roi = page.get_by_test_id("table-roi").locator("tbody tr", has_text="Paid search").locator("td")
    assert [roi.nth(i).inner_text() for i in range(4)] == ["Paid search", "500", "1", "500"]
    page.screenshot(path="/tmp/embudo-attribution.png", full_page=True)

    href = page.locator("#section-roi a[data-download='csv']").get_attribute("href")
    assert href and "from=" in href
    download = page.request.get(f"{live_server.url}{href}")
    assert download.status == 200
    header, *rows = download.text().splitlines()
    spring_row = next(r for r in rows if r.startswith("Paid search")).split(",")
    columns = header.split(",")
    assert spring_row[columns.index("Cost (EUR)")] == "500"
    assert spring_row[columns.index("First touch: ROI")] == "4"
