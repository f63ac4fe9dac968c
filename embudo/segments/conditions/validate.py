"""Checking a condition tree: the normalized :class:`Condition` to store, or a
:class:`ConditionError` whose message starts with the path of the wrong part; and the fields a
stored condition reads."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from embudo.errors import EmbudoError
from embudo.segments.conditions.fields import (
    BOOLEAN,
    CHOICE,
    DATE,
    LIST_VALUE,
    NO_VALUE,
    NUMBER,
    OPERATORS,
    FieldSpec,
    _event_field,
    field_spec,
)

COUNT_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
MAX_DEPTH = 12


class ConditionError(EmbudoError, ValueError):
    """A condition is malformed; the message starts with the path of the wrong part."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.problem = message
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class Condition:
    """A validated condition: ``data`` is its normalized JSON (what is stored)."""

    data: dict[str, Any]
    fields: frozenset[str] = field(default_factory=frozenset)

    @property
    def uses_events(self) -> bool:
        return "event" in self.fields

    @property
    def uses_persona(self) -> bool:
        return "persona" in self.fields

    def __bool__(self) -> bool:
        return bool(self.data)


def _load(data: Any) -> Any:
    if isinstance(data, Condition):
        return data.data
    if isinstance(data, str | bytes):
        try:
            return json.loads(data)
        except json.JSONDecodeError as exc:
            raise ConditionError(
                "", f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
            ) from None
    return data


def validate_condition(data: Any, *, allow: Callable[[str], bool] | None = None) -> Condition:
    """The condition ``data`` (a dict, or JSON text) checked and normalized; raises
    :class:`ConditionError` naming the wrong part. ``{}`` (or ``{"all": []}``) matches everyone.
    ``allow(field)`` may refuse fields in a context (personas refuse ``persona``)."""
    raw = _load(data)
    if raw == {} or raw is None:
        return Condition({}, frozenset())
    used: set[str] = set()
    normalized = _validate(raw, "", 0, used, allow)
    return Condition(normalized, frozenset(used))


def fields_read(data: Any) -> frozenset[str]:
    """The names of the fields a stored (validated) condition reads, ``event`` for behaviour:
    what a change must touch to change its answer. Reads no database."""
    names: set[str] = set()
    pending = [_load(data)]
    while pending:
        node = pending.pop()
        if not isinstance(node, Mapping):
            continue
        if "event" in node:
            names.add("event")
        elif "field" in node:
            names.add(str(node["field"]))
        pending += node.get("all", []) + node.get("any", [])
        if "not" in node:
            pending.append(node["not"])
    return frozenset(names)


def _join(path: str, part: str) -> str:
    if part.startswith("["):
        return f"{path}{part}"
    return f"{path}.{part}" if path else part


def _validate(
    node: Any, path: str, depth: int, used: set[str], allow: Callable[[str], bool] | None
) -> dict[str, Any]:
    if depth > MAX_DEPTH:
        raise ConditionError(path, f"nested more than {MAX_DEPTH} levels deep")
    if not isinstance(node, Mapping):
        raise ConditionError(path, f"expected an object, got {_kind(node)}")
    for group in ("all", "any"):
        if group in node:
            _only(node, {group}, path)
            items = node[group]
            if not isinstance(items, list):
                raise ConditionError(_join(path, group), f"expected a list, got {_kind(items)}")
            return {
                group: [
                    _validate(item, _join(_join(path, group), f"[{i}]"), depth + 1, used, allow)
                    for i, item in enumerate(items)
                ]
            }
    if "not" in node:
        _only(node, {"not"}, path)
        return {"not": _validate(node["not"], _join(path, "not"), depth + 1, used, allow)}
    if "event" in node:
        used.add("event")
        return _validate_behaviour(node, path)
    if "field" in node:
        return _validate_field(node, path, used, allow)
    keys = ", ".join(sorted(str(k) for k in node)) or "nothing"
    raise ConditionError(path, f"expected one of all, any, not, field or event, got {keys}")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), "a number" if isinstance(value, int | float) else type(value).__name__
    )


def _only(node: Mapping[str, Any], allowed: set[str], path: str) -> None:
    extra = sorted(str(k) for k in node if k not in allowed)
    if extra:
        raise ConditionError(_join(path, extra[0]), "unexpected key here")


def _validate_field(
    node: Mapping[str, Any], path: str, used: set[str], allow: Callable[[str], bool] | None
) -> dict[str, Any]:
    _only(node, {"field", "op", "value"}, path)
    name = node["field"]
    if not isinstance(name, str):
        raise ConditionError(_join(path, "field"), f"expected text, got {_kind(name)}")
    spec = field_spec(name)
    if spec is None:
        raise ConditionError(_join(path, "field"), f"unknown field {name!r}")
    if allow is not None and not allow(name):
        raise ConditionError(_join(path, "field"), f"{name!r} cannot be used here")
    used.add(name)
    op, value = _validate_op_value(spec, node, path)
    out: dict[str, Any] = {"field": name, "op": op}
    if op not in NO_VALUE:
        out["value"] = value
    return out


