"""The reverse-funnel plan: from a revenue goal back to the deals, opportunities, SQLs, MQLs,
leads and visitors a period needs, with the pace of both teams against it.

Rates are conversion shares from one funnel stage to the next, measured by cohort from the
lifecycle history (of the contacts that entered stage X in a trailing window, the share that
later reached the next stage or any stage beyond it) or given by the user, per step or end to
end. Arithmetic is exact (fractions) and every count is rounded up: you cannot win 9.3 deals.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from django.db import connection, transaction
from django.db.models import Case, Count, DateTimeField, F, Func, Max, Min, Q, Sum, When
from django.utils import timezone

from embudo.crm.models import LifecycleStage, LifecycleTransition
from embudo.deals.actions import reporting_currency
from embudo.deals.models import Deal, DealStatus, Goal
from embudo.deals.periods import Period
from embudo.errors import EmbudoError

# The planned funnel, from the top. "visitor" has no lifecycle stage: its rate is given only.
PLAN_STAGES: tuple[str, ...] = ("visitor", "lead", "mql", "sql", "opportunity", "customer")
MEASURED_STAGES: tuple[str, ...] = PLAN_STAGES[1:]
# Reaching a stage counts when the contact reached it or any stage beyond it (skipped stages).
_AT_OR_BEYOND: dict[str, tuple[str, ...]] = {
    stage: (*MEASURED_STAGES[i:], LifecycleStage.EVANGELIST)
    for i, stage in enumerate(MEASURED_STAGES)
}

# Two quarters: recent enough to reflect today's funnel, long enough for cohorts to mature.
DEFAULT_WINDOW_DAYS = 180
DEFAULT_MIN_SAMPLE = 30
DEFAULT_MIN_DEALS = 10
_RATE = re.compile(r"^\s*([a-z_]+)\s*(?::\s*([a-z_]+)\s*)?=\s*([0-9.,]+)\s*(%?)\s*$")
CENT = Decimal("0.01")


class PlanError(EmbudoError, ValueError):
    """A plan that cannot be made from what was given; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _next(stage: str) -> str:
    return PLAN_STAGES[PLAN_STAGES.index(stage) + 1]


@dataclass(frozen=True)
class GivenRate:
    """A conversion rate the user states: one step (``mql=0.4``: mql → sql) or a span
    (``lead:customer=0.05``)."""

    from_stage: str
    to_stage: str
    rate: Fraction

    @property
    def is_step(self) -> bool:
        return self.to_stage == _next(self.from_stage)

    @property
    def text(self) -> str:
        return f"{self.from_stage}→{self.to_stage}"


def parse_rate(text: str) -> GivenRate:
    """Read ``STAGE=R`` (STAGE to the next stage) or ``FROM:TO=R``; R in (0, 1] or a percent."""
    match = _RATE.match(text.lower())
    stages = ", ".join(PLAN_STAGES[:-1])
    if not match:
        raise PlanError(
            "rate",
            f"{text!r} is not a rate; write STAGE=R (e.g. mql=0.4 for mql→sql) or FROM:TO=R "
            f"(e.g. lead:customer=0.05), with STAGE one of {stages}",
        )
    from_stage, to_stage, number, percent = match.groups()
    if from_stage == PLAN_STAGES[-1]:
        raise PlanError(
            "rate", f"{text!r}: customer is the last stage, so no rate starts there; use {stages}"
        )
    if from_stage not in PLAN_STAGES:
        raise PlanError("rate", f"{text!r}: {from_stage!r} is not a funnel stage; use {stages}")
    if to_stage is None:
        to_stage = _next(from_stage)
    elif to_stage not in PLAN_STAGES:
        raise PlanError(
            "rate", f"{text!r}: {to_stage!r} is not a funnel stage; use {', '.join(PLAN_STAGES)}"
        )
    elif PLAN_STAGES.index(to_stage) <= PLAN_STAGES.index(from_stage):
        raise PlanError(
            "rate", f"{text!r}: {to_stage} does not come after {from_stage} in the funnel"
        )
    try:
        value = Fraction(Decimal(number.replace(",", ".")))
    except (InvalidOperation, ValueError):
        raise PlanError("rate", f"{text!r}: {number!r} is not a number") from None
    if percent:
        value /= 100
    if not 0 < value <= 1:
        raise PlanError(
            "rate",
            f"{text!r}: a conversion rate must be greater than 0 and at most 1 "
            f"(0.05 or 5% means 5 in 100)",
        )
    return GivenRate(from_stage, to_stage, value)


