"""Scores as fields of the condition language: ``score.<model key>.fit|engagement|total|band``,
so segments, personas, routing and reports can ask "engagement ≥ 20" of any model.

Each field is right for the moment the condition is compiled: engagement decays, so
"engagement ≥ X" becomes the constant comparison ``engagement_norm ≥ X · 2^((now - t0) / h)``
(see :mod:`embudo.scoring.models`). A contact without a score row scores 0 (band D).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from django.db.models import Case, CharField, Expression, F, FloatField, Q, Value, When
from django.db.models.functions import Least

from embudo.scoring.models import ContactScore, ScoringModel
from embudo.segments.conditions import (
    CHOICE,
    NUMBER,
    ConditionError,
    FieldSpec,
    register_field_prefix,
)

if TYPE_CHECKING:
    from embudo.scoring.arithmetic import Params

MEASURES = ("fit", "engagement", "total", "band")
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
BAND_OPS = ("eq", "neq", "in", "not_in")


def register() -> None:
    register_field_prefix("score.", _resolve)


def _resolve(rest: str) -> FieldSpec | None:
    key, _, measure = rest.rpartition(".")
    if measure not in MEASURES or not key:
        return None
    if not ScoringModel.objects.filter(key=key).exists():
        return None
    label = f"score {key} {measure}"
    if measure == "band":
        return FieldSpec(CHOICE, _builder(key, measure), label, ("A", "B", "C", "D"), BAND_OPS)
    return FieldSpec(NUMBER, _builder(key, measure), label, (), NUMBER_OPS)


def _builder(key: str, measure: str) -> Any:
    def build(op: str, value: Any, now: dt.datetime) -> Q:
        # Imported here: the arithmetic needs numpy, which starting `embudo` must not pay for.
        from embudo.scoring.arithmetic import Params

        model = ScoringModel.objects.filter(key=key).first()
        if model is None:
            raise ConditionError("field", f"no scoring model with the key {key!r}")
        params = Params.of(model)
        rows = ContactScore.objects.filter(model=model)
        if (
            measure == "engagement"
            and op in ("gte", "gt")
            and (params.engagement_cap is None or value <= params.engagement_cap)
        ):
            # The index-friendly form: a constant threshold on the stored normalised value.
            matching = rows.filter(**{f"engagement_norm__{op}": value * params.growth(now)})
        else:
            matching = rows.annotate(v=_expression(measure, params, now)).filter(_test(op, value))
        q = Q(pk__in=matching.values("contact_id"))
        if _zero_matches(measure, op, value, params):
            q |= ~Q(pk__in=rows.values("contact_id"))
        return q

    return build


def _expression(measure: str, params: Params, now: dt.datetime) -> Expression:
    fit: Any = F("fit")
    engagement: Expression = F("engagement_norm") * Value(1.0 / params.growth(now))
    if params.engagement_cap is not None:
        engagement = Least(engagement, Value(params.engagement_cap), output_field=FloatField())
    if measure == "fit":
        return fit
    if measure == "engagement":
        return engagement
    total: Expression = fit + engagement
    if params.total_cap is not None:
        total = Least(total, Value(params.total_cap), output_field=FloatField())
    if measure == "total":
        return total
    return Case(
        When(Q(_ge(total, params.band_a)), then=Value("A")),
        When(Q(_ge(total, params.band_b)), then=Value("B")),
        When(Q(_ge(total, params.band_c)), then=Value("C")),
        default=Value("D"),
        output_field=CharField(),
    )


def _ge(expression: Expression, threshold: float) -> Any:
    from django.db.models.lookups import GreaterThanOrEqual

    return GreaterThanOrEqual(expression, Value(threshold))


def _test(op: str, value: Any) -> Q:
    if op == "eq":
        return Q(v=value)
    if op == "neq":
        return ~Q(v=value)
    if op in ("in", "not_in"):
        return Q(v__in=value) if op == "in" else ~Q(v__in=value)
    if op == "between":
        return Q(v__gte=value[0], v__lte=value[1])
    return Q(**{f"v__{op}": value})


def _zero_matches(measure: str, op: str, value: Any, params: Params) -> bool:
    """Whether a contact with no score row (everything 0, band of 0) meets the test."""
    from embudo.scoring.arithmetic import band_of

    zero: Any = str(band_of(0.0, params)) if measure == "band" else 0.0
    if op == "eq":
        return bool(zero == value)
    if op == "neq":
        return bool(zero != value)
    if op == "in":
        return zero in value
    if op == "not_in":
        return zero not in value
    if op == "between":
        return bool(value[0] <= zero <= value[1])
    return {
        "gt": zero > value,
        "gte": zero >= value,
        "lt": zero < value,
        "lte": zero <= value,
    }[op]
