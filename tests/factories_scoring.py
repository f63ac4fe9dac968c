"""Scoring test data: a model with rules, and events for a contact at given times."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

from embudo.crm.models import Contact
from embudo.scoring import actions
from embudo.scoring.models import ScoringModel
from embudo.tracking.actions import record_events

_seq = itertools.count(1)

PRICING = {"type": "page_view", "where": [{"field": "url", "op": "contains", "value": "/pricing"}]}


def make_model(rules: list[dict[str, Any]] = (), **kwargs: Any) -> ScoringModel:  # type: ignore[assignment]
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
    model = actions.create_model(data)
    for rule in rules:
        actions.add_rule(model, rule)
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


def did(contact: Contact, event_type: str, at: dt.datetime, times: int = 1, **fields: Any) -> None:
    """Record ``times`` events of ``event_type`` by ``contact`` at ``at`` (through capture)."""
    result = record_events(
        [
            {"type": event_type, "contact_id": contact.pk, "occurred_at": at.isoformat(), **fields}
            for _ in range(times)
        ],
        source="api",
        now=at,
    )
    assert result.accepted == times, result.errors
