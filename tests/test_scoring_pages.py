"""The scoring settings page and the scores on the contact page."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

import pytest
from django.test import Client
from freezegun import freeze_time

from embudo.scoring import actions
from embudo.scoring.models import ScoreRule, ScoringModel
from tests.factories import event_rule, fit_rule, make_scoring_model, make_user
from tests.journeys import Event, journey, person

T0 = dt.datetime(2026, 7, 1, 9, 0, tzinfo=dt.UTC)


@pytest.mark.django_db
def test_the_contact_page_shows_scores_band_reasons_and_history(
    client: Client, logged_in: Any
) -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [fit_rule("job_title", "eq", "CTO", 30, name="Technical buyer"),
             event_rule("demo_request", 20, name="Asked for a demo")],
            name="Ideal buyer",
        )  # fmt: skip
        contact = journey(person(job_title="CTO", events=[Event("demo_request", T0)]))
        actions.rescore_model(model)
        logged_in("sales_manager")
        page = client.get(f"/contacts/{contact.pk}/").content.decode()

    assert 'data-testid="scores"' in page
    assert "Ideal buyer" in page
    assert "Technical buyer: +30" in page
    assert "Asked for a demo: +20" in page
    assert 'data-testid="score-history"' in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status", "editable"),
    [
        ("admin", 200, True),
        ("marketing", 200, True),
        ("sales_manager", 200, False),
        ("sales", 403, False),
    ],
)
def test_who_may_open_and_change_the_settings_page(
    client: Client, logged_in: Any, role: str, status: int, editable: bool
) -> None:
    make_scoring_model([fit_rule("job_title", "eq", "CTO", 30)], key="main")
    logged_in(role)
    response = client.get("/scoring/models/main/")
    assert response.status_code == status
    if status == 200:
        assert ("Add rule" in response.content.decode()) is editable
    posted = client.post(
        "/scoring/models/main/rules/",
        {"kind": "fit", "name": "CEO", "points": "10",
         "condition": json.dumps({"field": "job_title", "op": "eq", "value": "CEO"})},
    )  # fmt: skip
    assert (posted.status_code == 302) is editable
    assert ScoreRule.objects.filter(name="CEO").exists() is editable


@pytest.mark.django_db
def test_a_bad_condition_on_the_page_is_shown_and_nothing_is_saved(
    client: Client, logged_in: Any
) -> None:
    make_scoring_model(key="main")
    logged_in("marketing")
    response = client.post(
        "/scoring/models/main/rules/",
        {
            "kind": "engagement",
            "name": "Visits",
            "points": "2",
            "condition": '{"type": "page_view"',
        },
    )
    assert response.status_code == 422
    assert "not valid JSON" in response.content.decode()
    assert not ScoreRule.objects.exists()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_marketing_sets_up_a_model_and_a_rule_in_the_browser(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    browser_login(make_user("marketing", first_name="Marta", last_name="Ruiz"))
    page.goto(f"{live_server.url}/scoring/")
    assert page.get_by_role("link", name="Scoring").get_attribute("aria-current") == "page"

    page.get_by_label("Name", exact=True).fill("Enterprise buyers")
    page.get_by_label("Key").fill("enterprise")
    page.get_by_role("button", name="Create model").click()
    page.wait_for_url(re.compile(r"/scoring/models/enterprise/$"))
    assert page.get_by_test_id("status").inner_text() == "Rescoring…"

    form = page.locator("form.rule-form")
    form.get_by_label("Name (shown as the reason)").fill("Pricing visits")
    form.get_by_label("Kind").select_option("engagement")
    assert form.get_by_label("At most (points)").is_visible()
    form.get_by_label("Points", exact=True).fill("5")
    form.get_by_label("Condition (JSON)").fill(
        '{"type": "page_view", "where": [{"field": "url", "op": "contains", "value": "/pricing"}]}'
    )
    form.get_by_label("Count every matching event").check()
    form.get_by_label("At most (points)").fill("20")
    form.get_by_role("button", name="Add rule").click()
    page.wait_for_url(re.compile(r"/scoring/models/enterprise/$"))

    rules = page.get_by_test_id("rules")
    assert "Pricing visits" in rules.inner_text()
    assert 'url contains "/pricing"' in rules.inner_text()
    assert "each time, up to 20" in rules.inner_text()
    model = ScoringModel.objects.get(key="enterprise")
    assert model.rules.get().max_points == 20
