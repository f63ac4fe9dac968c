"""The deals admin: its pages open for an admin, and an exchange rate set there goes through
the action, so open deals follow it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from embudo.deals import actions
from embudo.deals.models import Deal, ExchangeRate

pytestmark = pytest.mark.django_db


def test_the_deals_admin_pages_open_for_an_admin(client: Client, logged_in: Any) -> None:
    logged_in("admin")
    deal = actions.create_deal({"name": "X", "amount": 1, "expected_close_date": "2026-06-01"})

    for url in (
        "/admin/deals/deal/",
        f"/admin/deals/deal/{deal.pk}/change/",
        "/admin/deals/pipeline/",
        "/admin/deals/exchangerate/add/",
        "/admin/deals/goal/add/",
        "/admin/deals/salesteam/add/",
        "/admin/deals/lostreason/",
    ):
        assert client.get(url).status_code == 200, url


def test_a_rate_changed_in_the_admin_re_expresses_open_deals(
    client: Client, logged_in: Any
) -> None:
    logged_in("admin")
    rate = actions.set_exchange_rate("USD", "0.9")
    deal = actions.create_deal(
        {"name": "X", "amount": "1000", "currency": "USD", "expected_close_date": "2026-06-01"}
    )

    response = client.post(
        f"/admin/deals/exchangerate/{rate.pk}/change/", {"currency": "USD", "rate": "0.8"}
    )

    assert response.status_code == 302
    assert ExchangeRate.objects.get().rate == Decimal("0.8")
    assert Deal.objects.get(pk=deal.pk).amount_reporting == Decimal("800.00")