@dataclass(frozen=True)
class PlanRequest:
    period: Period
    revenue: Decimal | None = None  # None: the goal set for the period
    deal_value: Decimal | None = None  # None: measured over the trailing window
    rates: tuple[GivenRate, ...] = ()
    window_days: int = DEFAULT_WINDOW_DAYS
    min_sample: int = DEFAULT_MIN_SAMPLE  # contacts per cohort
    min_deals: int = DEFAULT_MIN_DEALS  # won deals behind a measured average deal value
    team_id: int | None = None
    owner_id: int | None = None
    as_of: dt.datetime | None = None  # "now", for pacing and the trailing window


@dataclass(frozen=True)
class MeasuredRate:
    from_stage: str
    to_stage: str
    entered: int  # contacts that entered from_stage in the window (the cohort)
    converted: int  # of them, those that later reached to_stage or beyond
    window_start: dt.datetime | None  # None: all history
    window_end: dt.datetime

    @property
    def rate(self) -> Fraction | None:
        return Fraction(self.converted, self.entered) if self.entered and self.converted else None


@dataclass(frozen=True)
class PlanStep:
    stage: str
    needed: int | None
    # How this stage's number was derived from the stage below it (None for customers).
    rate: float | None = None
    rate_to: str = ""
    source: str = ""  # given, given end-to-end, measured, measured (all history)
    sample: int | None = None
    converted: int | None = None
    actual: int | None = None  # entries so far in the period
    expected_by_now: int | None = None
    gap: int | None = None  # how many short of the pace
    remaining: int | None = None  # still to come to meet the need
    status: str = ""  # on track, behind, not started, met, missed
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class PlanResult:
    request: PlanRequest
    currency: str
    revenue: Decimal
    revenue_source: str  # given, or the goal it came from
    deal_value: Decimal
    deal_value_source: str
    deal_value_sample: int | None
    steps: list[PlanStep]  # from customer up to visitor
    elapsed: float  # share of the period gone by
    revenue_actual: Decimal
    revenue_expected_by_now: Decimal
    revenue_status: str
    mqls_per_month: int | None
    measured: list[MeasuredRate] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def step(self, stage: str) -> PlanStep:
        return next(s for s in self.steps if s.stage == stage)

    @property
    def deals_needed(self) -> int:
        needed = self.step("customer").needed
        assert needed is not None
        return needed

    @property
    def mqls_needed(self) -> int | None:
        return self.step("mql").needed

    def to_dict(self) -> dict[str, Any]:
        return {
            "period": self.request.period.label,
            "period_start": self.request.period.start.isoformat(),
            "period_end": self.request.period.end.isoformat(),
            "currency": self.currency,
            "revenue": float(self.revenue),
            "revenue_source": self.revenue_source,
            "deal_value": float(self.deal_value),
            "deal_value_source": self.deal_value_source,
            "deal_value_sample": self.deal_value_sample,
            "deals_needed": self.deals_needed,
            "mqls_needed": self.mqls_needed,
            "mqls_per_month": self.mqls_per_month,
            "elapsed": round(self.elapsed, 4),
            "revenue_actual": float(self.revenue_actual),
            "revenue_expected_by_now": float(self.revenue_expected_by_now),
            "revenue_status": self.revenue_status,
            "steps": [step.to_dict() for step in self.steps],
            "measured_rates": [
                {
                    "from": m.from_stage,
                    "to": m.to_stage,
                    "entered": m.entered,
                    "converted": m.converted,
                    "rate": float(m.rate) if m.rate is not None else None,
                    "window_start": m.window_start.isoformat() if m.window_start else None,
                    "window_end": m.window_end.isoformat(),
                }
                for m in self.measured
            ],
            "notes": self.notes,
        }


# -- measuring ----------------------------------------------------------------------------------


class Unindexed(Func):
    """A column's value, as a term SQLite will not answer from an index (``+column``).

    Measuring every step reads most of the window's rows; SQLite would otherwise walk the
    (stage, time) index and fetch each row from the table in random order, several times
    slower than reading the table through. PostgreSQL chooses well by itself.
    """

    template = "%(expressions)s"

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, template="+%(expressions)s", **extra)


