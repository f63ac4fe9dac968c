"""The demo's deals step: a deal for every opportunity in the demo history, its outcome following
the contact's path, a monthly goal, all deterministic."""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from embudo.deals.demo import seed_deals
from embudo.deals.models import Deal, Goal
from embudo.demo.seed import DEMO_SEED, DEMO_USERS, Stop
from tests.factories import make_company, make_contact, make_user

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 5, 20, tzinfo=dt.UTC)


@dataclass
class Context:
    """The part of the demo's SeedContext the deals step reads."""

    now: dt.datetime
    users: dict[str, Any]
    contacts: list[Any]
    paths: dict[int, list[Stop]]
    counts: dict[str, int] = field(default_factory=dict)

    def rng(self, step: str) -> random.Random:
        return random.Random(f"{DEMO_SEED}:{step}")


def days_ago(n: int) -> dt.datetime:
    return NOW - dt.timedelta(days=n)


def context() -> Context:
    # The reps (who own the deals and make up the teams) are all the step needs.
    users = {u.username: make_user(u.role, username=u.username) for u in DEMO_USERS if u.region}
    company = make_company(name="Acme", country="United States", employees=300)
    won, lost, still = (make_contact(company_id=company.pk) for _ in range(3))
    never = make_contact()
    paths = {
        won.pk: [
            Stop("lead", days_ago(90), "api"),
            Stop("sql", days_ago(80), "feedback", "javier"),
            Stop("opportunity", days_ago(70), "manual", "javier"),
            Stop("customer", days_ago(40), "manual", "javier"),
        ],
        lost.pk: [
            Stop("lead", days_ago(90), "api"),
            Stop("opportunity", days_ago(60), "manual", "carmen"),
            Stop("lead", days_ago(30), "feedback", "carmen"),
        ],
        still.pk: [
            Stop("lead", days_ago(90), "api"),
            Stop("opportunity", days_ago(20), "manual", "diego"),
        ],
        never.pk: [Stop("lead", days_ago(90), "api")],
    }
    return Context(NOW, users, [won, lost, still, never], paths)


def test_each_opportunity_becomes_a_deal_with_the_outcome_of_its_path() -> None:
    ctx = context()
    won, lost, still, _never = ctx.contacts

    seed_deals(ctx)

    deals = {d.contacts.get().pk: d for d in Deal.objects.prefetch_related("contacts")}
    assert set(deals) == {won.pk, lost.pk, still.pk}
    assert (deals[won.pk].status, deals[won.pk].closed_at) == ("won", days_ago(40))
    assert deals[won.pk].engaged_at == days_ago(80)
    assert deals[won.pk].owner == ctx.users["javier"]
    assert deals[won.pk].currency == "USD"
    assert deals[lost.pk].status == "lost"
    assert deals[lost.pk].lost_reason is not None
    assert deals[still.pk].status == "open"
    assert deals[still.pk].expected_close_date > NOW.date()
    assert ctx.counts["deals"] == 3
    assert Goal.objects.filter(period_start=dt.date(2026, 5, 1)).exists()
    assert Goal.objects.filter(period_start=dt.date(2026, 6, 1)).exists()


def test_the_deals_step_is_deterministic() -> None:
    ctx = context()

    seed_deals(ctx)
    seed_deals(ctx)

    rows = list(
        Deal.objects.order_by("id").values_list("name", "amount", "stage__name", "created_at")
    )
    assert len(rows) == 6
    assert rows[:3] == rows[3:]
