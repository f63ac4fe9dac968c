"""API endpoints of rule-based scoring: models, their rules, and each contact's scores.

Marketing and admins change models and rules (an API key needs the ``write`` scope); sales
managers read them; every role reads the scores of the contacts it may see. A change of rules
or numbers answers at once with the model marked ``rescoring``: everyone is rescored in the
background.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ConfigDict

from embudo.accounts.models import Scope
from embudo.api_access import ApiError, Principal, allow
from embudo.crm import queries as crm_queries
from embudo.scoring import actions, queries
from embudo.scoring.models import ScoreRule, ScoringModel
from embudo.segments.conditions import ConditionError, describe_condition

router: Router = Router(tags=["Scoring"])


class ErrorBody(Schema):
    code: str
    message: str
    fields: dict[str, list[str]] | None = None


class Error(Schema):
    error: ErrorBody


ERRORS: dict[int, Any] = {401: Error, 403: Error, 404: Error, 422: Error}


class Input(Schema):
    model_config = ConfigDict(extra="forbid")


class ModelIn(Input):
    """A scoring model to create, or the settings to change (PATCH sends only what changes).
    Numbers left empty (null) mean "no cap" or "this half of the MQL rule is off"."""

    key: str | None = Field(None, description="Short identifier used in conditions: score.KEY.fit")
    name: str | None = None
    description: str | None = None
    enabled: bool | None = None
    half_life_days: float | None = Field(None, description="Engagement halves every this many days")
    fit_cap: float | None = None
    engagement_cap: float | None = None
    total_cap: float | None = None
    band_a: float | None = Field(None, description="Lowest total of band A")
    band_b: float | None = None
    band_c: float | None = Field(None, description="Lowest total of band C; below it, band D")
    mql_fit: float | None = Field(None, description="MQL when fit >= this and engagement >= ...")
    mql_engagement: float | None = None
    mql_total: float | None = Field(None, description="... or when the total >= this")


class RuleIn(Input):
    """A rule. Fit rules take a contact condition, engagement rules an event filter
    (``{"type": "page_view", "where": [...]}``), both in the segments' condition language."""

    kind: str | None = Field(None, description="fit or engagement")
    name: str | None = Field(None, description="Shown as the reason beside a score")
    condition: Any = None
    points: float | None = Field(None, description="Negative points take away")
    repeatable: bool | None = Field(None, description="Engagement: count every matching event")
    max_points: float | None = Field(None, description="Engagement: the most a rule may give")
    position: int | None = None


class RulesIn(Input):
    rules: list[RuleIn]


class RuleOut(Schema):
    id: int
    kind: str
    name: str
    condition: Any
    condition_text: str
    points: float
    repeatable: bool
    max_points: float | None
    position: int


class ModelOut(Schema):
    key: str
    name: str
    description: str
    enabled: bool
    half_life_days: float
    fit_cap: float | None
    engagement_cap: float | None
    total_cap: float | None
    band_a: float
    band_b: float
    band_c: float
    mql_fit: float | None
    mql_engagement: float | None
    mql_total: float | None
    status: str = Field(description="ready, rescoring (after a change) or failed")
    last_error: str
    rescored_at: dt.datetime | None
    version: int
    rules: list[RuleOut]


class ModelList(Schema):
    models: list[ModelOut]


class ReasonOut(Schema):
    rule: str
    kind: str
    points: float


class ScoreOut(Schema):
    model: str
    model_name: str
    fit: float
    engagement: float = Field(description="Decayed to the moment of the request")
    total: float
    band: str
    meets_mql_threshold: bool
    reasons: list[ReasonOut]
    computed_at: dt.datetime | None
    as_of: dt.datetime


class ScoreList(Schema):
    contact_id: int
    scores: list[ScoreOut]


class HistoryOut(Schema):
    model: str
    at: dt.datetime
    fit: float
    engagement: float
    total: float
    band: str
    cause: str
    reasons: list[Any]


class HistoryList(Schema):
    contact_id: int
    history: list[HistoryOut]