def measure_rates(
    window_start: dt.datetime | None,
    as_of: dt.datetime,
    steps: tuple[str, ...] = MEASURED_STAGES[:-1],
) -> dict[str, MeasuredRate]:
    """Stage-to-next conversion by cohort for the given steps, in one pass over the history.

    Per contact: the first time it entered each stage inside the window, and the last time
    (up to ``as_of``) it reached the next stage or one beyond it; the contact converted when
    the second is not before the first. Then one count per step over those per-contact rows.
    """
    stages = sorted({stage for s in steps for stage in (s, *_AT_OR_BEYOND[_next(s)])})
    history = LifecycleTransition.objects.all()
    if len(steps) == len(MEASURED_STAGES) - 1:
        # Every funnel stage is wanted: read the window's rows straight from the table.
        history = history.alias(at=Unindexed("changed_at", output_field=DateTimeField()))
        history = history.filter(at__lt=as_of)
        if window_start is not None:
            history = history.filter(at__gte=window_start)
    else:
        history = history.filter(to_stage__in=stages, changed_at__lt=as_of)
        if window_start is not None:
            history = history.filter(changed_at__gte=window_start)
    per_contact = (
        history.values("contact_id")
        .annotate(
            **{f"entered_{s}": Min("changed_at", filter=Q(to_stage=s)) for s in steps},
            **{
                f"reached_{s}": Max("changed_at", filter=Q(to_stage__in=_AT_OR_BEYOND[_next(s)]))
                for s in steps
            },
        )
        .order_by()
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                # Room to hash the window's contacts in memory: with the default 4 MB
                # PostgreSQL sorts them on disk instead, about half as fast.
                cursor.execute("SET LOCAL work_mem = '64MB'")
        totals = per_contact.aggregate(
            **{f"n_{s}": Count(f"entered_{s}") for s in steps},
            **{
                f"c_{s}": Count(Case(When(**{f"reached_{s}__gte": F(f"entered_{s}")}, then=1)))
                for s in steps
            },
        )
    return {
        s: MeasuredRate(
            s, _next(s), totals[f"n_{s}"] or 0, totals[f"c_{s}"] or 0, window_start, as_of
        )
        for s in steps
    }


@dataclass(frozen=True)
class DealValue:
    value: Decimal
    source: str
    sample: int | None
    note: str = ""


def _deals_scope(request: PlanRequest) -> Any:
    deals = Deal.objects.all()
    if request.owner_id is not None:
        deals = deals.filter(owner_id=request.owner_id)
    if request.team_id is not None:
        deals = deals.filter(owner__sales_team_membership__team_id=request.team_id)
    return deals


def average_deal_value(request: PlanRequest, as_of: dt.datetime) -> DealValue:
    """The mean won amount over the trailing window; all history if the window holds too few."""
    won = _deals_scope(request).filter(status=DealStatus.WON, closed_at__lt=as_of)
    start = as_of - dt.timedelta(days=request.window_days)
    recent = won.filter(closed_at__gte=start).aggregate(
        n=Count("id"), total=Sum("amount_reporting")
    )
    if recent["n"] >= request.min_deals:
        return DealValue(
            _mean(recent["total"], recent["n"]),
            f"measured: mean won deal over the last {request.window_days} days",
            recent["n"],
        )
    ever = won.aggregate(n=Count("id"), total=Sum("amount_reporting"))
    if ever["n"] >= request.min_deals:
        return DealValue(
            _mean(ever["total"], ever["n"]),
            "measured: mean won deal over all history",
            ever["n"],
            f"only {recent['n']} deals won in the last {request.window_days} days (minimum "
            f"{request.min_deals}): the average deal value uses all history",
        )
    raise PlanError(
        "deal_value",
        f"only {ever['n']} won deal(s) to measure the average deal value from (minimum "
        f"{request.min_deals}); give the deal value (--deal-value)",
    )


def _mean(total: Any, n: int) -> Decimal:
    exact = Decimal(total or 0).quantize(CENT, rounding=ROUND_HALF_UP) / n
    return exact.quantize(CENT, rounding=ROUND_HALF_UP)


# -- planning -----------------------------------------------------------------------------------


def _goal_revenue(request: PlanRequest) -> tuple[Decimal, str]:
    goal = Goal.objects.filter(
        period_kind=request.period.kind,
        period_start=request.period.start,
        team_id=request.team_id,
        owner_id=request.owner_id,
    ).first()
    if goal is None:
        raise PlanError(
            "revenue",
            f"no goal is set for {request.period.label}; give the revenue target (--revenue) "
            "or set a goal for the period",
        )
    return goal.amount, f"goal for {request.period.label}"


def make_plan(request: PlanRequest) -> PlanResult:
    """Work back from the revenue target to each stage's number, and measure the pace."""
    as_of = request.as_of or timezone.now()
    notes: list[str] = []
    if request.window_days < 1:
        raise PlanError("window_days", "the trailing window must be at least one day")
    if request.min_sample < 1:
        raise PlanError("min_sample", "the minimum sample must be at least 1")
    if request.revenue is None:
        revenue, revenue_source = _goal_revenue(request)
    else:
        revenue, revenue_source = request.revenue, "given"
    if revenue <= 0:
        raise PlanError("revenue", f"the revenue target must be greater than zero (got {revenue})")
    if request.deal_value is not None:
        if request.deal_value <= 0:
            raise PlanError(
                "deal_value", f"the deal value must be greater than zero (got {request.deal_value})"
            )
        deal_value = DealValue(request.deal_value, "given", None)
    else:
        deal_value = average_deal_value(request, as_of)
        if deal_value.note:
            notes.append(deal_value.note)
    _check_rates(request.rates)

    needed: dict[str, int | None] = {
        "customer": math.ceil(Fraction(revenue) / Fraction(deal_value.value))
    }
    steps: dict[str, PlanStep] = {"customer": PlanStep("customer", needed["customer"])}
    given_steps = {r.from_stage: r for r in request.rates if r.is_step}
    given_spans = [r for r in request.rates if not r.is_step]
    window_start = as_of - dt.timedelta(days=request.window_days)
    inside_span: dict[str, GivenRate] = {}
    for span in given_spans:
        start, end = PLAN_STAGES.index(span.from_stage), PLAN_STAGES.index(span.to_stage)
        for stage in PLAN_STAGES[start + 1 : end]:
            inside_span.setdefault(stage, span)
    # Measure only the steps no given rate covers, in one pass; then, in a second pass over all
    # history, only those whose window holds too few contacts.
    wanted = tuple(
        stage
        for stage in MEASURED_STAGES[:-1]
        if stage not in given_steps
        and stage not in inside_span
        and not any(span.from_stage == stage for span in given_spans)
    )
    measured = measure_rates(window_start, as_of, wanted) if wanted else {}
    short = tuple(
        s for s in wanted if measured[s].entered < request.min_sample or measured[s].rate is None
    )
    broader = measure_rates(None, as_of, short) if short else {}

    for stage in reversed(PLAN_STAGES[:-1]):
        below = _next(stage)
        starting = next((r for r in given_spans if r.from_stage == stage), None)
        target = starting.to_stage if starting is not None else below
        if needed.get(target) is None and stage not in inside_span:
            steps[stage] = PlanStep(
                stage, None, note=f"cannot be planned: {target} has no number to work back from"
            )
        elif starting is not None:
            steps[stage] = _step(stage, needed[target], starting.rate, target, "given end-to-end")
        elif stage in given_steps:
            rate = given_steps[stage]
            steps[stage] = _step(stage, needed[below], rate.rate, below, "given")
        elif stage in inside_span:
            steps[stage] = PlanStep(
                stage,
                None,
                note=f"inside the given {inside_span[stage].text} rate, which plans "
                f"{inside_span[stage].from_stage} directly",
            )
        elif needed.get(below) is None:
            steps[stage] = PlanStep(
                stage, None, note=f"cannot be planned: {below} has no number to work back from"
            )
        elif stage == "visitor":
            steps[stage] = PlanStep(
                stage,
                None,
                note="visitors are not measured yet: give visitor=R (visitor→lead) to plan them",
            )
        else:
            m = measured[stage]
            if m.entered >= request.min_sample and m.rate is not None:
                steps[stage] = _step(
                    stage,
                    needed[below],
                    m.rate,
                    below,
                    f"measured over the last {request.window_days} days",
                    m,
                )
            else:
                b = broader[stage]
                thin = (
                    f"{stage}→{below}: only {m.entered} contact(s) entered {stage} in the last "
                    f"{request.window_days} days (minimum {request.min_sample})"
                )
                if b.entered >= request.min_sample and b.rate is not None:
                    notes.append(f"{thin}; measured over all history instead (n={b.entered})")
                    steps[stage] = _step(
                        stage, needed[below], b.rate, below, "measured over all history", b
                    )
                else:
                    why = (
                        f"no contact that entered {stage} went on to {below}"
                        if b.entered >= request.min_sample
                        else f"{thin}, {b.entered} in all history"
                    )
                    notes.append(f"{why}: give --rate {stage}=R")
                    steps[stage] = PlanStep(
                        stage,
                        None,
                        sample=b.entered,
                        converted=b.converted,
                        note=f"too little data ({why}); give {stage}=R",
                    )
        needed[stage] = steps[stage].needed

    ordered = [steps[s] for s in reversed(PLAN_STAGES)]
    elapsed = request.period.elapsed_fraction(as_of)
    actuals = _actuals(request, as_of)
    paced = [_pace(step, actuals.get(step.stage), elapsed) for step in ordered]
    revenue_actual = actuals["revenue"]
    revenue_expected = (Decimal(revenue) * Decimal(str(elapsed))).quantize(CENT)
    revenue_status = _status(Fraction(revenue_actual), Fraction(revenue), elapsed)
    if request.team_id is not None or request.owner_id is not None:
        notes.append(
            "revenue, deal value and deals won are the team's or rep's; the funnel rates and "
            "the contacts entering each stage are the whole company's"
        )
    mqls = needed.get("mql")
    per_month = math.ceil(Fraction(mqls, request.period.months)) if mqls is not None else None
    if mqls is None:
        notes.append("the MQL commitment cannot be stated until the mql step has a rate")
    all_measured = [*measured.values(), *broader.values()]
    return PlanResult(
        request=request,
        currency=reporting_currency(),
        revenue=Decimal(revenue).quantize(CENT),
        revenue_source=revenue_source,
        deal_value=Decimal(deal_value.value).quantize(CENT),
        deal_value_source=deal_value.source,
        deal_value_sample=deal_value.sample,
        steps=paced,
        elapsed=elapsed,
        revenue_actual=revenue_actual,
        revenue_expected_by_now=revenue_expected,
        revenue_status=revenue_status,
        mqls_per_month=per_month,
        measured=all_measured,
        notes=notes,
    )


def _check_rates(rates: tuple[GivenRate, ...]) -> None:
    """Given rates may not cover the same step twice (a span and one of its steps, say):
    the plan would have two answers for one stage."""
    covered: dict[str, GivenRate] = {}
    for rate in rates:
        start, end = PLAN_STAGES.index(rate.from_stage), PLAN_STAGES.index(rate.to_stage)
        for stage in PLAN_STAGES[start:end]:
            other = covered.get(stage)
            if other is not None:
                what = "given twice" if other.text == rate.text else f"and {other.text} overlap"
                raise PlanError(
                    "rate",
                    f"the rates {rate.text} {what} at {stage}→{_next(stage)}; give each step "
                    "of the funnel one rate at most",
                )
            covered[stage] = rate


def _step(
    stage: str,
    below_needed: int | None,
    rate: Fraction,
    to: str,
    source: str,
    measured: MeasuredRate | None = None,
) -> PlanStep:
    assert below_needed is not None
    return PlanStep(
        stage,
        math.ceil(Fraction(below_needed) / rate),
        rate=round(float(rate), 6),
        rate_to=to,
        source=source,
        sample=measured.entered if measured else None,
        converted=measured.converted if measured else None,
    )


def _actuals(request: PlanRequest, as_of: dt.datetime) -> dict[str, Any]:
    """What happened in the period up to now: contacts entering each stage, deals won, revenue."""
    start = request.period.start_datetime()
    end = min(request.period.end_datetime(), as_of)
    out: dict[str, Any] = {"revenue": Decimal(0)}
    if end <= start:
        return out
    entries = LifecycleTransition.objects.filter(
        to_stage__in=MEASURED_STAGES[:-1], changed_at__gte=start, changed_at__lt=end
    ).aggregate(
        **{
            s: Count("contact_id", distinct=True, filter=Q(to_stage=s))
            for s in MEASURED_STAGES[:-1]
        }
    )
    out.update(entries)
    won = (
        _deals_scope(request)
        .filter(status=DealStatus.WON, closed_at__gte=start, closed_at__lt=end)
        .aggregate(n=Count("id"), total=Sum("amount_reporting"))
    )
    out["customer"] = won["n"]
    out["revenue"] = Decimal(won["total"] or 0).quantize(CENT, rounding=ROUND_HALF_UP)
    return out


def _status(actual: Fraction, needed: Fraction, elapsed: float) -> str:
    if elapsed <= 0:
        return "not started"
    if actual >= needed:
        return "met"
    if elapsed >= 1:
        return "missed"
    return "on track" if actual >= needed * Fraction(elapsed) else "behind"


def _pace(step: PlanStep, actual: int | None, elapsed: float) -> PlanStep:
    if step.stage == "visitor":
        return step
    actual = actual or 0
    if step.needed is None:
        return PlanStep(**{**step.__dict__, "actual": actual})
    expected = math.ceil(Fraction(step.needed) * Fraction(elapsed))
    return PlanStep(
        **{
            **step.__dict__,
            "actual": actual,
            "expected_by_now": expected,
            "gap": max(0, expected - actual),
            "remaining": max(0, step.needed - actual),
            "status": _status(Fraction(actual), Fraction(step.needed), elapsed),
        }
    )
