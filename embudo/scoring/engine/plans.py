"""Compiling a scoring model's rules into a :class:`Plan`: its numbers, its fit and engagement
rules, the fields they read (``Plan.reads``) and the conditions as ``Q``; the enabled models'
plans kept while their rows stay the same."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from embudo import caches
from embudo.scoring.arithmetic import Params
from embudo.scoring.models import RuleKind, ScoreRule, ScoringModel


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    kind: str
    condition: Any
    points: float
    repeatable: bool
    max_points: float | None

    @property
    def counted_events(self) -> float | None:
        """How many of the most recent matching events count (None: all of them); the last
        one may count in part, so a cap of 10 on 3-point events allows 3⅓ events."""
        if not self.repeatable:
            return 1.0
        if self.max_points is None or not self.points:
            return None
        return max(0.0, self.max_points / abs(self.points))


@dataclass(frozen=True)
class Plan:
    """One model, its numbers and its rules, ready to compute."""

    model_id: int
    key: str
    version: int
    params: Params
    fit_rules: tuple[Rule, ...]
    engagement_rules: tuple[Rule, ...]

    @property
    def rules(self) -> tuple[Rule, ...]:
        return self.fit_rules + self.engagement_rules

    @cached_property
    def reads(self) -> frozenset[str]:
        """The fields of the condition language its rules read (``event``: behaviour)."""
        from embudo.segments.conditions import fields_read

        names = set().union(*(fields_read(rule.condition) for rule in self.fit_rules))
        if self.engagement_rules:
            names.add("event")
        return frozenset(names)

    @cached_property
    def fingerprint(self) -> str:
        """Everything the plan's queries depend on, as text (a cache key)."""
        return json.dumps(
            [self.model_id, self.version, repr(self.params)]
            + [
                [r.id, r.kind, r.condition, r.points, r.repeatable, r.max_points]
                for r in self.rules
            ],
            sort_keys=True,
            default=str,
        )


def plan_for(model: ScoringModel, rules: Sequence[ScoreRule] | None = None) -> Plan:
    if rules is None:
        rules = list(ScoreRule.objects.filter(model=model).order_by("kind", "position", "pk"))
    compact = [
        Rule(r.pk, r.name, r.kind, r.condition, r.points, r.repeatable, r.max_points) for r in rules
    ]
    return Plan(
        model_id=model.pk,
        key=model.key,
        version=model.version,
        params=Params.of(model),
        fit_rules=tuple(r for r in compact if r.kind == RuleKind.FIT),
        engagement_rules=tuple(r for r in compact if r.kind == RuleKind.ENGAGEMENT),
    )


def enabled_plans() -> list[Plan]:
    """Every enabled model with its rules, read fresh each time: rules change rarely, but a
    stale rule must never score anyone.

    Each new event asks for them, so the rows are read as stored, by two queries whose SQL is
    built once, and the plans made from them are kept per distinct content: the same rows
    give the same plans without the ORM building two querysets, twenty rule objects and the
    plans' cache keys again (3 ms of CPU a call measured on the 2-core machine, against
    0.3 ms). Any change to a model or a rule changes the rows, hence the plans."""
    key = _plan_rows()
    plans = _PLANS.get(key)
    if plans is None:
        plans = _read_plans()
        if _plan_rows() == key:  # unchanged while being read: safe to keep
            if len(_PLANS) > 64:
                _PLANS.clear()
            _PLANS[key] = plans
    return plans


_PLANS: dict[Any, list[Plan]] = {}
caches.register("scoring.plans", _PLANS.clear)


def _read_plans() -> list[Plan]:
    models = list(ScoringModel.objects.filter(enabled=True).order_by("pk"))
    rules: dict[int, list[ScoreRule]] = {m.pk: [] for m in models}
    for rule in ScoreRule.objects.filter(model__enabled=True).order_by("kind", "position", "pk"):
        rules.setdefault(rule.model_id, []).append(rule)
    return [plan_for(m, rules[m.pk]) for m in models]


# The columns a plan is made of (see plan_for): a change to any of them makes other plans.
PLAN_COLUMNS = {
    "models": (
        "id", "key", "enabled", "version", "epoch", "half_life_days", "fit_cap",
        "engagement_cap", "total_cap", "band_a", "band_b", "band_c", "mql_fit",
        "mql_engagement", "mql_total",
    ),
    "rules": (
        "id", "model_id", "kind", "name", "condition", "points", "repeatable", "max_points",
        "position",
    ),
}  # fmt: skip


def _plan_rows() -> Any:
    """The enabled models' and their rules' rows, as stored (a cache key)."""

    def models() -> QuerySet[Any]:
        return (
            ScoringModel.objects.filter(enabled=True)
            .order_by("pk")
            .values_list(*PLAN_COLUMNS["models"])
        )

    def rules() -> QuerySet[Any]:
        return (
            ScoreRule.objects.filter(model__enabled=True)
            .order_by("pk")
            .values_list(*PLAN_COLUMNS["rules"])
        )

    rows = []
    with connection.cursor() as cursor:
        for name, build in (("models", models), ("rules", rules)):
            cursor.execute(*_built_once(name, build))
            rows.append(tuple(cursor.fetchall()))
    key = (connection.alias, *rows)
    try:
        hash(key)
    except TypeError:  # a driver that decodes JSON into dicts
        return repr(key)
    return key


_BUILT: dict[tuple[str, str], tuple[str, tuple[Any, ...]]] = {}
caches.register("scoring.plan_rows_sql", _BUILT.clear)


def _built_once(name: str, build: Callable[[], QuerySet[Any]]) -> tuple[str, tuple[Any, ...]]:
    """The SQL of a query that depends on nothing but the schema, built by the ORM once."""
    key = (connection.alias, name)
    if key not in _BUILT:
        sql, params = build().query.sql_with_params()
        _BUILT[key] = (sql, tuple(params))
    return _BUILT[key]


def fit_q(rule: Rule, now: dt.datetime) -> Q:
    from embudo.segments.conditions import compile_condition

    return compile_condition(rule.condition, now)


def event_q(rule: Rule, now: dt.datetime) -> Q:
    from embudo.segments.conditions import compile_event_filter

    return compile_event_filter(rule.condition, now)
