"""Reads of the predictive app for the pages, the API, the CLI and other apps: a contact's
prediction, the versions, and the model report (with the rule-based scores' validation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from sklearn.metrics import roc_auc_score

from embudo.predictive import features, learning
from embudo.predictive.actions import active_model, predictive_settings
from embudo.predictive.models import Prediction, PredictiveModel


def prediction_for(contact_id: int) -> Prediction | None:
    return Prediction.objects.select_related("model").filter(contact_id=contact_id).first()


def versions(limit: int = 50) -> list[PredictiveModel]:
    return list(PredictiveModel.objects.defer("estimator").order_by("-pk")[:limit])


def version_summary(model: PredictiveModel) -> dict[str, Any]:
    holdout = (model.metrics or {}).get("holdout") or {}
    return {
        "version": model.version,
        "created_at": model.created_at,
        "algorithm": model.algorithm,
        "active": model.is_active,
        "outcomes": model.outcomes,
        "positives": model.positives,
        "excluded_fields": model.excluded_fields,
        "fields": [f["key"] for f in model.features],
        "auc": holdout.get("auc"),
        "log_loss": holdout.get("log_loss"),
        "brier": holdout.get("brier"),
        "cv_auc": (model.metrics or {}).get("cv_auc", {}),
        "leakage_flags": (model.metrics or {}).get("leakage_flags", []),
    }


@dataclass
class RuleValidation:
    """How a rule-based scoring model's current totals line up with known outcomes."""

    model: str
    contacts: int
    positives: int
    auc: float | None
    deciles: list[dict[str, Any]]
    threshold: str | None
    above: int = 0
    above_converted: int = 0
    precision: float | None = None
    recall: float | None = None
    best_threshold: float | None = None
    best_precision: float | None = None
    best_recall: float | None = None
    best_f1: float | None = None


@dataclass
class ModelReport:
    model: dict[str, Any] | None
    holdout: dict[str, Any] | None
    leakage_flags: list[dict[str, Any]]
    excluded_fields: list[str]
    last_run: dict[str, Any]
    rules: list[RuleValidation] = field(default_factory=list)
    rules_message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "holdout": self.holdout,
            "leakage_flags": self.leakage_flags,
            "excluded_fields": self.excluded_fields,
            "last_run": self.last_run,
            "rules": [vars(r) for r in self.rules],
            "rules_message": self.rules_message,
        }


def report() -> ModelReport:
    settings_row = predictive_settings()
    last_run = {
        "at": settings_row.last_run_at,
        "ok": settings_row.last_run_ok,
        "message": settings_row.last_run_message,
    }
    model = active_model()
    rules, rules_message = rule_validation()
    if model is None:
        return ModelReport(
            None, None, [], list(settings_row.excluded_fields), last_run, rules, rules_message
        )
    metrics = model.metrics or {}
    return ModelReport(
        version_summary(model),
        metrics.get("holdout"),
        metrics.get("leakage_flags", []),
        list(settings_row.excluded_fields),
        last_run,
        rules,
        rules_message,
    )


def rule_validation() -> tuple[list[RuleValidation], str]:
    """Validate each enabled rule-based scoring model against the known outcomes; when there is
    none, say why the section is empty."""
    from embudo.scoring import queries as scoring_queries

    models = list(scoring_queries.scoring_models().filter(enabled=True))
    if not models:
        return [], _("No rule-based scoring model exists yet.")
    data = features.outcomes()
    if not len(data):
        return [], _("No contact has a known outcome yet.")
    ids = data.contact_ids.tolist()
    totals = {model.key: np.zeros(len(ids)) for model in models}
    qualified = {model.key: np.zeros(len(ids), dtype=bool) for model in models}
    for start in range(0, len(ids), RULE_CHUNK):
        chunk = ids[start : start + RULE_CHUNK]
        scores = scoring_queries.scores_for(chunk, models=models)
        for offset, contact_id in enumerate(chunk):
            for score in scores.get(contact_id, []):
                totals[score.model_key][start + offset] = score.total
                qualified[score.model_key][start + offset] = score.qualifies
    return [
        validate_rule_scores(
            model.name,
            totals[model.key],
            qualified[model.key],
            data.labels.astype(np.int64),
            _threshold_text(model),
        )
        for model in models
    ], ""


RULE_CHUNK = 5000


def _threshold_text(model: Any) -> str:
    parts = []
    if model.mql_fit is not None or model.mql_engagement is not None:
        both = []
        if model.mql_fit is not None:
            both.append(_("fit ≥ %(value)s") % {"value": f"{model.mql_fit:g}"})
        if model.mql_engagement is not None:
            both.append(_("engagement ≥ %(value)s") % {"value": f"{model.mql_engagement:g}"})
        parts.append(_(" and ").join(both))
    if model.mql_total is not None:
        parts.append(_("total ≥ %(value)s") % {"value": f"{model.mql_total:g}"})
    return _(" or ").join(parts)


def validate_rule_scores(
    name: str, totals: np.ndarray, qualified: np.ndarray, y: np.ndarray, threshold: str
) -> RuleValidation:
    """Today's totals and MQL verdicts of contacts with a known outcome, against the outcome.
    Scores are today's, not as of the outcome (the scoring app keeps no such snapshot)."""
    auc = float(roc_auc_score(y, totals)) if 0 < y.sum() < len(y) else None
    result = RuleValidation(
        name, len(y), int(y.sum()), auc, learning.decile_table(y, totals), threshold or None
    )
    if threshold:
        result.above = int(qualified.sum())
        result.above_converted = int(y[qualified].sum())
        result.precision = result.above_converted / result.above if result.above else None
        result.recall = result.above_converted / int(y.sum()) if y.sum() else None
    # Every candidate threshold at once: sort by score, count hits cumulatively, and read the
    # counts at the last contact of each distinct score.
    order = np.argsort(-totals, kind="stable")
    ranked, hits = totals[order], np.cumsum(y[order])
    last = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    if y.sum():
        chosen = hits[last]
        precision = chosen / (last + 1)
        recall = chosen / y.sum()
        f1 = np.where(chosen > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
        best = int(np.argmax(f1))
        result.best_threshold = float(ranked[last[best]])
        result.best_precision = float(precision[best])
        result.best_recall = float(recall[best])
        result.best_f1 = float(f1[best])
    return result
