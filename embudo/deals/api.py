"""API endpoints for deals, pipelines, currencies, goals and the plan.

Each endpoint checks access (an API key's scope, or the user's role permission and which deals
that user may see), then calls one query or one action. Marketing holds no deal permission, so
every deal endpoint answers it 403; it may read goals and the plan (its MQL commitment).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.http import HttpRequest
from ninja import Query, Router, Status

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.crm import queries as crm_queries
from embudo.crm.models import TransitionCause
from embudo.deals import actions, queries
from embudo.deals.models import Deal, Goal, LostReason, SalesTeam, Stage
from embudo.deals.periods import PeriodError, current, parse_period
from embudo.deals.planner import PlanError, PlanRequest, make_plan, parse_rate
from embudo.deals.schemas import (
    DealIn,
    DealOut,
    DealPage,
    DealQuery,
    Error,
    GoalIn,
    GoalList,
    GoalOut,
    History,
    LoseIn,
    MoveIn,
    NamedList,
    NameIn,
    PipelineIn,
    PipelineOut,
    PlanQuery,
    RateIn,
    RateList,
    RateOut,
    StageOut,
    StagePatch,
    change_data,
    deal_data,
    goal_data,
    pipeline_data,
    stage_data,
)
from embudo.errors import ValidationFailed

router: Router = Router(tags=["deals"])
ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}


# -- access -------------------------------------------------------------------------------------


def _deal(who: Principal, deal_id: int) -> Deal:
    deal = queries.deal_detail(who.user, deal_id)
    if deal is None:
        raise ApiError(404, "not_found", f"no deal with id {deal_id}")
    return deal


def _fresh(deal_id: int) -> dict[str, Any]:
    """A deal as stored after a write (the writer may have handed it to someone else)."""
    deal = queries.deal_detail(None, deal_id)
    assert deal is not None
    return deal_data(deal)


def _known_params(request: HttpRequest, schema: Any) -> None:
    unknown = sorted(set(request.GET) - set(schema.model_fields))
    if unknown:
        raise ValidationFailed(
            {
                name: [f"unknown query parameter; this takes {', '.join(schema.model_fields)}"]
                for name in unknown
            }
        )


def _check_contacts(who: Principal, contact_ids: list[int] | None) -> None:
    """A rep can put on a deal only contacts they can see."""
    if not contact_ids or who.user is None:
        return
    visible = set(
        crm_queries.visible_contacts(who.user)
        .filter(pk__in=contact_ids)
        .values_list("pk", flat=True)
    )
    missing = [i for i in contact_ids if i not in visible]
    if missing:
        raise ValidationFailed.one(
            "contact_ids", f"no contact with id {', '.join(map(str, missing))}"
        )


def _lost_reason(reason_id: int | None) -> LostReason | None:
    if reason_id is None:
        return None
    reason = LostReason.objects.filter(pk=reason_id).first()
    if reason is None:
        raise ValidationFailed.one("lost_reason_id", f"no lost reason with id {reason_id}")
    return reason


# -- deals --------------------------------------------------------------------------------------


@router.get("/deals", response={200: DealPage, **ERRORS}, summary="List deals")
def list_deals(request: HttpRequest, params: Query[DealQuery]) -> dict[str, Any]:
    """Newest first; filters combine with AND. Sales reps see their own and unassigned deals."""
    who = allow(request, Scope.READ, "deals.view_deal")
    _known_params(request, DealQuery)
    owner_id, unassigned = None, False
    owner = (params.owner or "").strip().lower()
    if owner == "me":
        if who.user is None:
            raise ValidationFailed.one("owner", "'me' needs a logged-in user, not an API key")
        owner_id = who.user.pk
    elif owner == "none":
        unassigned = True
    elif owner:
        if not owner.isdigit():
            raise ValidationFailed.one("owner", f"{params.owner!r} is not a user id, me or none")
        owner_id = int(owner)
    if params.status and params.status not in ("open", "won", "lost"):
        raise ValidationFailed.one("status", f"{params.status!r} is not open, won or lost")
    filters = queries.DealFilter(
        search=params.search or "",
        pipeline_id=params.pipeline,
        stage_id=params.stage,
        status=params.status or "",
        owner_id=owner_id,
        unassigned=unassigned,
        company_id=params.company,
        contact_id=params.contact,
        product_line_id=params.product_line,
        closing_from=params.closing_from,
        closing_to=params.closing_to,
    )
    query = queries.deal_list(who.user, filters).prefetch_related("contacts")
    count = query.count()
    rows = list(query[params.offset : params.offset + params.limit])
    end = params.offset + len(rows)
    next_url = None
    if end < count and rows:
        args = request.GET.copy()
        args["offset"] = str(end)
        next_url = request.build_absolute_uri(f"{request.path}?{args.urlencode()}")
    return {"items": [deal_data(d) for d in rows], "count": count, "next": next_url}


@router.post("/deals", response={201: DealOut, **ERRORS}, summary="Create a deal")
def create_deal(request: HttpRequest, payload: DealIn) -> Status[dict[str, Any]]:
    """Its contacts become opportunities; a rep's new deal is theirs unless they name an owner."""
    who = allow(request, Scope.WRITE, "deals.add_deal")
    data = payload.model_dump(exclude_unset=True)
    _check_contacts(who, data.get("contact_ids"))
    if who.user is not None and "owner_id" not in data:
        data["owner_id"] = who.user.pk
    deal = actions.create_deal(data, actor=who.actor, cause=TransitionCause.API)
    return Status(201, _fresh(deal.pk))


