"""The scoring settings page: models, their numbers and rules, and the rescore status.

Thin views: parse the posted fields, call one action, and show its errors beside the form.
Marketing and admins change things; sales managers see the same page read-only.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from embudo.errors import ValidationFailed
from embudo.scoring import actions, queries
from embudo.scoring.api import rule_data
from embudo.scoring.models import ScoreRule, ScoringModel
from embudo.web.access import acting_user, role_required

NUMBER_FIELDS = (
    "half_life_days",
    "fit_cap",
    "engagement_cap",
    "total_cap",
    "band_a",
    "band_b",
    "band_c",
    "mql_fit",
    "mql_engagement",
    "mql_total",
)


@require_GET
@role_required("scoring.view_scoringmodel")
def settings_page(request: HttpRequest) -> HttpResponse:
    first = queries.scoring_models().first()
    if first is not None:
        return redirect("scoring:model", key=first.key)
    return _render(request, None)


@require_GET
@role_required("scoring.view_scoringmodel")
def model_page(request: HttpRequest, key: str) -> HttpResponse:
    return _render(request, _model(key))


def _render(
    request: HttpRequest,
    model: ScoringModel | None,
    *,
    errors: dict[str, list[str]] | None = None,
    posted: dict[str, Any] | None = None,
    form: str = "",
    status: int = 200,
) -> HttpResponse:
    user = request.user
    return render(
        request,
        "scoring/settings.html",
        {
            "models": queries.scoring_models(),
            "model": model,
            "rules": [rule_data(r) for r in queries.rules_of(model)] if model else [],
            "can_change": user.has_perm("scoring.change_scoringmodel"),
            "can_add": user.has_perm("scoring.add_scoringmodel"),
            "errors": errors or {},
            "posted": posted or {},
            "form": form,
        },
        status=status,
    )


def _model(key: str) -> ScoringModel:
    model = queries.model_by_key(key)
    if model is None:
        raise Http404(_("No scoring model with this key."))
    return model


def _require(request: HttpRequest, perm: str) -> None:
    if not request.user.has_perm(perm):
        raise PermissionDenied(_("Your role does not allow this."))


def _model_data(post: Any) -> dict[str, Any]:
    data: dict[str, Any] = {name: post.get(name, "") for name in ("name", "description")}
    for name in NUMBER_FIELDS:
        if name in post:
            data[name] = post.get(name, "").strip() or None
    data["enabled"] = post.get("enabled") == "on"
    return data


def _rule_data(post: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
    errors: dict[str, list[str]] = {}
    data: dict[str, Any] = {
        "kind": post.get("kind", ""),
        "name": post.get("name", ""),
        "points": post.get("points", "").strip() or None,
    }
    if data["kind"] == "engagement":
        data["repeatable"] = post.get("repeatable") == "on"
        data["max_points"] = post.get("max_points", "").strip() or None
    raw = post.get("condition", "").strip()
    try:
        data["condition"] = json.loads(raw) if raw else None
    except json.JSONDecodeError as error:
        errors["condition"] = [
            _("The condition is not valid JSON: %(problem)s (line %(line)s, column %(col)s)")
            % {"problem": error.msg, "line": error.lineno, "col": error.colno}
        ]
    return data, errors


@require_POST
@role_required("scoring.add_scoringmodel")
def model_create(request: HttpRequest) -> HttpResponse:
    data = {"key": request.POST.get("key", ""), **_model_data(request.POST)}
    data["enabled"] = True
    try:
        model = actions.create_model(data, actor=acting_user(request))
    except ValidationFailed as failed:
        return _render(
            request, None, errors=failed.errors, posted=request.POST, form="new", status=422
        )
    messages.success(request, _("Scoring model created; every contact is being scored."))
    return redirect("scoring:model", key=model.key)


@require_POST
@role_required("scoring.change_scoringmodel")
def model_update(request: HttpRequest, key: str) -> HttpResponse:
    model = _model(key)
    try:
        actions.update_model(model, _model_data(request.POST), actor=acting_user(request))
    except ValidationFailed as failed:
        return _render(
            request, model, errors=failed.errors, posted=request.POST, form="model", status=422
        )
    messages.success(request, _("Settings saved."))
    return redirect("scoring:model", key=model.key)


@require_POST
@role_required("scoring.change_scoringmodel")
def model_rescore(request: HttpRequest, key: str) -> HttpResponse:
    actions.request_rescore(_model(key), actor=acting_user(request))
    messages.success(request, _("Every contact is being rescored in the background."))
    return redirect("scoring:model", key=key)


@require_POST
@role_required("scoring.add_scorerule")
def rule_create(request: HttpRequest, key: str) -> HttpResponse:
    model = _model(key)
    data, errors = _rule_data(request.POST)
    try:
        if errors:
            raise ValidationFailed(errors)
        actions.add_rule(model, data, actor=acting_user(request))
    except ValidationFailed as failed:
        return _render(
            request, model, errors=failed.errors, posted=request.POST, form="rule", status=422
        )
    messages.success(request, _("Rule added; every contact is being rescored."))
    return redirect("scoring:model", key=model.key)


@require_POST
@role_required("scoring.delete_scorerule")
def rule_delete(request: HttpRequest, key: str, rule_id: int) -> HttpResponse:
    model = _model(key)
    rule = ScoreRule.objects.filter(model=model, pk=rule_id).first()
    if rule is None:
        raise Http404(_("No such rule."))
    actions.delete_rule(rule, actor=acting_user(request))
    messages.success(request, _("Rule deleted; every contact is being rescored."))
    return redirect("scoring:model", key=model.key)
