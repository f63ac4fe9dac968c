"""The model page and the contact's prediction card in headless Chromium."""

from __future__ import annotations

import re
from typing import Any

import pytest

from embudo.predictive import actions
from tests.factories import make_user
from tests.test_predictive import open_contact, world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_model_page_shows_figures_flags_and_the_contact_its_reasons(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    world(leak=True)
    lead = open_contact(seats=90, segment="enterprise")
    result = actions.train_model(holdout=0.25, seed=1)
    assert result.ok
    admin = make_user("admin")

    browser_login(admin)
    page.goto(f"{live_server.url}/scoring/predictive/")
    assert page.get_by_role("link", name="Model").count() == 1
    auc = float(page.get_by_test_id("auc").inner_text())
    assert auc == pytest.approx(result.metrics["holdout"]["auc"], abs=0.001)
    assert page.get_by_test_id("deciles").locator("tbody tr").count() == 10
    flags = page.get_by_test_id("leak-flag").all_inner_texts()
    assert len(flags) == 1 and "closed_reason" in flags[0]
    assert "Rule-based scores against outcomes" in page.get_by_test_id("rules").inner_text()

    # Exclude the flagged field from the page.
    page.locator("input[name=exclude][value=closed_reason]").check()
    page.get_by_role("button", name="Save exclusions").click()
    page.wait_for_url(re.compile(r"/scoring/predictive/$"))
    assert "closed_reason" in page.locator(".message-success").inner_text()
    assert actions.predictive_settings().excluded_fields == ["closed_reason"]

    page.goto(f"{live_server.url}/contacts/{lead.pk}/")
    card = page.get_by_test_id("prediction")
    assert re.fullmatch(r"\d+ %", page.get_by_test_id("predicted-conversion").inner_text())
    assert "raises" in card.inner_text() or "lowers" in card.inner_text()