class Accepted(Schema):
    model: str
    status: str


# -- plain data ---------------------------------------------------------------------------------


def rule_data(rule: ScoreRule) -> dict[str, Any]:
    try:
        text = describe_condition(rule.condition) if rule.kind == "fit" else _event_text(rule)
    except ConditionError:
        text = ""
    return {
        "id": rule.pk,
        "kind": rule.kind,
        "name": rule.name,
        "condition": rule.condition,
        "condition_text": text,
        "points": rule.points,
        "repeatable": rule.repeatable,
        "max_points": rule.max_points,
        "position": rule.position,
    }


def _event_text(rule: ScoreRule) -> str:
    text = describe_condition({"event": rule.condition})
    return text.removeprefix("did ")


def model_data(model: ScoringModel) -> dict[str, Any]:
    return {
        **{name: getattr(model, name) for name in actions.MODEL_FIELDS},
        "status": model.status,
        "last_error": model.last_error,
        "rescored_at": model.rescored_at,
        "version": model.version,
        "rules": [rule_data(r) for r in queries.rules_of(model)],
    }


def _model(key: str) -> ScoringModel:
    model = queries.model_by_key(key)
    if model is None:
        raise ApiError(404, "not_found", f"no scoring model with the key {key!r}")
    return model


def _rule(model: ScoringModel, rule_id: int) -> ScoreRule:
    rule = ScoreRule.objects.filter(model=model, pk=rule_id).first()
    if rule is None:
        raise ApiError(404, "not_found", f"model {model.key!r} has no rule with id {rule_id}")
    return rule


def _contact_id(who: Principal, contact_id: int) -> int:
    viewer = who.user if who.user is not None else crm_queries.SYSTEM
    if not crm_queries.visible_contacts(viewer).filter(pk=contact_id).exists():
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    return contact_id


def _sent(payload: Schema) -> dict[str, Any]:
    return payload.model_dump(exclude_unset=True)


# -- models -------------------------------------------------------------------------------------


@router.get("/scoring/models", response={200: ModelList, **ERRORS}, summary="List scoring models")
def list_models(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, "scoring.view_scoringmodel")
    return {"models": [model_data(m) for m in queries.scoring_models()]}


@router.post(
    "/scoring/models", response={201: ModelOut, **ERRORS}, summary="Create a scoring model"
)
def create_model(request: HttpRequest, payload: ModelIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "scoring.add_scoringmodel")
    model = actions.create_model(_sent(payload), actor=who.actor)
    return Status(201, model_data(_model(model.key)))


@router.get(
    "/scoring/models/{key}", response={200: ModelOut, **ERRORS}, summary="Get a scoring model"
)
def get_model(request: HttpRequest, key: str) -> dict[str, Any]:
    allow(request, Scope.READ, "scoring.view_scoringmodel")
    return model_data(_model(key))


@router.patch(
    "/scoring/models/{key}", response={200: ModelOut, **ERRORS}, summary="Change a scoring model"
)
def update_model(request: HttpRequest, key: str, payload: ModelIn) -> dict[str, Any]:
    """A change of caps, half-life, bands or MQL threshold rescores everyone in the background."""
    who = allow(request, Scope.WRITE, "scoring.change_scoringmodel")
    model = actions.update_model(_model(key), _sent(payload), actor=who.actor)
    return model_data(_model(model.key))


@router.delete(
    "/scoring/models/{key}", response={204: None, **ERRORS}, summary="Delete a scoring model"
)
def delete_model(request: HttpRequest, key: str) -> Status[None]:
    who = allow(request, Scope.WRITE, "scoring.delete_scoringmodel")
    actions.delete_model(_model(key), actor=who.actor)
    return Status(204, None)


@router.post(
    "/scoring/models/{key}/rescore",
    response={202: Accepted, **ERRORS},
    summary="Rescore everyone under a model",
)
def rescore(request: HttpRequest, key: str) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "scoring.change_scoringmodel")
    model = _model(key)
    actions.request_rescore(model, actor=who.actor)
    model.refresh_from_db()
    return Status(202, {"model": model.key, "status": model.status})


