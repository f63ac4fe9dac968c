"""A clock past its deadline: breach it, tell the owner's manager and, where the policy says so,
hand the lead to another rep — which is why this sits above :mod:`.handoff`, itself above
:mod:`.clocks`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from embudo.accounts.actions import record_audit
from embudo.handoff.actions.clocks import CLOCKS, FIRST_TOUCH, _settle
from embudo.handoff.actions.handoff import _notify, _say, hand_off, managers_of
from embudo.handoff.models import Handoff, SlaState


def breach_due(handoff_ids: Sequence[int], clock: str, *, now: dt.datetime | None = None) -> int:
    """Breach the clocks among these handoffs that are still running past their deadline:
    tell the owner's manager and, where the policy says so, hand the lead to another rep.
    Safe to run twice, early or late: a clock already stopped, or not yet due, is left alone."""
    if clock not in CLOCKS:
        raise ValueError(f"unknown SLA clock {clock!r}")
    now = now or timezone.now()
    with transaction.atomic():
        handoffs = list(
            Handoff.objects.select_for_update(of=("self",))
            .select_related("policy", "contact")
            .filter(
                pk__in=list(handoff_ids),
                open=True,
                **{f"{clock}_state": SlaState.PENDING, f"{clock}_due__lte": now},
            )
            .order_by("pk")
        )
        if not handoffs:
            return 0
        reassign: dict[int, int] = {}
        for handoff in handoffs:
            setattr(handoff, f"{clock}_state", SlaState.BREACHED)
            handoff.breached_at = handoff.breached_at or getattr(handoff, f"{clock}_due")
            _settle(handoff)
            managers = managers_of(handoff.owner_id, handoff.team_id)
            handoff.escalated_to_id = managers[0] if managers else None
            what = (
                _say(gettext_noop("first touch"))
                if clock == FIRST_TOUCH
                else _say(gettext_noop("accept/reject"))
            )
            owner = (
                handoff.owner.get_username() if handoff.owner else _say(gettext_noop("the queue"))
            )
            _notify(
                managers,
                "breach",
                _say(gettext_noop("SLA breached (%(what)s) on %(lead)s held by %(owner)s"))
                % {"what": what, "lead": handoff.contact, "owner": owner},
                contact_id=handoff.contact_id,
                handoff_id=handoff.pk,
                now=now,
            )
            if handoff.policy and handoff.policy.reassign_on_breach and handoff.owner_id:
                handoff.open = False
                handoff.closed_at = now
                reassign[handoff.contact_id] = handoff.owner_id
        Handoff.objects.bulk_update(
            handoffs,
            [f"{clock}_state", "state", "breached_at", "escalated_to", "open", "closed_at"],
        )
        record_audit(
            "handoff.breach",
            "handoff",
            actor=None,
            changes={"clock": clock, "handoffs": [h.pk for h in handoffs]},
        )
        if reassign:
            hand_off(list(reassign), at=now, exclude_owner=reassign)
    return len(handoffs)
