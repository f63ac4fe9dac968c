"""The deals pages in headless Chromium: drag a deal across the pipeline board and see the move
kept; a lost stage asks for the reason; the plan page draws its funnel; marketing sees no deal."""

from __future__ import annotations

from typing import Any

import pytest

from embudo.deals import actions
from embudo.deals.models import Deal
from tests.factories import make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def drag(page: Any, card: Any, column: Any) -> None:
    """Press on the card, move in small steps (as a hand does) onto the column, release."""
    column.scroll_into_view_if_needed()
    start, end = card.bounding_box(), column.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(start["x"] + start["width"] / 2 + 20, start["y"] + 20, steps=4)
    page.mouse.move(end["x"] + end["width"] / 2, end["y"] + 80, steps=12)
    page.mouse.up()


def new_deal(name: str, **data: Any) -> Deal:
    return actions.create_deal(
        {"name": name, "amount": "4200", "expected_close_date": "2026-06-30", **data}
    )


def test_dragging_a_deal_to_another_stage_is_saved(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    rep = make_user("sales", first_name="Ana", last_name="Ruiz")
    contact = make_contact(lifecycle_stage="sql", owner_id=rep.pk)
    deal = new_deal("Acme expansion", owner_id=rep.pk, contact_ids=[contact.pk])
    new_deal("Globex pilot", owner_id=rep.pk)

    browser_login(rep)
    page.goto(f"{live_server.url}/deals/")
    card = page.locator(f'.deal-card[data-deal="{deal.pk}"]')
    proposal = page.get_by_test_id("stage-proposal")
    assert card.locator("xpath=ancestor::section").get_attribute("data-name") == "Qualified"

    drag(page, card, proposal)

    page.get_by_text("Acme expansion moved to Proposal.").wait_for()
    assert Deal.objects.get(pk=deal.pk).stage.name == "Proposal"
    assert proposal.locator("[data-count]").inner_text() == "1"
    page.reload()
    moved = page.get_by_test_id("stage-proposal").locator(f'.deal-card[data-deal="{deal.pk}"]')
    assert moved.count() == 1
    history = list(Deal.objects.get(pk=deal.pk).stage_changes.values_list("actor", flat=True))
    assert history == [None, rep.pk]


def test_dropping_on_won_makes_the_contacts_customers(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    manager = make_user("sales_manager")
    contact = make_contact(lifecycle_stage="sql")
    deal = new_deal("Initech", contact_ids=[contact.pk])

    browser_login(manager)
    page.goto(f"{live_server.url}/deals/")
    drag(page, page.locator(f'.deal-card[data-deal="{deal.pk}"]'), page.get_by_test_id("stage-won"))

    page.get_by_text("Initech moved to Won.").wait_for()
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "customer"
    assert Deal.objects.get(pk=deal.pk).status == "won"


def test_dropping_on_lost_asks_why_and_keeps_the_reason(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    manager = make_user("sales_manager")
    deal = new_deal("Umbrella")

    browser_login(manager)
    page.goto(f"{live_server.url}/deals/")
    drag(
        page, page.locator(f'.deal-card[data-deal="{deal.pk}"]'), page.get_by_test_id("stage-lost")
    )
    dialog = page.locator("dialog.reason")
    dialog.get_by_label("Lost reason").select_option(label="No budget")
    dialog.get_by_label("Note").fill("Budget frozen until Q4")
    dialog.get_by_role("button", name="Mark lost").click()

    page.get_by_text("Umbrella moved to Lost.").wait_for()
    stored = Deal.objects.select_related("lost_reason").get(pk=deal.pk)
    assert (stored.status, stored.lost_reason.name, stored.lost_note) == (  # type: ignore[union-attr]
        "lost",
        "No budget",
        "Budget frozen until Q4",
    )


def test_the_plan_page_draws_the_funnel_beside_the_numbers(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    marketer = make_user("marketing")

    browser_login(marketer)
    page.goto(
        f"{live_server.url}/deals/plan/?period=2026-05&revenue=20000&deal_value=2000"
        "&rates=lead:customer%3D0.05"
    )

    assert page.get_by_test_id("deals-needed").inner_text() == "10"
    lead_row = page.get_by_test_id("plan-table").locator('tr[data-stage="lead"]')
    assert lead_row.locator("[data-needed]").inner_text() == "200"
    # Plotly (served from the installed wheel) drew the funnel.
    page.locator("#plan-chart .funnellayer .point").first.wait_for()
    assert page.locator("#plan-chart .funnellayer .point").count() >= 2


def test_marketing_is_refused_the_deal_pages(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    marketer = make_user("marketing")
    deal = new_deal("Secret")

    browser_login(marketer)
    for path in ("/deals/", "/deals/list/", f"/deals/{deal.pk}/", "/deals/forecast/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 403, path
    nav = page.goto(f"{live_server.url}/deals/plan/")
    assert nav is not None and nav.status == 200
    assert page.locator(".nav").get_by_text("Pipeline").count() == 0