@router.get("/deals/{deal_id}", response={200: DealOut, **ERRORS}, summary="Get a deal")
def get_deal(request: HttpRequest, deal_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "deals.view_deal")
    return deal_data(_deal(who, deal_id))


@router.patch("/deals/{deal_id}", response={200: DealOut, **ERRORS}, summary="Update a deal")
def update_deal(request: HttpRequest, deal_id: int, payload: DealIn) -> dict[str, Any]:
    """Send only what changes. Stage, winning and losing have their own endpoints."""
    who = allow(request, Scope.WRITE, "deals.change_deal")
    deal = _deal(who, deal_id)
    data = payload.model_dump(exclude_unset=True)
    _check_contacts(who, data.get("contact_ids"))
    actions.update_deal(deal, data, actor=who.actor, cause=TransitionCause.API)
    return _fresh(deal.pk)


@router.delete("/deals/{deal_id}", response={204: None, **ERRORS}, summary="Delete a deal")
def delete_deal(request: HttpRequest, deal_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "deals.delete_deal")
    actions.delete_deal(_deal(who, deal_id), actor=who.actor)
    return Status(204, None)


@router.post(
    "/deals/{deal_id}/move", response={200: DealOut, **ERRORS}, summary="Move a deal to a stage"
)
def move_deal(request: HttpRequest, deal_id: int, payload: MoveIn) -> dict[str, Any]:
    """A won stage wins the deal (contacts become customers); a lost one needs a reason."""
    who = allow(request, Scope.WRITE, "deals.change_deal")
    deal = _deal(who, deal_id)
    stage = Stage.objects.filter(pk=payload.stage_id).first()
    if stage is None:
        raise ValidationFailed.one("stage_id", f"no stage with id {payload.stage_id}")
    actions.move_deal_stage(
        deal,
        stage,
        actor=who.actor,
        cause=TransitionCause.API,
        lost_reason=_lost_reason(payload.lost_reason_id),
        lost_note=payload.note,
    )
    return _fresh(deal.pk)


@router.post("/deals/{deal_id}/win", response={200: DealOut, **ERRORS}, summary="Win a deal")
def win_deal(request: HttpRequest, deal_id: int) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "deals.change_deal")
    deal = _deal(who, deal_id)
    actions.win_deal(deal, actor=who.actor, cause=TransitionCause.API)
    return _fresh(deal.pk)


