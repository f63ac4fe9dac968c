"""The demo company's deals and goals: a deal for every opportunity in the demo contacts'
lifecycle history, won when the contact became a customer, lost when it fell back, open when it
is still an opportunity; sales teams by territory, exchange rates, and a revenue goal for this
month and the next sized from the last months' wins.

A step of :mod:`embudo.demo.seed`: deterministic (its own random stream, dates from
``ctx.now``), written with ``bulk_create`` like the other steps.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

from embudo.crm.models import Contact, LifecycleStage
from embudo.deals import actions
from embudo.deals.models import Deal, DealStageChange, DealStatus, LostReason, Stage, StageKind
from embudo.deals.periods import add_months, period_of

CURRENCY_OF_COUNTRY = {"United States": "USD", "United Kingdom": "GBP"}
RATES = {"USD": Decimal("0.92"), "GBP": Decimal("1.17")}
TEAMS = {"iberia": "Iberia", "latam": "LATAM", "english": "English-speaking"}
PRODUCTS = ("Embudo Cloud", "Embudo Enterprise", "Onboarding services")


def seed_deals(ctx: Any) -> None:
    from embudo.demo.seed import DEMO_USERS

    rng = ctx.rng("deals")
    pipeline = actions.default_pipeline()
    stages = list(Stage.objects.filter(pipeline=pipeline).order_by("position"))
    open_stages = [s for s in stages if s.kind == StageKind.OPEN]
    won = next(s for s in stages if s.kind == StageKind.WON)
    lost = next(s for s in stages if s.kind == StageKind.LOST)
    reasons = list(LostReason.objects.order_by("position"))
    for currency, rate in RATES.items():
        actions.set_exchange_rate(currency, rate)
    teams = {region: actions.create_team(name) for region, name in TEAMS.items()}
    for user in DEMO_USERS:
        if user.region:
            actions.set_team(ctx.users[user.username], teams[user.region])
    products = [actions.create_product_line(name) for name in PRODUCTS]

    deals: list[Deal] = []
    moves: list[list[tuple[Stage | None, Stage, dt.datetime, Any]]] = []
    people: list[int] = []
    by_pk = {contact.pk: contact for contact in ctx.contacts}
    for pk, path in ctx.paths.items():
        contact: Contact = by_pk[pk]
        for i, stop in enumerate(path):
            if stop.stage != LifecycleStage.OPPORTUNITY:
                continue
            after = path[i + 1] if i + 1 < len(path) else None
            sql = next((s.at for s in reversed(path[:i]) if s.stage == LifecycleStage.SQL), stop.at)
            owner = ctx.users.get(stop.actor) if stop.actor else contact.owner
            company = contact.company
            employees = (company.employees if company else None) or 20
            currency = CURRENCY_OF_COUNTRY.get(company.country if company else "", "EUR")
            amount = Decimal(
                max(500, round(900 * employees**0.42 * rng.lognormvariate(0, 0.35), -2))
            )
            rate = RATES.get(currency, Decimal(1))
            opened = stop.at
            history: list[tuple[Stage | None, Stage, dt.datetime, Any]] = [
                (None, open_stages[0], opened, owner)
            ]
            if after is None:
                # Still an opportunity: somewhere along the pipeline, closing in the weeks ahead.
                age = (ctx.now - opened).days
                reached = min(len(open_stages) - 1, age // 12 + rng.randint(0, 1))
                for step in range(1, reached + 1):
                    at = opened + (ctx.now - opened) * step / (reached + 1)
                    history.append((open_stages[step - 1], open_stages[step], at, owner))
                status, stage, closed = DealStatus.OPEN, open_stages[reached], None
                expected = (ctx.now + dt.timedelta(days=rng.randint(5, 75))).date()
            else:
                closed = after.at
                middle = opened + (closed - opened) / 2
                history.append((open_stages[0], open_stages[2], middle, owner))
                if after.stage == LifecycleStage.CUSTOMER:
                    status, stage = DealStatus.WON, won
                else:
                    status, stage = DealStatus.LOST, lost
                history.append((open_stages[2], stage, closed, owner))
                expected = closed.date()
            deals.append(
                Deal(
                    name=_deal_name(contact, rng),
                    pipeline=pipeline,
                    stage=stage,
                    status=status,
                    forecast_category=stage.forecast_category,
                    amount=amount,
                    currency=currency,
                    exchange_rate=rate,
                    amount_reporting=(amount * rate).quantize(Decimal("0.01")),
                    expected_close_date=expected,
                    owner=owner,
                    company=company,
                    product_line=rng.choices(products, weights=(6, 2, 2))[0],
                    lost_reason=rng.choices(reasons, weights=(5, 4, 3, 3, 2))[0]
                    if status == DealStatus.LOST
                    else None,
                    created_at=opened,
                    engaged_at=min(sql, opened),
                    closed_at=closed,
                    stage_changed_at=history[-1][2],
                    updated_at=history[-1][2],
                )
            )
            moves.append(history)
            people.append(pk)
    saved = Deal.objects.bulk_create(deals, batch_size=1000)
    DealStageChange.objects.bulk_create(
        (
            DealStageChange(deal=deal, from_stage=source, to_stage=to, changed_at=at, actor=actor)
            for deal, history in zip(saved, moves, strict=True)
            for source, to, at, actor in history
        ),
        batch_size=1000,
    )
    Deal.contacts.through.objects.bulk_create(
        (
            Deal.contacts.through(deal_id=deal.pk, contact_id=pk)
            for deal, pk in zip(saved, people, strict=True)
        ),
        batch_size=1000,
    )
    ctx.counts["deals"] = len(saved)
    ctx.counts["goals"] = _goals(ctx, saved)


def _deal_name(contact: Contact, rng: Any) -> str:
    what = rng.choice(("Cloud rollout", "Pilot", "Annual plan", "Expansion", "Renewal"))
    return f"{contact.company.name if contact.company else contact.full_name} — {what}"


def _goals(ctx: Any, deals: list[Deal]) -> int:
    """This month's and next month's goal: the average of the last six months' wins, plus a
    fifth, rounded up to the thousand."""
    this_month = period_of("month", ctx.now.date())
    since = add_months(this_month.start, -6)
    won = [
        d.amount_reporting
        for d in deals
        if d.status == DealStatus.WON
        and d.closed_at is not None
        and since <= d.closed_at.date() < this_month.start
    ]
    monthly = sum(won, Decimal(0)) / 6 if won else Decimal(20000)
    target = Decimal(math.ceil(monthly * Decimal("1.2") / 1000) * 1000)
    for start in (this_month.start, add_months(this_month.start, 1)):
        actions.set_goal(period_of("month", start), target)
    return 2
