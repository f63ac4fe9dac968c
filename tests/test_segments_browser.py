"""The segment editor in headless Chromium: the live count follows the conditions as you type."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from embudo.segments.models import Segment
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_editor_shows_the_live_count_and_errors_while_typing(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    user = make_user("marketing")
    for stage in ("lead", "lead", "mql", "customer"):
        make_contact(lifecycle_stage=stage)
    browser_login(user)
    page.goto(f"{live_server.url}/segments/new/")

    count = page.get_by_test_id("live-count")
    # Empty conditions match everyone.
    page.wait_for_function(
        "document.querySelector('[data-testid=live-count]').textContent.includes('4')"
    )
    assert count.inner_text() == "4 contacts match"

    area = page.locator("#conditions")
    area.fill(json.dumps({"field": "lifecycle_stage", "op": "in", "value": ["lead", "mql"]}))
    page.wait_for_function(
        "document.querySelector('[data-testid=live-count]').textContent.startsWith('3 ')"
    )
    assert page.get_by_test_id("live-text").inner_text() == "stage in (lead, mql)"

    area.fill('{"field": "lifecycle_stage", "op": "gt", "value": "lead"}')
    error = page.get_by_test_id("live-error")
    error.wait_for(state="visible")
    page.wait_for_function(
        "document.querySelector('[data-testid=live-error]').textContent.length > 0"
    )
    assert error.inner_text() == "op: 'gt' is not valid for a choice field"
    assert count.inner_text() == "Not valid yet"

    area.fill(json.dumps({"field": "lifecycle_stage", "op": "eq", "value": "customer"}))
    page.wait_for_function(
        "document.querySelector('[data-testid=live-count]').textContent.startsWith('1 ')"
    )
    assert count.inner_text() == "1 contact matches"
    page.get_by_label("Name").fill("Customers")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    assert page.get_by_test_id("member-count").inner_text() == "1"
    assert Segment.objects.get(name="Customers").conditions["value"] == "customer"

    page.goto(f"{live_server.url}/segments/")
    cell = page.get_by_test_id("segment-count")
    page.wait_for_function(
        "document.querySelector('[data-testid=segment-count]').textContent === '1'"
    )
    assert cell.inner_text() == "1"
