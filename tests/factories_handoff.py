"""Factories for the handoff tests: teams of reps, business hours, SLA policies, reasons and
MQLs, built through Embudo's own actions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from embudo.crm import actions as crm
from embudo.crm.models import Contact, TransitionCause
from embudo.deals import actions as deals
from embudo.handoff import actions
from embudo.handoff.models import (
    AssignmentRule,
    BusinessHours,
    FeedbackReason,
    SlaPolicy,
)
from tests.factories import make_contact, make_user


def make_team(name: str = "Iberia", reps: int = 3, **rep_kwargs: Any) -> tuple[Any, list[Any]]:
    team = deals.create_team(name)
    members = []
    for _ in range(reps):
        rep = make_user("sales", **rep_kwargs)
        deals.set_team(rep, team)
        members.append(rep)
    return team, members


def make_rule(team: Any, name: str | None = None, **kwargs: Any) -> AssignmentRule:
    rule = AssignmentRule(name=name or f"to {team.name}", team=team, **kwargs)
    actions.save_setting(rule)
    return rule


def make_hours(
    name: str = "Madrid office",
    time_zone: str = "Europe/Madrid",
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4),
    opens_at: dt.time = dt.time(9),
    closes_at: dt.time = dt.time(18),
) -> BusinessHours:
    hours = BusinessHours(
        name=name,
        time_zone=time_zone,
        weekdays=list(weekdays),
        opens_at=opens_at,
        closes_at=closes_at,
    )
    actions.save_setting(hours)
    return hours


def make_policy(
    hours: BusinessHours | None = None,
    *,
    name: str = "Standard",
    first_touch_minutes: int = 60,
    decision_minutes: int = 8 * 60,
    **kwargs: Any,
) -> SlaPolicy:
    policy = SlaPolicy(
        name=name,
        business_hours=hours or make_hours(),
        first_touch_minutes=first_touch_minutes,
        decision_minutes=decision_minutes,
        **kwargs,
    )
    actions.save_setting(policy)
    return policy


def make_reason(name: str, verdict: str = "rejected", **kwargs: Any) -> FeedbackReason:
    reason = FeedbackReason(name=name, verdict=verdict, **kwargs)
    actions.save_setting(reason)
    return reason


def make_mql(**kwargs: Any) -> Contact:
    """A contact that becomes an MQL now (which hands it off, once the transaction commits)."""
    contact = make_contact(lifecycle_stage="lead", **kwargs)
    crm.set_lifecycle_stage(contact, "mql", cause=TransitionCause.RULE)
    contact.refresh_from_db()
    return contact
