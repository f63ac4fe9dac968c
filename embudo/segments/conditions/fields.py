"""The field catalogue of the condition language: what a condition can read (contact columns,
custom properties, the company, the persona, event columns), each field's type, its operators
and the ``Q`` it builds for a validated operator and value."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import F, Func, Q, TextField, Value
from django.db.models.lookups import Exact
from django.utils import timezone

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
NO_VALUE = ("is_set", "is_not_set")
LIST_VALUE = ("in", "not_in")


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
