"""Compiling a condition to a ``Q`` over contacts (behaviour as one grouped pass over the
matching events), and the event part of a behaviour condition to a ``Q`` over events."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from embudo.segments.conditions.fields import DATE, _day_start, _either, _event_field, field_spec
from embudo.segments.conditions.validate import (
    Condition,
    _load,
    _validate_event_spec,
    validate_condition,
)


def compile_condition(
    data: Any, now: dt.datetime | None = None, contact_ids: Sequence[int] | None = None
) -> Q:
    """The ``Q`` over ``crm.Contact`` for a condition (validated here unless it is a
    :class:`Condition` already).

    ``contact_ids``: only these contacts are asked about (the ``Q`` includes ``pk__in``), and
    behaviour reads only their events — pass it when checking a few contacts (one that just
    changed, a lead to route), so "did X in the last D days" costs their events, not everyone's.
    """
    condition = data if isinstance(data, Condition) else validate_condition(data)
    scope = None if contact_ids is None else list(contact_ids)
    q = _compile(condition.data, now or timezone.now(), scope) if condition.data else Q()
    return q if scope is None else Q(pk__in=scope) & q


def _compile(node: Mapping[str, Any], now: dt.datetime, scope: list[int] | None) -> Q:
    if "all" in node:
        q = Q()
        for item in node["all"]:
            q &= _compile(item, now, scope)
        return q
    if "any" in node:
        return _either([_compile(item, now, scope) for item in node["any"]])
    if "not" in node:
        return ~_compile(node["not"], now, scope)
    if "event" in node:
        return _behaviour(node, now, scope)
    spec = field_spec(node["field"])
    assert spec is not None, node["field"]
    value = node.get("value")
    if (
        spec.type == DATE
        and value is not None
        and node["op"] not in ("in_last_days", "more_than_days_ago")
    ):
        value = (
            [dt.date.fromisoformat(v) for v in value]
            if isinstance(value, list)
            else dt.date.fromisoformat(value)
        )
    return spec.build(node["op"], value, now)


def _behaviour(node: Mapping[str, Any], now: dt.datetime, scope: list[int] | None) -> Q:
    """Contacts whose matching events number ``count``: one grouped pass over the events that
    match (served by the (type, occurred_at) index; within a ``scope`` of contacts, by the
    (contact, occurred_at) one), joined to contacts by id. Counts that zero satisfies ("did
    not …") are the complement of those that it does not."""
    from embudo.tracking.models import Event

    spec = dict(node["event"])
    if node.get("within_days"):
        spec["within_days"] = node["within_days"]
    events = Event.objects.filter(compile_event_filter(spec, now), contact__isnull=False)
    if scope is not None:
        events = events.filter(contact_id__in=scope)
    op, n = node["count"]["op"], node["count"]["value"]
    if op == "gt":
        op, n = "gte", n + 1
    elif op == "lt":
        op, n = "lte", n - 1
    if op == "lte":
        if n < 0:
            return Q(pk__in=[])
        op, n, negate = "gte", n + 1, True
    elif op == "eq" and n == 0:
        op, n, negate = "gte", 1, True
    elif op == "neq" and n == 0:
        op, n, negate = "gte", 1, False
    elif op == "neq":
        op, negate = "eq", True
    else:
        negate = False
    if op == "gte" and n <= 0:
        q = Q()
    elif op == "gte" and n == 1:
        q = Q(pk__in=events.values("contact_id"))
    else:
        having = {f"n__{'gte' if op == 'gte' else 'exact'}": n}
        ids = (
            events.values("contact_id").annotate(n=Count("*")).filter(**having).values("contact_id")
        )
        q = Q(pk__in=ids)
    return ~q if negate else q


def compile_event_filter(spec: Any, now: dt.datetime | None = None) -> Q:
    """The ``Q`` over ``tracking.Event`` for the event part of a behaviour condition:
    ``{"type": "page_view" | [...], "where": [...], "within_days": N, "after": D, "before": D}``."""
    now = now or timezone.now()
    if isinstance(spec, str):
        spec = _load(spec)
    spec = _validate_event_spec(spec, "event")
    q = Q()
    type_ = spec.get("type")
    if isinstance(type_, list):
        q &= Q(type__in=type_)
    elif type_:
        q &= Q(type=type_)
    if spec.get("within_days"):
        q &= Q(occurred_at__gte=now - dt.timedelta(days=spec["within_days"]))
    if spec.get("after"):
        q &= Q(occurred_at__gte=_day_start(dt.date.fromisoformat(spec["after"])))
    if spec.get("before"):
        q &= Q(occurred_at__lt=_day_start(dt.date.fromisoformat(spec["before"])))
    for item in spec.get("where", []):
        event_spec = _event_field(item["field"], item.get("value"))
        assert event_spec is not None
        q &= event_spec.build(item["op"], item.get("value"), now)
    return q
