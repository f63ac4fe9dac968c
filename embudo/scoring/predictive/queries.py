"""Reads of the predictive app for the pages, the API, the CLI and other apps: a contact's
prediction, the versions, and the model report (with the rule-based scores' validation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from sklearn.metrics import roc_auc_score

from embudo.scoring.predictive import features, learning
from embudo.scoring.predictive.actions import active_model, predictive_settings
from embudo.scoring.predictive.models import Prediction, PredictiveModel


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
    threshold: float | None
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
    """Validate each rule-based scoring model against the known outcomes, when the scoring app
    provides its scores; otherwise say why the section is empty."""
    try:
        from embudo.scoring import queries as scoring_queries
    except ImportError:
        return [], _("Rule-based scoring is not available in this installation.")
    read = getattr(scoring_queries, "scores_for_validation", None)
    if read is None:
        return [], _("Rule-based scoring does not publish its scores for validation yet.")
    data = features.outcomes()
    if not len(data):
        return [], _("No contact has a known outcome yet.")
    results = []
    for item in read(data.contact_ids.tolist()):
        results.append(validate_rule_scores(item, data))
    if not results:
        return [], _("No rule-based scoring model exists yet.")
    return results, ""


def validate_rule_scores(item: dict[str, Any], data: features.Outcomes) -> RuleValidation:
    """``item``: {"model": name, "contact_ids": [...], "totals": [...], "threshold": T|None}.
    Contacts without a score count as 0. Scores are today's, not as of the outcome."""
    position = {cid: i for i, cid in enumerate(data.contact_ids.tolist())}
    totals = np.zeros(len(data))
    for cid, total in zip(item["contact_ids"], item["totals"], strict=True):
        if cid in position:
            totals[position[cid]] = float(total)
    y = data.labels.astype(np.int64)
    auc = None
    if 0 < y.sum() < len(y):
        auc = float(roc_auc_score(y, totals))
    result = RuleValidation(
        item["model"],
        len(y),
        int(y.sum()),
        auc,
        learning.decile_table(y, totals),
        item.get("threshold"),
    )
    if result.threshold is not None:
        above = totals >= result.threshold
        result.above = int(above.sum())
        result.above_converted = int(y[above].sum())
        result.precision = result.above_converted / result.above if result.above else None
        result.recall = result.above_converted / y.sum() if y.sum() else None
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
