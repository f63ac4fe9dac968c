"""API of the predictive model: a contact's prediction, the report, the versions, the excluded
fields and (for admins) a training run. Thin: check access, call one query or action."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja import Router, Schema
from pydantic import Field as PydanticField

from embudo.accounts.models import Scope
from embudo.accounts.roles import ADMIN, role_of
from embudo.api_access import ApiError, allow
from embudo.crm import queries as crm_queries
from embudo.crm.schemas import Error
from embudo.predictive import actions, queries
from embudo.predictive.models import PredictiveModel

router: Router = Router(tags=["Predictive scoring"])

ERRORS: dict[int, Any] = {400: Error, 401: Error, 403: Error, 404: Error, 422: Error}
VIEW = "predictive.view_predictivemodel"
CHANGE = "predictive.change_predictivesettings"


class Reason(Schema):
    field: str
    label: str
    value: str
    contribution: float


class PredictionOut(Schema):
    contact_id: int
    predicted_conversion: float
    model_version: int
    scored_at: Any
    reasons: list[Reason]


class ExclusionsIn(Schema):
    fields: list[str] = PydanticField(..., max_length=500)


class ExclusionsOut(Schema):
    fields: list[str]


class TrainIn(Schema):
    exclude: list[str] = []
    holdout: float = actions.DEFAULT_HOLDOUT
    seed: int = 0


@router.get(
    "/contacts/{contact_id}/prediction",
    response={200: PredictionOut, **ERRORS},
    summary="A contact's predicted conversion and its reasons",
)
def contact_prediction(request: HttpRequest, contact_id: int) -> dict[str, Any]:
    who = allow(request, Scope.READ, "crm.view_contact")
    viewer = who.user if who.user is not None else crm_queries.SYSTEM
    if not crm_queries.visible_contacts(viewer).filter(pk=contact_id).exists():
        raise ApiError(404, "not_found", f"no contact with id {contact_id}")
    prediction = queries.prediction_for(contact_id)
    if prediction is None:
        raise ApiError(
            404,
            "no_prediction",
            f"contact {contact_id} has no prediction: it has an outcome already, or no model "
            "has been trained yet",
        )
    return {
        "contact_id": contact_id,
        "predicted_conversion": prediction.probability,
        "model_version": prediction.model_id,
        "scored_at": prediction.scored_at,
        "reasons": prediction.reasons,
    }


@router.get("/scoring/predictive/report", response={200: dict, **ERRORS}, summary="Model report")
def report(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, VIEW)
    return queries.report().to_dict()


@router.get(
    "/scoring/predictive/versions", response={200: list[dict], **ERRORS}, summary="Model versions"
)
def versions(request: HttpRequest) -> list[dict[str, Any]]:
    allow(request, Scope.READ, VIEW)
    return [queries.version_summary(model) for model in queries.versions()]


@router.post(
    "/scoring/predictive/versions/{version}/activate",
    response={200: dict, **ERRORS},
    summary="Make a version the active one (admin)",
)
def activate(request: HttpRequest, version: int) -> dict[str, Any]:
    who = _admin(request)
    model = PredictiveModel.objects.defer("estimator").filter(pk=version).first()
    if model is None:
        raise ApiError(404, "not_found", f"no model version {version}")
    actions.activate_version(model, actor=who.actor)
    return queries.version_summary(model)


@router.get(
    "/scoring/predictive/exclusions",
    response={200: ExclusionsOut, **ERRORS},
    summary="Fields kept out of training",
)
def get_exclusions(request: HttpRequest) -> dict[str, Any]:
    allow(request, Scope.READ, VIEW)
    return {"fields": list(actions.predictive_settings().excluded_fields)}


@router.put(
    "/scoring/predictive/exclusions",
    response={200: ExclusionsOut, **ERRORS},
    summary="Set the fields kept out of training",
)
def set_exclusions(request: HttpRequest, payload: ExclusionsIn) -> dict[str, Any]:
    who = allow(request, Scope.ADMIN, CHANGE)
    bad = [f for f in payload.fields if not isinstance(f, str) or len(f) > 200]
    if bad:
        raise ApiError(422, "validation_error", "a field name is too long", {"fields": bad})
    return {"fields": actions.set_excluded_fields(payload.fields, actor=who.actor)}


@router.post(
    "/scoring/predictive/train",
    response={200: dict, 422: Error, **ERRORS},
    summary="Train a new version now (admin)",
)
def train(request: HttpRequest, payload: TrainIn) -> Any:
    """Runs in the request and answers with the figures; a run refused for too few outcomes
    answers 422 `training_refused`, and the active version stays."""
    who = _admin(request)
    if not 0 <= payload.holdout < 0.9:
        raise ApiError(
            422, "validation_error", "holdout must be at least 0 and below 0.9", {"holdout": []}
        )
    result = actions.train_model(
        exclude=payload.exclude, holdout=payload.holdout, seed=payload.seed, actor=who.actor
    )
    if not result.ok:
        raise ApiError(422, "training_refused", result.message)
    return result.to_dict()


def _admin(request: HttpRequest) -> Any:
    who = allow(request, Scope.ADMIN, CHANGE)
    if who.user is not None and role_of(who.user) != ADMIN:
        raise ApiError(403, "forbidden", "only an admin may train or activate model versions")
    return who
