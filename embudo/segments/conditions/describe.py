"""The readable sentence for a condition, as the segment, persona and scoring pages show it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from embudo.segments.conditions.fields import (
    DATE,
    LIST_VALUE,
    NO_VALUE,
    TEXT,
    _event_field,
    field_spec,
)
from embudo.segments.conditions.validate import Condition, validate_condition

_OP_WORDS = {
    "eq": "is",
    "neq": "is not",
    "in": "in",
    "not_in": "not in",
    "contains": "contains",
    "not_contains": "does not contain",
    "starts_with": "starts with",
    "ends_with": "ends with",
    "is_set": "is set",
    "is_not_set": "is not set",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "between": "between",
}
_DATE_WORDS = {
    "eq": "on",
    "gt": "after",
    "gte": "on or after",
    "lt": "before",
    "lte": "on or before",
}


def describe_condition(data: Any) -> str:
    """A readable line for a condition, e.g. ``stage in (lead, mql) and did page_view where url
    contains "/pricing" at least 3 times in the last 14 days``."""
    condition = data if isinstance(data, Condition) else validate_condition(data)
    if not condition.data:
        return "everyone"
    return _describe(condition.data, top=True)


def _describe(node: Mapping[str, Any], top: bool = False) -> str:
    if "all" in node or "any" in node:
        group = "all" if "all" in node else "any"
        parts = [_describe(item) for item in node[group]]
        if not parts:
            return "everyone" if group == "all" else "no one"
        text = f" {'and' if group == 'all' else 'or'} ".join(parts)
        return text if top or len(parts) == 1 else f"({text})"
    if "not" in node:
        return (
            f"not {_describe(node['not'])}"
            if _is_group(node["not"])
            else f"not ({_describe(node['not'])})"
        )
    if "event" in node:
        return _describe_behaviour(node)
    spec = field_spec(node["field"])
    label = spec.label if spec and spec.label else node["field"]
    return _describe_test(label, spec.type if spec else TEXT, node["op"], node.get("value"))


def _is_group(node: Mapping[str, Any]) -> bool:
    return ("all" in node or "any" in node) and len(node.get("all", node.get("any", []))) > 1


def _value_text(type_: str, value: Any) -> str:
    if type_ == TEXT:
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _describe_test(label: str, type_: str, op: str, value: Any) -> str:
    if op in NO_VALUE:
        return f"{label} {_OP_WORDS[op]}"
    if op == "in_last_days":
        return f"{label} in the last {value} days"
    if op == "more_than_days_ago":
        return f"{label} more than {value} days ago"
    if op in LIST_VALUE:
        return f"{label} {_OP_WORDS[op]} ({', '.join(_value_text(type_, v) for v in value)})"
    if op == "between":
        return f"{label} between {_value_text(type_, value[0])} and {_value_text(type_, value[1])}"
    words = _DATE_WORDS[op] if type_ == DATE else _OP_WORDS[op]
    return f"{label} {words} {_value_text(type_, value)}"


_COUNT_WORDS = {
    "gte": "at least",
    "gt": "more than",
    "lte": "at most",
    "lt": "fewer than",
    "eq": "exactly",
    "neq": "not exactly",
}


def _describe_behaviour(node: Mapping[str, Any]) -> str:
    spec = node["event"]
    type_ = spec.get("type")
    what = " or ".join(type_) if isinstance(type_, list) else (type_ or "any event")
    op, n = node["count"]["op"], node["count"]["value"]
    never = (op == "eq" and n == 0) or (op == "lt" and n == 1) or (op == "lte" and n == 0)
    text = f"did not do {what}" if never else f"did {what}"
    where = [
        _describe_test(
            item["field"],
            _event_field(item["field"], item.get("value")).type  # type: ignore[union-attr]
            if item["op"] not in LIST_VALUE or item.get("value")
            else TEXT,
            item["op"],
            item.get("value"),
        )
        for item in spec.get("where", [])
    ]
    if where:
        text += " where " + " and ".join(where)
    if not never and not (op == "gte" and n == 1):
        text += f" {_COUNT_WORDS[op]} {n} {'time' if n == 1 else 'times'}"
    days = node.get("within_days") or spec.get("within_days")
    if days:
        text += f" in the last {days} days"
    if spec.get("after"):
        text += f" since {spec['after']}"
    if spec.get("before"):
        text += f" before {spec['before']}"
    return text