# -- rules --------------------------------------------------------------------------------------


@router.get(
    "/scoring/models/{key}/rules",
    response={200: list[RuleOut], **ERRORS},
    summary="List a model's rules",
)
def list_rules(request: HttpRequest, key: str) -> list[dict[str, Any]]:
    allow(request, Scope.READ, "scoring.view_scorerule")
    return [rule_data(r) for r in queries.rules_of(_model(key))]


@router.post("/scoring/models/{key}/rules", response={201: RuleOut, **ERRORS}, summary="Add a rule")
def add_rule(request: HttpRequest, key: str, payload: RuleIn) -> Status[dict[str, Any]]:
    who = allow(request, Scope.WRITE, "scoring.add_scorerule")
    rule = actions.add_rule(_model(key), _sent(payload), actor=who.actor)
    return Status(201, rule_data(rule))


@router.put(
    "/scoring/models/{key}/rules",
    response={200: list[RuleOut], **ERRORS},
    summary="Replace all of a model's rules",
)
def replace_rules(request: HttpRequest, key: str, payload: RulesIn) -> list[dict[str, Any]]:
    """All the rules are checked first: one bad rule changes nothing (its errors are named
    ``rules.N.field``)."""
    who = allow(request, Scope.WRITE, "scoring.change_scorerule")
    who.require_perm("scoring.delete_scorerule")
    model = _model(key)
    actions.replace_rules(model, [_sent(r) for r in payload.rules], actor=who.actor)
    return [rule_data(r) for r in queries.rules_of(model)]


@router.patch(
    "/scoring/models/{key}/rules/{rule_id}",
    response={200: RuleOut, **ERRORS},
    summary="Change a rule",
)
def update_rule(request: HttpRequest, key: str, rule_id: int, payload: RuleIn) -> dict[str, Any]:
    who = allow(request, Scope.WRITE, "scoring.change_scorerule")
    rule = actions.update_rule(_rule(_model(key), rule_id), _sent(payload), actor=who.actor)
    return rule_data(rule)


@router.delete(
    "/scoring/models/{key}/rules/{rule_id}",
    response={204: None, **ERRORS},
    summary="Delete a rule",
)
def delete_rule(request: HttpRequest, key: str, rule_id: int) -> Status[None]:
    who = allow(request, Scope.WRITE, "scoring.delete_scorerule")
    actions.delete_rule(_rule(_model(key), rule_id), actor=who.actor)
    return Status(204, None)


# -- a contact's scores -------------------------------------------------------------------------


@router.get(
    "/contacts/{contact_id}/scores",
    response={200: ScoreList, **ERRORS},
    summary="A contact's scores, as of now",
)
def contact_scores(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    """Fit, engagement (decayed to now), total, band and the reasons, per enabled model."""
    who = allow(request, Scope.READ, "scoring.view_contactscore")
    _contact_id(who, contact_id)
    return {
        "contact_id": contact_id,
        "scores": [s.as_dict() for s in queries.contact_scores(contact_id)],
    }


@router.get(
    "/contacts/{contact_id}/score-history",
    response={200: HistoryList, **ERRORS},
    summary="How a contact's scores changed, and why",
)
def contact_score_history(
    request: HttpRequest, contact_id: int, model: str | None = None, limit: int = 50
) -> dict[str, Any]:
    who = allow(request, Scope.READ, "scoring.view_scorehistory")
    _contact_id(who, contact_id)
    if model is not None:
        _model(model)
    if not 1 <= limit <= 500:
        raise ApiError(422, "validation_error", "limit is between 1 and 500", {"limit": ["1-500"]})
    rows = queries.score_history(contact_id, model_key=model, limit=limit)
    return {
        "contact_id": contact_id,
        "history": [
            {
                "model": row.model.key,
                "at": row.at,
                "fit": row.fit,
                "engagement": row.engagement,
                "total": row.total,
                "band": row.band,
                "cause": row.cause,
                "reasons": row.reasons,
            }
            for row in rows
        ],
    }
