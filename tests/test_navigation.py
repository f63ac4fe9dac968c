"""The app shell's navigation marks exactly one entry as the current page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def current_entries(client: Client, path: str) -> list[str]:
    html = client.get(path).content.decode()
    return [
        chunk.split('"', 1)[0]
        for chunk in html.split('href="')[1:]
        if 'aria-current="page"' in chunk.split(">", 1)[0]
    ]


def test_only_the_plan_entry_is_current_on_the_plan_page(client: Client, logged_in: Any) -> None:
    logged_in("sales_manager")

    assert current_entries(client, "/deals/plan/") == ["/deals/plan/"]
    assert current_entries(client, "/deals/") == ["/deals/"]


def test_the_crm_pages_keep_their_addresses_and_lead_the_sidebar(
    client: Client, logged_in: Any
) -> None:
    logged_in("admin")

    home = client.get("/")
    html = client.get("/contacts/").content.decode()

    assert home.status_code == 302 and home["Location"] == "/contacts/"
    assert current_entries(client, "/contacts/") == ["/contacts/"]
    assert current_entries(client, "/companies/") == ["/companies/"]
    # Contacts and Companies come first in the sidebar, before every other app's entries.
    assert html.index('href="/contacts/"') < html.index('href="/companies/"')
    assert html.index('href="/companies/"') < html.index('href="/deals/"')
