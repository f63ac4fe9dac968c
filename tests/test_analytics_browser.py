"""The shared dashboard in headless Chromium: the charts draw, a filter changes the numbers, and
the CSV link downloads the same numbers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from tests.factories import make_user
from tests.journeys import journeys, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_dashboard_charts_draw_and_the_source_filter_changes_the_numbers(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    # Three leads this month, two of them from google; one of those went on to MQL.
    now = timezone.now()
    day = dt.timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    times = [min(start + i * dt.timedelta(hours=1), now - day / 24) for i in range(6)]
    journeys(
        {
            "mql from google": person(
                at=times[0],
                original_source="google",
                stages=[("lead", times[1]), ("mql", times[2])],
            ),
            "lead from google": person(
                at=times[0], original_source="google", stages=[("lead", times[3])]
            ),
            "lead from bing": person(
                at=times[0], original_source="bing", stages=[("lead", times[4])]
            ),
        }
    )
    browser_login(make_user("marketing"))
    page.goto(f"{live_server.url}/analytics/")

    for slug in ("funnel", "conversion-trend", "velocity", "sources"):
        page.wait_for_selector(f"#chart-{slug}[data-rendered='1'] .main-svg")
    # Plotly's own modebar offers the PNG download.
    assert page.locator("#chart-funnel .modebar-btn[data-title*='PNG']").count() == 1
    assert page.locator("#chart-funnel .modebar-btn[data-title*='Share']").count() == 0
    funnel = page.get_by_test_id("table-funnel")
    assert funnel.locator("tbody tr").first.locator("td").nth(2).inner_text() == "3"

    page.get_by_role("combobox", name="Source").fill("google")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"source=google"))
    page.wait_for_selector("#chart-funnel[data-rendered='1']")
    first = page.get_by_test_id("table-funnel").locator("tbody tr").first.locator("td")
    assert [first.nth(i).inner_text() for i in (2, 4)] == ["2", "1"]
    page.screenshot(path="/tmp/embudo-dashboard.png", full_page=True)

    href = page.locator("#section-funnel a[data-download='csv']").get_attribute("href")
    assert href and "source=google" in href
    download = page.request.get(f"{live_server.url}{href}")
    assert download.status == 200
    assert download.text().splitlines()[1].startswith("Total,lead,2,0,1")
