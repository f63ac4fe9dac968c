"""The demo company's marketing spend: a monthly cost for each campaign tracking has seen and for
the paid channels bought without campaign tags, so the ROI report shows numbers.

A step of :mod:`embudo.demo.seed`: deterministic (its own random stream, months from ``ctx.now``).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from embudo.analytics.costs import CostKey, set_cost
from embudo.deals.actions import reporting_currency
from embudo.deals.periods import add_months
from embudo.tracking.models import Campaign

MONTHS = 12
# Spend bought per channel rather than per campaign (brand search, retargeting banners).
CHANNEL_BUDGETS = {"paid_search": 1800, "display": 600}


def seed_costs(ctx: Any) -> None:
    rng = ctx.rng("costs")
    currency = reporting_currency()
    this_month = dt.date(ctx.now.year, ctx.now.month, 1)
    campaigns = list(Campaign.objects.order_by("name").values_list("pk", flat=True))
    budgets = {pk: rng.randrange(400, 2500, 50) for pk in campaigns}
    made = 0
    for back in range(MONTHS, -1, -1):
        start = add_months(this_month, -back)
        end = add_months(start, 1) - dt.timedelta(days=1)
        if start > ctx.now.date():
            continue
        targets: list[tuple[CostKey, int]] = [
            (CostKey(pk, "", start, end), budget) for pk, budget in budgets.items()
        ]
        targets += [
            (CostKey(None, channel, start, end), budget)
            for channel, budget in CHANNEL_BUDGETS.items()
        ]
        for key, budget in targets:
            amount = Decimal(round(budget * rng.uniform(0.8, 1.2)))
            set_cost(key, amount, currency, note="demo", audit=False)
            made += 1
    ctx.counts["costs"] = made
