"""Recording marketing spend: one figure per campaign (or channel) and period, converted to the
reporting currency when it is written, as deal amounts are."""

from __future__ import annotations

import datetime as dt
import difflib
import re
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.analytics.models import Cost
from embudo.deals.actions import rate_for, to_reporting
from embudo.deals.periods import PeriodError, parse_period
from embudo.errors import EmbudoError, ValidationFailed
from embudo.tracking.models import Campaign, Channel

_RANGE = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})\s*(?:\.\.|/|\u2013| to )\s*(\d{4}-\d{2}-\d{2})\s*$")


class CostValueError(EmbudoError, ValueError):
    """A cost's period, target or amount that cannot be used; the message says why."""


@dataclass(frozen=True)
class CostKey:
    """What a cost is for: a campaign id or a channel (one of the two), over some days."""

    campaign_id: int | None
    channel: str
    start: dt.date
    end: dt.date  # inclusive


def parse_cost_period(raw: str) -> tuple[dt.date, dt.date]:
    """``2026-03`` (a month), ``2026-Q1``, ``2026``, one day ``2026-03-05`` or a range
    ``2026-03-01..2026-03-15``: the first and last day, inclusive."""
    text = raw.strip()
    if match := _RANGE.match(text):
        try:
            start, end = dt.date.fromisoformat(match[1]), dt.date.fromisoformat(match[2])
        except ValueError as error:
            raise CostValueError(_("%(raw)r: %(error)s") % {"raw": raw, "error": error}) from None
        if end < start:
            raise CostValueError(
                _("the period %(raw)r ends before it starts") % {"raw": raw}
            ) from None
        return start, end
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        pass
    else:
        return day, day
    try:
        period = parse_period(text)
    except PeriodError as error:
        if "does not exist" in str(error):  # a well-formed month that is not one (2026-13)
            raise CostValueError(str(error)) from None
        raise CostValueError(
            _(
                "%r is not a period; use 2026-03 (a month), 2026-Q1 (a quarter), 2026 (a year), "
                "2026-03-05 (a day) or 2026-03-01..2026-03-15 (a range)"
            )
            % raw
        ) from None
    return period.start, period.end - dt.timedelta(days=1)


_CHANNEL_NAMES = {
    **{value: value for value in Channel.values},
    **{str(label).lower(): value for value, label in Channel.choices},
    **{value.replace("_", " "): value for value in Channel.values},
    **{value.replace("_", "-"): value for value in Channel.values},
}


def parse_channel(raw: str) -> str:
    key = raw.strip().lower()
    if key in _CHANNEL_NAMES:
        return _CHANNEL_NAMES[key]
    raise CostValueError(
        _("%(raw)r is not a channel; the channels are: %(names)s")
        % {"raw": raw, "names": ", ".join(Channel.values)}
    )


class CampaignDirectory:
    """The campaigns by name (as tracking saw them in utm_campaign), with suggestions for names
    it does not know."""

    def __init__(self) -> None:
        self.by_name = dict(Campaign.objects.values_list("name", "pk"))
        self.by_lower = {name.lower(): pk for name, pk in self.by_name.items()}

    def find(self, name: str) -> int:
        pk = self.by_name.get(name) or self.by_lower.get(name.lower())
        if pk is not None:
            return pk
        close = difflib.get_close_matches(name.lower(), list(self.by_lower), n=3, cutoff=0.6)
        hint = (
            _("; did you mean %s?") % ", ".join(repr(c) for c in close)
            if close
            else _(
                "; campaigns are created by tracking, the first time a visit carries their "
                "utm_campaign, or give the cost to the channel instead"
            )
        )
        raise CostValueError(_("no campaign named %r") % name + hint)


def set_cost(
    key: CostKey,
    amount: Decimal,
    currency: str,
    *,
    note: str = "",
    actor: Actor = None,
    audit: bool = True,
) -> tuple[Cost, str]:
    """Record what a campaign or channel cost over a period, replacing an earlier figure for
    the same target and days. Returns the cost and "created", "updated" or "unchanged"."""
    if (key.campaign_id is None) == (not key.channel):
        raise ValidationFailed.one("campaign", "a cost is for a campaign or a channel, not both")
    if key.end < key.start:
        raise ValidationFailed.one("period", f"the period ends ({key.end}) before it starts")
    if amount < 0:
        raise ValidationFailed.one("amount", f"{amount} is negative; a cost is 0 or more")
    rate = rate_for(currency)
    reporting = to_reporting(amount, rate)
    now = timezone.now()
    with transaction.atomic():
        existing = (
            Cost.objects.select_for_update()
            .filter(
                Q(campaign__isnull=True)
                if key.campaign_id is None
                else Q(campaign=key.campaign_id),
                channel=key.channel,
                period_start=key.start,
                period_end=key.end,
            )
            .first()
        )
        if existing is None:
            cost = Cost.objects.create(
                campaign_id=key.campaign_id,
                channel=key.channel,
                period_start=key.start,
                period_end=key.end,
                amount=amount,
                currency=currency,
                exchange_rate=rate,
                amount_reporting=reporting,
                note=note,
                created_by=actor if getattr(actor, "pk", None) else None,
            )
            outcome = "created"
        else:
            cost = existing
            before = (cost.amount, cost.currency, cost.note)
            if before == (amount, currency, note):
                return cost, "unchanged"
            cost.amount, cost.currency, cost.note = amount, currency, note
            cost.exchange_rate, cost.amount_reporting, cost.updated_at = rate, reporting, now
            cost.save()
            outcome = "updated"
        if audit:
            record_audit(
                "cost." + outcome,
                "cost",
                cost.pk,
                actor=actor,
                changes={
                    "campaign_id": key.campaign_id,
                    "channel": key.channel,
                    "period": f"{key.start}..{key.end}",
                    "amount": str(amount),
                    "currency": currency,
                },
            )
    return cost, outcome
