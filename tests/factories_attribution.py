"""Declared journeys for the attribution and ROI tests: touchpoints at given times, conversions
through won deals (as a user would make them), campaigns and costs."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from embudo.crm.models import Contact
from embudo.deals import actions as deals
from embudo.deals.models import Deal
from embudo.tracking.models import Campaign, Touchpoint
from tests.factories import make_contact

T0 = dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC)


def days(n: float) -> dt.datetime:
    return T0 + dt.timedelta(days=n)


def campaign(name: str, source: str = "google", medium: str = "cpc") -> Campaign:
    return Campaign.objects.get_or_create(
        name=name, defaults={"first_source": source, "first_medium": medium}
    )[0]


def touch(
    contact: Contact, channel: str, at: dt.datetime, campaign_: Campaign | None = None
) -> Touchpoint:
    # Tracking creates these from visits; the tests declare them directly to pin the channel.
    return Touchpoint.objects.create(
        contact=contact, channel=channel, occurred_at=at, campaign=campaign_, source="test"
    )


def lead(at: dt.datetime, **kwargs: Any) -> Contact:
    return make_contact(lifecycle_stage="lead", at=at, **kwargs)


def win(
    contact: Contact | list[Contact],
    amount: str | Decimal,
    *,
    opened: dt.datetime,
    won: dt.datetime,
    currency: str | None = None,
) -> Deal:
    """A deal opened (its contacts become opportunities) and won (they become customers)."""
    contacts = contact if isinstance(contact, list) else [contact]
    data: dict[str, Any] = {
        "name": "Deal",
        "amount": str(amount),
        "expected_close_date": won.date().isoformat(),
        "contact_ids": [c.pk for c in contacts],
    }
    if currency:
        data["currency"] = currency
    created = deals.create_deal(data, at=opened)
    return deals.win_deal(created, at=won)