@router.post("/deals/{deal_id}/lose", response={200: DealOut, **ERRORS}, summary="Lose a deal")
def lose_deal(request: HttpRequest, deal_id: int, payload: LoseIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "deals.change_deal")
    deal = _deal(who, deal_id)
    actions.lose_deal(
        deal, _lost_reason(payload.lost_reason_id), note=payload.note, actor=who.actor
    )
    return _fresh(deal.pk)


@router.get(
    "/deals/{deal_id}/history", response={200: History, **ERRORS}, summary="A deal's stage moves"
)
def deal_history(request: HttpRequest, deal_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "deals.view_deal")
    deal = _deal(who, deal_id)
    return {"items": [change_data(c) for c in queries.stage_history(deal)]}


# -- pipelines and lists ------------------------------------------------------------------------


@router.get("/pipelines", response={200: list[PipelineOut], **ERRORS}, summary="List pipelines")
def list_pipelines(request: HttpRequest) -> list[dict[str, Any]]:
    allow(request, Scope.READ, "deals.view_pipeline")
    actions.default_pipeline()
    return [pipeline_data(p) for p in queries.pipelines()]


@router.post("/pipelines", response={201: PipelineOut, **ERRORS}, summary="Create a pipeline")
def create_pipeline(request: HttpRequest, payload: PipelineIn) -> Status[dict[str, Any]]:
    """Stages in order, each with its win probability; at least one open, won and lost."""
    who = allow(request, Scope.ADMIN, "deals.add_pipeline")
    pipeline = actions.create_pipeline(
        payload.name,
        [s.model_dump() for s in payload.stages],
        is_default=payload.is_default,
        actor=who.actor,
    )
    return Status(201, pipeline_data(queries.pipelines().get(pk=pipeline.pk)))


@router.patch("/stages/{stage_id}", response={200: StageOut, **ERRORS}, summary="Update a stage")
def update_stage(request: HttpRequest, stage_id: int, payload: StagePatch) -> dict[str, Any]:
    who = allow(request, Scope.ADMIN, "deals.change_stage")
    stage = Stage.objects.filter(pk=stage_id).first()
    if stage is None:
        raise ApiError(404, "not_found", f"no stage with id {stage_id}")
    return stage_data(
        actions.update_stage(stage, payload.model_dump(exclude_unset=True), actor=who.actor)
    )


@router.get("/lost-reasons", response={200: NamedList, **ERRORS}, summary="Lost reasons")
def list_lost_reasons(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "deals.view_lostreason")
    return {"items": [{"id": r.pk, "name": r.name} for r in queries.lost_reasons()]}


@router.post("/lost-reasons", response={201: NamedList, **ERRORS}, summary="Add a lost reason")
def add_lost_reason(request: HttpRequest, payload: NameIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.ADMIN, "deals.add_lostreason")
    reason = actions.create_lost_reason(payload.name, actor=who.actor)
    return Status(201, {"items": [{"id": reason.pk, "name": reason.name}]})


@router.get("/product-lines", response={200: NamedList, **ERRORS}, summary="Product lines")
def list_product_lines(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "deals.view_productline")
    return {"items": [{"id": p.pk, "name": p.name} for p in queries.product_lines()]}


@router.post("/product-lines", response={201: NamedList, **ERRORS}, summary="Add a product line")
def add_product_line(request: HttpRequest, payload: NameIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.ADMIN, "deals.add_productline")
    line = actions.create_product_line(payload.name, actor=who.actor)
    return Status(201, {"items": [{"id": line.pk, "name": line.name}]})


# -- currencies ---------------------------------------------------------------------------------


