"""The pages in headless Chromium against a live server: what a person clicking through sees."""

from __future__ import annotations

import re
from typing import Any

import pytest

from embudo.crm import actions as crm
from tests.factories import PASSWORD, make_company, make_contact, make_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_log_in_search_and_open_a_contacts_timeline(live_server: Any, page: Any) -> None:
    user = make_user("marketing", first_name="Marta", last_name="Ruiz")
    company = make_company(name="Acme Robotics")
    valeria = make_contact(
        first_name="Valeria", last_name="Ibáñez", company_id=company.pk, lifecycle_stage="lead"
    )
    make_contact(first_name="Bruno", last_name="Díaz")
    crm.log_activity(valeria, {"kind": "call", "subject": "Discovery call", "body": "Budget ok"})

    page.goto(f"{live_server.url}/contacts/")
    # Not logged in yet: the contacts page sends the browser to the login form.
    assert "/login/" in page.url
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/contacts/$"))
    assert page.locator(".who-name").inner_text() == "Marta Ruiz"
    rows = page.locator("table.table tbody tr")
    assert rows.count() == 2

    page.get_by_placeholder("Search by name, email or external id").fill("vale")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"q=vale"))
    assert rows.count() == 1
    assert "Acme Robotics" in rows.first.inner_text()

    page.get_by_role("link", name="Valeria Ibáñez").click()
    page.wait_for_url(re.compile(rf"/contacts/{valeria.pk}/$"))
    timeline = page.get_by_test_id("timeline")
    assert "Discovery call" in timeline.inner_text()
    assert "Entered as Lead" in timeline.inner_text()


def test_change_a_contacts_stage_and_see_it_in_the_history(
    live_server: Any, page: Any, browser_login: Any
) -> None:
    manager = make_user("sales_manager", first_name="Elena", last_name="Ortega")
    contact = make_contact(first_name="Irene", last_name="Soto", lifecycle_stage="mql")

    browser_login(manager)
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    page.get_by_label("New stage").select_option("sql")
    page.get_by_label("Reason").fill("Budget confirmed")
    page.get_by_role("button", name="Change stage").click()

    page.wait_for_load_state()
    assert "Lifecycle stage changed to SQL." in page.locator(".messages").inner_text()
    assert page.get_by_test_id("current-stage").inner_text() == "SQL"
    last_move = page.get_by_test_id("history").locator("tbody tr").last.inner_text()
    assert "MQL" in last_move and "SQL" in last_move
    assert "Manual" in last_move and "Elena Ortega" in last_move and "Budget confirmed" in last_move
    contact.refresh_from_db()
    assert contact.lifecycle_stage == "sql"


def test_log_a_task_with_a_due_date(live_server: Any, page: Any, browser_login: Any) -> None:
    rep = make_user("sales")
    contact = make_contact(owner_id=rep.pk)

    browser_login(rep)
    page.goto(f"{live_server.url}/contacts/{contact.pk}/")
    due = page.get_by_label("Due date")
    assert not due.is_visible()  # only tasks have a due date
    page.locator(".kind-choice", has_text="Task").click()
    assert due.is_visible()
    page.get_by_label("Subject").fill("Send proposal")
    due.fill("2026-03-10")
    page.get_by_role("button", name="Log activity").click()

    page.wait_for_load_state()
    entry = page.get_by_test_id("timeline").locator("li").first.inner_text()
    assert "Send proposal" in entry and "Due" in entry


def test_switch_to_spanish_and_back(live_server: Any, page: Any, browser_login: Any) -> None:
    make_contact(lifecycle_stage="customer")
    browser_login(make_user("admin"))
    page.goto(f"{live_server.url}/contacts/")

    page.get_by_role("button", name="ES", exact=True).click()
    page.wait_for_load_state()

    assert page.locator("html").get_attribute("lang") == "es"
    assert page.get_by_role("heading", name="Contactos").is_visible()
    header = page.locator("table.table thead").inner_text().lower()
    assert "nombre" in header and "propietario" in header and "etapa" in header
    assert "Cliente" in page.locator("table.table tbody").inner_text()
    assert page.get_by_role("button", name="Cerrar sesión").is_visible()

    page.get_by_role("button", name="EN", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Contacts").is_visible()


def test_log_out_ends_the_session(live_server: Any, page: Any, browser_login: Any) -> None:
    browser_login(make_user("sales"))
    page.goto(f"{live_server.url}/contacts/")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r"/login/"))
    page.goto(f"{live_server.url}/contacts/")

    assert "/login/" in page.url
