"""Small factories with keyword defaults, for building test data through Embudo's own actions:
users, companies and contacts; campaigns; scoring models and their rules; sales teams and the
handoff settings. What contacts do over time is declared with :mod:`tests.journeys`."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from embudo.accounts import actions as account_actions
from embudo.crm import actions as crm
from embudo.crm.models import Company, Contact, TransitionCause
from embudo.deals import actions as deals
from embudo.handoff import actions as handoff
from embudo.handoff.models import AssignmentRule, BusinessHours, FeedbackReason, SlaPolicy
from embudo.scoring import actions as scoring
from embudo.scoring.models import ScoringModel
from embudo.tracking.models import Campaign

_seq = itertools.count(1)

PASSWORD = "correct-horse-battery-staple"


def make_user(role: str = "admin", username: str | None = None, **kwargs: Any) -> Any:
    n = next(_seq)
    return account_actions.create_user(
        username or f"{role}{n}",
        role=role,
        password=PASSWORD,
        email=f"{role}{n}@example.com",
        **kwargs,
    )


def make_company(**kwargs: Any) -> Company:
    n = next(_seq)
    data = {"name": f"Company {n}", "domain": f"company{n}.example", **kwargs}
    return crm.create_company(data)


def make_contact(
    *, at: dt.datetime | None = None, cause: str = TransitionCause.MANUAL, **kwargs: Any
) -> Contact:
    n = next(_seq)
    data: dict[str, Any] = {
        "email": f"person{n}@example.com",
        "first_name": "Person",
        "last_name": f"Number{n}",
        **kwargs,
    }
    return crm.create_contact(data, cause=cause, at=at)


def make_campaign(name: str, source: str = "google", medium: str = "cpc") -> Campaign:
    # Capture creates a campaign the first time its utm_campaign is seen; tests name it first.
    return Campaign.objects.get_or_create(
        name=name, defaults={"first_source": source, "first_medium": medium}
    )[0]


# -- scoring -------------------------------------------------------------------------------------

PRICING = {"type": "page_view", "where": [{"field": "url", "op": "contains", "value": "/pricing"}]}


def make_scoring_model(rules: Sequence[Mapping[str, Any]] = (), **kwargs: Any) -> ScoringModel:
    """A scoring model (no caps, bands 70/45/20, half-life 10 days unless given) with rules."""
    n = next(_seq)
    data: dict[str, Any] = {
        "key": f"model-{n}",
        "name": f"Model {n}",
        "half_life_days": 10,
        "fit_cap": None,
        "engagement_cap": None,
        "total_cap": None,
        **kwargs,
    }
    model = scoring.create_model(data)
    for rule in rules:
        scoring.add_rule(model, rule)
    model.refresh_from_db()
    return model


def fit_rule(field: str, op: str, value: Any, points: float, **kwargs: Any) -> dict[str, Any]:
    return {
        "kind": "fit",
        "name": kwargs.pop("name", f"{field} {op} {value}"),
        "condition": {"field": field, "op": op, "value": value},
        "points": points,
        **kwargs,
    }


def event_rule(event: dict[str, Any] | str, points: float, **kwargs: Any) -> dict[str, Any]:
    spec = {"type": event} if isinstance(event, str) else event
    return {
        "kind": "engagement",
        "name": kwargs.pop("name", f"did {spec.get('type')}"),
        "condition": spec,
        "points": points,
        **kwargs,
    }


# -- sales teams and handoff ---------------------------------------------------------------------


def make_team(name: str = "Iberia", reps: int = 3, **rep_kwargs: Any) -> tuple[Any, list[Any]]:
    team = deals.create_team(name)
    members = []
    for _ in range(reps):
        rep = make_user("sales", **rep_kwargs)
        deals.set_team(rep, team)
        members.append(rep)
    return team, members


def make_assignment_rule(team: Any, name: str | None = None, **kwargs: Any) -> AssignmentRule:
    rule = AssignmentRule(name=name or f"to {team.name}", team=team, **kwargs)
    handoff.save_setting(rule)
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
    handoff.save_setting(hours)
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
    handoff.save_setting(policy)
    return policy


def make_reason(name: str, verdict: str = "rejected", **kwargs: Any) -> FeedbackReason:
    reason = FeedbackReason(name=name, verdict=verdict, **kwargs)
    handoff.save_setting(reason)
    return reason