@router.get("/exchange-rates", response={200: RateList, **ERRORS}, summary="Exchange rates")
def list_rates(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "deals.view_exchangerate")
    base = actions.reporting_currency()
    return {
        "reporting_currency": base,
        "items": [
            {
                "currency": r.currency,
                "rate": float(r.rate),
                "reporting_currency": base,
                "updated_at": r.updated_at,
            }
            for r in queries.exchange_rates()
        ],
    }


@router.put("/exchange-rates/{currency}", response={200: RateOut, **ERRORS}, summary="Set a rate")
def set_rate(request: HttpRequest, currency: str, payload: RateIn) -> dict[str, Any]:
    """Admins only. Open deals in that currency are re-expressed at once; closed deals keep
    the rate they closed at."""
    who = allow(request, Scope.ADMIN, "deals.change_exchangerate")
    rate = actions.set_exchange_rate(currency, payload.rate, actor=who.actor)
    return {
        "currency": rate.currency,
        "rate": float(rate.rate),
        "reporting_currency": actions.reporting_currency(),
        "updated_at": rate.updated_at,
    }


# -- goals and the plan -------------------------------------------------------------------------


@router.get("/goals", response={200: GoalList, **ERRORS}, summary="Revenue goals")
def list_goals(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "deals.view_goal")
    return {"items": [goal_data(g) for g in queries.goals()[:500]]}


@router.put("/goals", response={200: GoalOut, **ERRORS}, summary="Set a revenue goal")
def set_goal(request: HttpRequest, payload: GoalIn) -> dict[str, Any]:
    """Sets or replaces the goal for the period (company-wide, a team's or a rep's)."""
    who = allow(request, Scope.WRITE, "deals.add_goal")
    try:
        period = parse_period(payload.period)
    except PeriodError as error:
        raise ValidationFailed.one("period", str(error)) from None
    team = None
    if payload.team_id is not None:
        team = SalesTeam.objects.filter(pk=payload.team_id).first()
        if team is None:
            raise ValidationFailed.one("team_id", f"no team with id {payload.team_id}")
    owner = None
    if payload.owner_id is not None:
        owner = get_user_model().objects.filter(pk=payload.owner_id, is_active=True).first()
        if owner is None:
            raise ValidationFailed.one("owner_id", f"no active user with id {payload.owner_id}")
    goal = actions.set_goal(period, payload.amount, team=team, owner=owner, actor=who.actor)
    return goal_data(Goal.objects.select_related("team", "owner").get(pk=goal.pk))


@router.delete("/goals/{goal_id}", response={204: None, **ERRORS}, summary="Delete a goal")
def delete_goal(request: HttpRequest, goal_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "deals.delete_goal")
    goal = Goal.objects.filter(pk=goal_id).first()
    if goal is None:
        raise ApiError(404, "not_found", f"no goal with id {goal_id}")
    actions.delete_goal(goal, actor=who.actor)
    return Status(204, None)


@router.get("/plan", response={200: dict[str, Any], **ERRORS}, summary="The reverse-funnel plan")
def plan(request: HttpRequest, params: Query[PlanQuery]) -> dict[str, Any]:
    """Deals, opportunities, SQLs, MQLs, leads (and visitors) the period needs for its revenue
    target, with measured or given rates (`rate=mql=0.4`, repeatable), and the pace so far."""
    allow(request, Scope.READ, "deals.view_goal")
    _known_params(request, PlanQuery)
    try:
        request_ = PlanRequest(
            period=parse_period(params.period) if params.period else current("month"),
            revenue=params.revenue,
            deal_value=params.deal_value,
            rates=tuple(parse_rate(text) for text in params.rate),
            window_days=params.window_days,
            min_sample=params.min_sample,
            min_deals=params.min_deals,
            team_id=params.team,
            owner_id=params.owner,
        )
        return make_plan(request_).to_dict()
    except PeriodError as error:
        raise ValidationFailed.one("period", str(error)) from None
    except PlanError as error:
        raise ValidationFailed.one(error.field, error.message) from None