def _validate_op_value(spec: FieldSpec, node: Mapping[str, Any], path: str) -> tuple[str, Any]:
    op = node.get("op")
    if not isinstance(op, str):
        raise ConditionError(
            _join(path, "op"),
            "missing operator" if op is None else f"expected text, got {_kind(op)}",
        )
    if op not in spec.operators():
        if op not in {o for ops in OPERATORS.values() for o in ops}:
            raise ConditionError(_join(path, "op"), f"unknown operator {op!r}")
        raise ConditionError(_join(path, "op"), f"{op!r} is not valid for a {spec.type} field")
    value_path = _join(path, "value")
    if op in NO_VALUE:
        return op, None
    if "value" not in node:
        raise ConditionError(value_path, f"{op!r} needs a value")
    value = node["value"]
    if op in LIST_VALUE:
        if not isinstance(value, list) or not value:
            raise ConditionError(value_path, "expected a non-empty list")
        return op, [_scalar(spec, v, _join(value_path, f"[{i}]")) for i, v in enumerate(value)]
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise ConditionError(value_path, "expected a list of two values [from, to]")
        low, high = (_scalar(spec, v, _join(value_path, f"[{i}]")) for i, v in enumerate(value))
        if high < low:
            raise ConditionError(value_path, "the first value is greater than the second")
        return op, [low, high]
    if op in ("in_last_days", "more_than_days_ago"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConditionError(value_path, "expected a whole number of days (0 or more)")
        return op, value
    return op, _scalar(spec, value, value_path)


def _scalar(spec: FieldSpec, value: Any, path: str) -> Any:
    type_ = spec.type
    if type_ == NUMBER:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConditionError(path, f"expected a number, got {_kind(value)}")
        return value
    if type_ == BOOLEAN:
        if not isinstance(value, bool):
            raise ConditionError(path, f"expected true or false, got {_kind(value)}")
        return value
    if type_ == DATE:
        try:
            if isinstance(value, str) and len(value) >= 10:
                return dt.date.fromisoformat(value[:10]).isoformat()
        except ValueError:
            pass
        raise ConditionError(path, f"expected a date as YYYY-MM-DD, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ConditionError(path, f"expected text, got {_kind(value)}")
    text = str(value)
    if type_ == CHOICE:
        allowed = list(spec.allowed_choices())
        if allowed and text not in allowed:
            raise ConditionError(path, f"{text!r} is not one of: {', '.join(allowed)}")
    return text


def _validate_behaviour(node: Mapping[str, Any], path: str) -> dict[str, Any]:
    _only(node, {"event", "count", "within_days"}, path)
    out: dict[str, Any] = {"event": _validate_event_spec(node["event"], _join(path, "event"))}
    count_path = _join(path, "count")
    count = node.get("count", {"op": "gte", "value": 1})
    if not isinstance(count, Mapping):
        raise ConditionError(count_path, f"expected an object, got {_kind(count)}")
    _only(count, {"op", "value"}, count_path)
    op = count.get("op")
    if op not in COUNT_OPERATORS:
        raise ConditionError(
            _join(count_path, "op"), f"expected one of {', '.join(COUNT_OPERATORS)}, got {op!r}"
        )
    number = count.get("value")
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise ConditionError(_join(count_path, "value"), "expected a whole number (0 or more)")
    out["count"] = {"op": op, "value": number}
    if node.get("within_days") is not None:
        days = node["within_days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConditionError(
                _join(path, "within_days"), "expected a whole number of days (1 or more)"
            )
        out["within_days"] = days
    return out


def _validate_event_spec(spec: Any, path: str) -> dict[str, Any]:
    if not isinstance(spec, Mapping):
        raise ConditionError(path, f"expected an object, got {_kind(spec)}")
    _only(spec, {"type", "where", "within_days", "after", "before"}, path)
    type_ = spec.get("type")
    types = type_ if isinstance(type_, list) else [type_]
    if type_ is not None and (not types or not all(isinstance(t, str) and t for t in types)):
        raise ConditionError(_join(path, "type"), "expected an event type or a list of them")
    out: dict[str, Any] = {}
    if type_ is not None:
        out["type"] = type_
    where = spec.get("where", [])
    where_path = _join(path, "where")
    if not isinstance(where, list):
        raise ConditionError(where_path, f"expected a list, got {_kind(where)}")
    checked = []
    for i, item in enumerate(where):
        item_path = _join(where_path, f"[{i}]")
        if not isinstance(item, Mapping):
            raise ConditionError(item_path, f"expected an object, got {_kind(item)}")
        _only(item, {"field", "op", "value"}, item_path)
        name = item.get("field")
        field_spec_ = _event_field(name, item.get("value")) if isinstance(name, str) else None
        if field_spec_ is None:
            raise ConditionError(_join(item_path, "field"), f"unknown event field {name!r}")
        op, value = _validate_op_value(field_spec_, item, item_path)
        entry: dict[str, Any] = {"field": name, "op": op}
        if op not in NO_VALUE:
            entry["value"] = value
        checked.append(entry)
    if checked:
        out["where"] = checked
    if spec.get("within_days") is not None:
        days = spec["within_days"]
        if isinstance(days, bool) or not isinstance(days, int) or days < 1:
            raise ConditionError(
                _join(path, "within_days"), "expected a whole number of days (1 or more)"
            )
        out["within_days"] = days
    for bound in ("after", "before"):
        if spec.get(bound) is not None:
            raw = spec[bound]
            try:
                out[bound] = dt.date.fromisoformat(str(raw)[:10]).isoformat()
            except ValueError:
                raise ConditionError(
                    _join(path, bound), f"expected a date as YYYY-MM-DD, got {raw!r}"
                ) from None
    return out
