"""The condition language shared by segments, personas, scoring and routing: JSON validated
with messages naming the wrong part, compiled to a ``Q`` over contacts through the ORM, and
described as readable text. The grammar is documented in docs/segments.md."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Count,
    F,
    Func,
    Q,
    TextField,
    Value,
)
from django.db.models.lookups import Exact
from django.utils import timezone

from embudo.errors import EmbudoError

__all__ = [
    "BOOLEAN",
    "CHOICE",
    "DATE",
    "NUMBER",
    "TEXT",
    "Condition",
    "ConditionError",
    "FieldSpec",
    "column_field",
    "compile_condition",
    "compile_event_filter",
    "describe_condition",
    "fields_read",
    "json_property_field",
    "register_field",
    "register_field_prefix",
    "validate_condition",
]

TEXT = "text"
NUMBER = "number"
DATE = "date"
BOOLEAN = "boolean"
CHOICE = "choice"
TYPES = (TEXT, NUMBER, DATE, BOOLEAN, CHOICE)

# The operators each type accepts; a field may narrow its own list.
OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: (
        "eq",
        "neq",
        "in",
        "not_in",
        "contains",
        "not_contains",
        "starts_with",
        "ends_with",
        "is_set",
        "is_not_set",
    ),
    NUMBER: ("eq", "neq", "gt", "gte", "lt", "lte", "between", "in", "is_set", "is_not_set"),
    DATE: (
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "between",
        "in_last_days",
        "more_than_days_ago",
        "is_set",
        "is_not_set",
    ),
    BOOLEAN: ("eq", "is_set", "is_not_set"),
    CHOICE: ("eq", "neq", "in", "not_in", "is_set", "is_not_set"),
}
COUNT_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
NO_VALUE = ("is_set", "is_not_set")
LIST_VALUE = ("in", "not_in")
MAX_DEPTH = 12


class ConditionError(EmbudoError, ValueError):
    """A condition is malformed; the message starts with the path of the wrong part."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.problem = message
        super().__init__(f"{path}: {message}" if path else message)


Builder = Callable[[str, Any, dt.datetime], Q]


@dataclass(frozen=True)
class FieldSpec:
    """One field of the language.

    ``build(op, value, now)`` returns the ``Q`` over ``crm.Contact`` for a validated operator and
    value: numbers as int/float, dates as ``datetime.date`` (``between``: a pair; the relative
    operators: a whole number of days), lists for ``in``/``not_in``, ``None`` for
    ``is_set``/``is_not_set``. ``choices`` (for choice fields) may be a callable, read when a
    condition is validated.
    """

    type: str
    build: Builder
    label: str = ""
    choices: Sequence[str] | Callable[[], Sequence[str]] = ()
    ops: tuple[str, ...] = ()

    def operators(self) -> tuple[str, ...]:
        return self.ops or OPERATORS[self.type]

    def allowed_choices(self) -> Sequence[str]:
        return self.choices() if callable(self.choices) else self.choices


_FIELDS: dict[str, FieldSpec] = {}
# Prefix → resolver of the rest of the name (``property.`` → a custom property's spec, or None).
_PREFIXES: dict[str, Callable[[str], FieldSpec | None]] = {}


def register_field(name: str, spec: FieldSpec) -> None:
    """Add (or replace) a field of the language, e.g. ``score.default.fit``."""
    if spec.type not in TYPES:
        raise ValueError(f"unknown field type {spec.type!r}")
    _FIELDS[name] = spec


def register_field_prefix(prefix: str, resolve: Callable[[str], FieldSpec | None]) -> None:
    """Add a family of fields whose names are only known at run time: ``resolve`` gets the part
    after ``prefix`` and returns its spec, or ``None`` if there is no such field."""
    _PREFIXES[prefix] = resolve


def field_spec(name: str) -> FieldSpec | None:
    if name in _FIELDS:
        return _FIELDS[name]
    for prefix in sorted(_PREFIXES, key=len, reverse=True):
        if name.startswith(prefix) and len(name) > len(prefix):
            return _PREFIXES[prefix](name[len(prefix) :])
    return None


def field_names() -> list[str]:
    """The fixed field names (custom properties come on top, as ``property.<name>``)."""
    return sorted(_FIELDS)


# --- Building Q objects for columns and JSON properties -------------------------------------


