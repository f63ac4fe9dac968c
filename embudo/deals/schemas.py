"""The shapes the deals API reads and writes, and the functions that turn records into them.

Inputs forbid unknown fields (a typo is a 422 naming it); amounts go out as JSON numbers in the
deal's currency and, as ``amount_reporting``, in the reporting currency.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from django.utils import timezone
from ninja import Field, Schema
from pydantic import AfterValidator, ConfigDict

from embudo.deals.models import Deal, DealStageChange, Goal, Pipeline, Stage


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if timezone.is_naive(value) else value


AwareDatetime = Annotated[dt.datetime, AfterValidator(_aware)]


class Input(Schema):
    model_config = ConfigDict(extra="forbid")


# -- inputs -------------------------------------------------------------------------------------


class DealIn(Input):
    """A deal to create, or (PATCH) the fields to change."""

    name: str | None = None
    amount: Decimal | None = Field(None, description="In `currency`; 0 or more.")
    currency: str | None = Field(
        None, description="ISO 4217 code; default the reporting currency. Others need a rate."
    )
    pipeline_id: int | None = Field(None, description="Default: the default pipeline.")
    stage_id: int | None = Field(None, description="Default: the pipeline's first open stage.")
    expected_close_date: dt.date | None = None
    owner_id: int | None = None
    company_id: int | None = None
    contact_ids: list[int] | None = Field(
        None, description="Contacts on the deal; they become opportunities (lifecycle cause api)."
    )
    product_line_id: int | None = None
    external_id: str | None = None
    forecast_category: str | None = Field(
        None, description="pipeline, best_case or commit (an open deal's override)."
    )
    lost_reason_id: int | None = Field(None, description="Only when created at a lost stage.")
    created_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None


class MoveIn(Input):
    stage_id: int
    lost_reason_id: int | None = Field(None, description="Required for a lost stage.")
    note: str = ""


class LoseIn(Input):
    lost_reason_id: int
    note: str = ""


class StageIn(Input):
    name: str
    probability: Decimal = Field(description="Win probability, 0 to 1.")
    kind: str = Field("open", description="open, won or lost")
    forecast_category: str | None = None


class PipelineIn(Input):
    name: str
    stages: list[StageIn]
    is_default: bool = False


class StagePatch(Input):
    name: str | None = None
    probability: Decimal | None = None
    forecast_category: str | None = None


class NameIn(Input):
    name: str


class RateIn(Input):
    rate: Decimal = Field(description="Units of the reporting currency per unit of this one.")


class GoalIn(Input):
    period: str = Field(description="YYYY-MM, YYYY-Qn or YYYY")
    amount: Decimal = Field(description="Revenue target in the reporting currency.")
    team_id: int | None = None
    owner_id: int | None = None


class DealQuery(Schema):
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)
    pipeline: int | None = None
    stage: int | None = None
    status: str | None = Field(None, description="open, won or lost")
    owner: str | None = Field(None, description="A user id, `me` or `none`.")
    company: int | None = None
    contact: int | None = None
    product_line: int | None = None
    closing_from: dt.date | None = None
    closing_to: dt.date | None = None
    search: str | None = None


class PlanQuery(Schema):
    revenue: Decimal | None = Field(None, description="Default: the goal for the period.")
    deal_value: Decimal | None = Field(None, description="Default: measured.")
    period: str | None = Field(None, description="YYYY-MM, YYYY-Qn or YYYY; default this month.")
    rate: list[str] = Field(default_factory=list, description="mql=0.4 or lead:customer=0.05")
    window_days: int = 180
    min_sample: int = 30
    min_deals: int = 10
    team: int | None = None
    owner: int | None = None


# -- outputs ------------------------------------------------------------------------------------


class Ref(Schema):
    id: int
    name: str


class StageOut(Schema):
    id: int
    name: str
    position: int
    probability: float
    kind: str
    forecast_category: str


class PipelineOut(Schema):
    id: int
    name: str
    is_default: bool
    stages: list[StageOut]


class DealOut(Schema):
    id: int
    name: str
    external_id: str | None
    pipeline: Ref
    stage: StageOut
    status: str
    forecast_category: str
    amount: float
    currency: str
    exchange_rate: float
    amount_reporting: float
    expected_close_date: dt.date
    owner: Ref | None
    company: Ref | None
    contact_ids: list[int]
    product_line: Ref | None
    lost_reason: Ref | None
    lost_note: str
    created_at: dt.datetime
    engaged_at: dt.datetime
    closed_at: dt.datetime | None
    stage_changed_at: dt.datetime
    updated_at: dt.datetime


class DealPage(Schema):
    items: list[DealOut]
    count: int
    next: str | None


class StageChangeOut(Schema):
    from_stage: Ref | None
    to_stage: Ref
    changed_at: dt.datetime
    actor: Ref | None


class History(Schema):
    items: list[StageChangeOut]


class NamedList(Schema):
    items: list[Ref]


class RateOut(Schema):
    currency: str
    rate: float
    reporting_currency: str
    updated_at: dt.datetime


class RateList(Schema):
    reporting_currency: str
    items: list[RateOut]


class GoalOut(Schema):
    id: int
    period_kind: str
    period_start: dt.date
    amount: float
    team: Ref | None
    owner: Ref | None


class GoalList(Schema):
    items: list[GoalOut]


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class Error(Schema):
    error: ErrorBody


# -- records to plain data ----------------------------------------------------------------------


def ref(obj: Any) -> dict[str, Any] | None:
    if obj is None:
        return None
    name = getattr(obj, "name", None)
    if name is None:  # a user
        name = obj.get_full_name() or obj.get_username()
    return {"id": obj.pk, "name": name}


def stage_data(stage: Stage) -> dict[str, Any]:
    return {
        "id": stage.pk,
        "name": stage.name,
        "position": stage.position,
        "probability": float(stage.probability),
        "kind": stage.kind,
        "forecast_category": stage.forecast_category,
    }


def pipeline_data(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "id": pipeline.pk,
        "name": pipeline.name,
        "is_default": pipeline.is_default,
        "stages": [stage_data(s) for s in pipeline.stages.all()],
    }


def deal_data(deal: Deal) -> dict[str, Any]:
    return {
        "id": deal.pk,
        "name": deal.name,
        "external_id": deal.external_id,
        "pipeline": ref(deal.pipeline),
        "stage": stage_data(deal.stage),
        "status": deal.status,
        "forecast_category": deal.forecast_category,
        "amount": float(deal.amount),
        "currency": deal.currency,
        "exchange_rate": float(deal.exchange_rate),
        "amount_reporting": float(deal.amount_reporting),
        "expected_close_date": deal.expected_close_date,
        "owner": ref(deal.owner),
        "company": ref(deal.company),
        "contact_ids": sorted(c.pk for c in deal.contacts.all()),
        "product_line": ref(deal.product_line),
        "lost_reason": ref(deal.lost_reason),
        "lost_note": deal.lost_note,
        "created_at": deal.created_at,
        "engaged_at": deal.engaged_at,
        "closed_at": deal.closed_at,
        "stage_changed_at": deal.stage_changed_at,
        "updated_at": deal.updated_at,
    }


def change_data(change: DealStageChange) -> dict[str, Any]:
    return {
        "from_stage": ref(change.from_stage),
        "to_stage": ref(change.to_stage),
        "changed_at": change.changed_at,
        "actor": ref(change.actor),
    }


def goal_data(goal: Goal) -> dict[str, Any]:
    return {
        "id": goal.pk,
        "period_kind": goal.period_kind,
        "period_start": goal.period_start,
        "amount": float(goal.amount),
        "team": ref(goal.team),
        "owner": ref(goal.owner),
    }
