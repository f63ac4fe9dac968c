"""The condition language shared by segments, personas, scoring and routing: JSON validated
with messages naming the wrong part, compiled to a ``Q`` over contacts through the ORM, and
described as readable text. The grammar is documented in docs/segments.md.

``fields`` is the catalogue of what a condition can read, ``validate`` checks a condition tree,
``compile`` turns it into a ``Q`` and ``describe`` into a sentence; import from here."""

from embudo.segments.conditions.compile import compile_condition, compile_event_filter
from embudo.segments.conditions.describe import describe_condition
from embudo.segments.conditions.fields import (
    BOOLEAN,
    CHOICE,
    DATE,
    EVENT_COLUMNS,
    LIST_VALUE,
    NO_VALUE,
    NUMBER,
    OPERATORS,
    TEXT,
    TYPES,
    Builder,
    FieldSpec,
    JSONTypeOf,
    column_field,
    field_names,
    field_spec,
    json_property_field,
    register_field,
    register_field_prefix,
)
from embudo.segments.conditions.validate import (
    COUNT_OPERATORS,
    MAX_DEPTH,
    Condition,
    ConditionError,
    fields_read,
    validate_condition,
)

__all__ = [
    "BOOLEAN",
    "CHOICE",
    "COUNT_OPERATORS",
    "DATE",
    "EVENT_COLUMNS",
    "LIST_VALUE",
    "MAX_DEPTH",
    "NO_VALUE",
    "NUMBER",
    "OPERATORS",
    "TEXT",
    "TYPES",
    "Builder",
    "Condition",
    "ConditionError",
    "FieldSpec",
    "JSONTypeOf",
    "column_field",
    "compile_condition",
    "compile_event_filter",
    "describe_condition",
    "field_names",
    "field_spec",
    "fields_read",
    "json_property_field",
    "register_field",
    "register_field_prefix",
    "validate_condition",
]