def _day_start(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def _either(items: Sequence[Q]) -> Q:
    result = Q(pk__in=[])
    for item in items:
        result |= item
    return result


def column_field(
    path: str,
    type_: str,
    *,
    label: str = "",
    choices: Sequence[str] | Callable[[], Sequence[str]] = (),
    date_only: bool = False,
    case_sensitive: bool = False,
) -> FieldSpec:
    """A field over a model column reached from ``Contact`` by ``path`` (``company__employees``,
    ``score__fit``…). Dates are date-times unless ``date_only``; text compares ignore case."""
    return FieldSpec(
        type=type_,
        build=_column_builder(path, type_, date_only=date_only, case_sensitive=case_sensitive),
        label=label,
        choices=choices,
    )


def _column_builder(path: str, type_: str, *, date_only: bool, case_sensitive: bool) -> Builder:
    def is_set() -> Q:
        q = Q(**{f"{path}__isnull": False})
        if type_ in (TEXT, CHOICE):
            q &= ~Q(**{path: ""})
        return q

    def text_eq(value: Any) -> Q:
        if type_ == TEXT and not case_sensitive:
            return Q(**{f"{path}__iexact": value})
        return Q(**{path: value})

    def moment(day: dt.date, *, end: bool = False) -> Any:
        day = day + dt.timedelta(days=1) if end else day
        return day if date_only else _day_start(day)

    def build(op: str, value: Any, now: dt.datetime) -> Q:
        if op == "is_set":
            return is_set()
        if op == "is_not_set":
            return ~is_set()
        if type_ == DATE:
            return _date_q(op, value, now)
        if op == "eq":
            return text_eq(value)
        if op == "neq":
            return ~text_eq(value)
        if op in LIST_VALUE:
            if type_ == TEXT and not case_sensitive:
                q = _either([text_eq(v) for v in value])
            else:
                q = Q(**{f"{path}__in": list(value)})
            return q if op == "in" else ~q
        if op in ("gt", "gte", "lt", "lte"):
            return Q(**{f"{path}__{op}": value})
        if op == "between":
            return Q(**{f"{path}__gte": value[0], f"{path}__lte": value[1]})
        insensitive = "" if case_sensitive else "i"
        if op == "contains":
            return Q(**{f"{path}__{insensitive}contains": value})
        if op == "not_contains":
            return ~Q(**{f"{path}__{insensitive}contains": value})
        if op == "starts_with":
            return Q(**{f"{path}__{insensitive}startswith": value})
        if op == "ends_with":
            return Q(**{f"{path}__{insensitive}endswith": value})
        raise AssertionError(op)

    def _date_q(op: str, value: Any, now: dt.datetime) -> Q:
        if op == "in_last_days":
            since = now - dt.timedelta(days=value)
            return Q(**{f"{path}__gte": since.date() if date_only else since})
        if op == "more_than_days_ago":
            before = now - dt.timedelta(days=value)
            return Q(**{f"{path}__lt": before.date() if date_only else before})
        if op == "between":
            return Q(
                **{f"{path}__gte": moment(value[0]), f"{path}__lt": moment(value[1], end=True)}
            )
        if op == "eq":
            return Q(**{f"{path}__gte": moment(value), f"{path}__lt": moment(value, end=True)})
        if op == "gt":
            return Q(**{f"{path}__gte": moment(value, end=True)})
        if op == "gte":
            return Q(**{f"{path}__gte": moment(value)})
        if op == "lt":
            return Q(**{f"{path}__lt": moment(value)})
        if op == "lte":
            return Q(**{f"{path}__lt": moment(value, end=True)})
        raise AssertionError(op)

    return build


class JSONTypeOf(Func):
    """The JSON type of ``column[key]`` as ``number``, ``string``, ``boolean``, ``null``,
    ``object`` or ``array`` (NULL when the key is absent), the same on SQLite and PostgreSQL, so
    a numeric comparison never meets a string."""

    output_field = TextField()
    # PostgreSQL: jsonb_typeof(column -> key).
    template = "jsonb_typeof(%(expressions)s)"
    arg_joiner = " -> "

    def __init__(self, column: str, key: str) -> None:
        super().__init__(F(column), Value(key))

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        column, key = self.get_source_expressions()
        column_sql, column_params = compiler.compile(column)
        # JSON_TYPE names integer/real/text/true/false; fold them to the PostgreSQL names.
        sql = (
            f"(CASE JSON_TYPE({column_sql}, %s) WHEN 'integer' THEN 'number' "
            f"WHEN 'real' THEN 'number' WHEN 'text' THEN 'string' WHEN 'true' THEN 'boolean' "
            f"WHEN 'false' THEN 'boolean' ELSE JSON_TYPE({column_sql}, %s) END)"
        )
        path = '$."' + str(key.value).replace('"', "") + '"'
        return sql, (*column_params, path, *column_params, path)


_JSON_TYPE = {
    TEXT: "string",
    CHOICE: "string",
    DATE: "string",
    NUMBER: "number",
    BOOLEAN: "boolean",
}


def json_property_field(
    column: str, key: str, type_: str, *, label: str = "", choices: Sequence[str] = ()
) -> FieldSpec:
    """A field over one key of a JSON column reached from ``Contact`` (``properties``,
    ``company__properties``), compared as ``type_``: numbers numerically, dates as ISO text
    (how typed properties store them), text ignoring case. A value of another JSON type never
    matches a comparison, and a missing key counts as not set."""
    return FieldSpec(
        type=type_, build=_json_builder(column, key, type_), label=label, choices=choices
    )


def _json_builder(column: str, key: str, type_: str) -> Builder:
    ref = f"{column}__{key}"

    def typed() -> Q:
        # has_key first: it is plainly false for a missing key, which keeps the whole condition
        # two-valued (no SQL NULL), so "not" and "neq" include contacts without the property.
        return Q(**{f"{column}__has_key": key}) & Q(
            Exact(JSONTypeOf(column, key), Value(_JSON_TYPE[type_]))
        )

    def is_set() -> Q:
        q = Q(**{f"{column}__has_key": key}) & ~Q(Exact(JSONTypeOf(column, key), Value("null")))
        if type_ in (TEXT, CHOICE, DATE):
            q &= ~Q(Exact(JSONTypeOf(column, key), Value("string")) & Q(**{ref: ""}))
        return q

    def text_eq(value: Any) -> Q:
        return Q(**{f"{ref}__iexact": value}) if type_ == TEXT else Q(**{ref: value})

    def build(op: str, value: Any, now: dt.datetime) -> Q:
        if op == "is_set":
            return is_set()
        if op == "is_not_set":
            return ~is_set()
        if type_ == DATE:
            value, op = _date_as_text(op, value, now)
        if op == "eq":
            return typed() & text_eq(value)
        if op == "neq":
            return ~(typed() & text_eq(value))
        if op in LIST_VALUE:
            q = typed() & _either([text_eq(v) for v in value])
            return q if op == "in" else ~q
        if op in ("gt", "gte", "lt", "lte"):
            return typed() & Q(**{f"{ref}__{op}": value})
        if op == "between":
            return typed() & Q(**{f"{ref}__gte": value[0], f"{ref}__lte": value[1]})
        if op == "contains":
            return typed() & Q(**{f"{ref}__icontains": value})
        if op == "not_contains":
            return ~(typed() & Q(**{f"{ref}__icontains": value}))
        if op == "starts_with":
            return typed() & Q(**{f"{ref}__istartswith": value})
        if op == "ends_with":
            return typed() & Q(**{f"{ref}__iendswith": value})
        raise AssertionError(op)

    return build


def _date_as_text(op: str, value: Any, now: dt.datetime) -> tuple[Any, str]:
    """A date operator over ISO ``YYYY-MM-DD`` text as a plain comparison of strings."""
    today = timezone.localtime(now).date()
    if op == "in_last_days":
        return (today - dt.timedelta(days=value)).isoformat(), "gte"
    if op == "more_than_days_ago":
        return (today - dt.timedelta(days=value)).isoformat(), "lt"
    if op == "between":
        return (value[0].isoformat(), value[1].isoformat()), "between"
    return value.isoformat(), op


# --- The built-in fields ---------------------------------------------------------------------


def _stage_choices() -> list[str]:
    from embudo.crm.models import LifecycleStage

    return list(LifecycleStage.values)


def _status_choices() -> list[str]:
    from embudo.crm.models import LeadStatus

    return list(LeadStatus.values)


def _persona_choices() -> list[str]:
    from embudo.segments.models import Persona

    return list(Persona.objects.values_list("name", flat=True))


def _email_domain(op: str, value: Any, now: dt.datetime) -> Q:
    def at(domain: str) -> Q:
        return Q(email__iendswith="@" + domain.lstrip("@"))

    if op == "is_set":
        return Q(email__contains="@")
    if op == "is_not_set":
        return Q(email__isnull=True) | ~Q(email__contains="@")
    if op == "eq":
        return at(value)
    if op == "neq":
        return ~at(value) | Q(email__isnull=True)
    if op in LIST_VALUE:
        q = _either([at(v) for v in value])
        return q if op == "in" else ~q | Q(email__isnull=True)
    if op == "ends_with":  # ".edu" matches student@mail.uni.edu
        return Q(email__iendswith=value)
    raise AssertionError(op)


def _owner(op: str, value: Any, now: dt.datetime) -> Q:
    if op == "is_set":
        return Q(owner__isnull=False)
    if op == "is_not_set":
        return Q(owner__isnull=True)
    names = [value] if op in ("eq", "neq") else list(value)
    q = Q(owner__username__in=names)
    return q if op in ("eq", "in") else ~q | Q(owner__isnull=True)


def _register_builtins() -> None:
    for name in (
        "email",
        "first_name",
        "last_name",
        "phone",
        "job_title",
        "original_source",
        "original_medium",
        "original_campaign",
    ):
        register_field(name, column_field(name, TEXT))
    register_field(
        "lifecycle_stage",
        column_field("lifecycle_stage", CHOICE, label="stage", choices=_stage_choices),
    )
    register_field("lead_status", column_field("lead_status", CHOICE, choices=_status_choices))
    for name in ("created_at", "updated_at", "lifecycle_stage_changed_at"):
        register_field(name, column_field(name, DATE))
    register_field(
        "email_domain",
        FieldSpec(
            TEXT,
            _email_domain,
            ops=("eq", "neq", "in", "not_in", "ends_with", "is_set", "is_not_set"),
        ),
    )
    register_field(
        "owner", FieldSpec(TEXT, _owner, ops=("eq", "neq", "in", "not_in", "is_set", "is_not_set"))
    )
    for name in ("name", "domain", "industry", "country", "city"):
        register_field(f"company.{name}", column_field(f"company__{name}", TEXT))
    register_field("company.employees", column_field("company__employees", NUMBER))
    register_field("company.created_at", column_field("company__created_at", DATE))
    register_field(
        "persona",
        column_field(
            "persona_assignment__persona__name",
            CHOICE,
            choices=_persona_choices,
            case_sensitive=True,
        ),
    )
    register_field_prefix("property.", lambda key: _custom_property("contact", key))
    register_field_prefix("company.property.", lambda key: _custom_property("company", key))


def _custom_property(object_type: str, key: str) -> FieldSpec | None:
    from embudo.crm.models import PropertyDefinition

    definition = PropertyDefinition.objects.filter(object_type=object_type, name=key).first()
    if definition is None:
        return None
    column = "properties" if object_type == "contact" else "company__properties"
    return json_property_field(column, key, definition.type, choices=definition.choices or ())


_register_builtins()


# --- Event filters ---------------------------------------------------------------------------

EVENT_COLUMNS = (
    "url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "source",
    "visitor_id",
)


# Event property keys come from anyone's tracking code; the language takes plain names only.
_EVENT_KEY = re.compile(r"[A-Za-z0-9_\-]{1,64}")


def _event_field(name: str, value: Any) -> FieldSpec | None:
    """An event's column, or ``property.<key>`` of its JSON properties (typed by the value given:
    a number compares numerically, anything else as text)."""
    if name in EVENT_COLUMNS:
        return column_field(name, TEXT)
    if name.startswith("property.") and _EVENT_KEY.fullmatch(name[len("property.") :]):
        key = name[len("property.") :]
        sample = value[0] if isinstance(value, list) and value else value
        numeric = isinstance(sample, int | float) and not isinstance(sample, bool)
        type_ = NUMBER if numeric else BOOLEAN if isinstance(sample, bool) else TEXT
        return json_property_field("properties", key, type_)
    return None


# --- Validation ------------------------------------------------------------------------------


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


# --- Compiling -------------------------------------------------------------------------------


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


# --- Describing ------------------------------------------------------------------------------

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
