"""Reads of scoring for pages, the API, exports and other apps: every score as of "now"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from embudo.crm import queries as crm_queries
from embudo.scoring.arithmetic import Params, band_of, engagement_at, qualifies, total_of
from embudo.scoring.models import ContactScore, RuleKind, ScoreHistory, ScoreRule, ScoringModel


@dataclass(frozen=True)
class Reason:
    rule: str
    kind: str
    points: float


@dataclass(frozen=True)
class Score:
    """A contact's score under one model, right for ``at``."""

    model_key: str
    model_name: str
    fit: float
    engagement: float
    total: float
    band: str
    qualifies: bool
    reasons: tuple[Reason, ...]
    computed_at: dt.datetime | None
    at: dt.datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_key,
            "model_name": self.model_name,
            "fit": round(self.fit, 2),
            "engagement": round(self.engagement, 2),
            "total": round(self.total, 2),
            "band": self.band,
            "meets_mql_threshold": self.qualifies,
            "reasons": [
                {"rule": r.rule, "kind": r.kind, "points": round(r.points, 2)} for r in self.reasons
            ],
            "computed_at": self.computed_at,
            "as_of": self.at,
        }


def scoring_models() -> QuerySet[ScoringModel]:
    return ScoringModel.objects.order_by("key")


def model_by_key(key: str) -> ScoringModel | None:
    return ScoringModel.objects.filter(key=key).first()


def rules_of(model: ScoringModel) -> QuerySet[ScoreRule]:
    return ScoreRule.objects.filter(model=model).order_by("position", "pk")


def contact_scores(contact_id: int, *, at: dt.datetime | None = None) -> list[Score]:
    """The contact's score under every enabled model (zero where nothing counted yet)."""
    return scores_for([contact_id], at=at).get(contact_id, [])


def scores_for(
    contact_ids: Sequence[int],
    *,
    at: dt.datetime | None = None,
    models: Sequence[ScoringModel] | None = None,
) -> dict[int, list[Score]]:
    """Scores of many contacts at once (one query for the rows, one for the rule names)."""
    at = at or timezone.now()
    models = (
        list(models)
        if models is not None
        else list(ScoringModel.objects.filter(enabled=True).order_by("key"))
    )
    rows = {
        (row.contact_id, row.model_id): row
        for row in ContactScore.objects.filter(contact_id__in=list(contact_ids), model__in=models)
    }
    rules = {
        str(pk): (name, kind)
        for pk, name, kind in ScoreRule.objects.filter(model__in=models).values_list(
            "pk", "name", "kind"
        )
    }
    result: dict[int, list[Score]] = {}
    for contact_id in contact_ids:
        scores = []
        for model in models:
            params = Params.of(model)
            row = rows.get((contact_id, model.pk))
            fit = row.fit if row else 0.0
            engagement = float(engagement_at(row.engagement_norm if row else 0.0, params, at))
            total = float(total_of(fit, engagement, params))
            reasons: list[Reason] = []
            if row:
                # Engagement reasons were measured at computed_at; they decay like the score.
                decay = params.growth(row.computed_at) / params.growth(at)
                for rule_id, points in row.reasons.items():
                    if rule_id in rules:
                        name, kind = rules[rule_id]
                        value = points * decay if kind == RuleKind.ENGAGEMENT else points
                        reasons.append(Reason(name, kind, value))
                reasons.sort(key=lambda r: -abs(r.points))
            scores.append(
                Score(
                    model_key=model.key,
                    model_name=model.name,
                    fit=fit,
                    engagement=engagement,
                    total=total,
                    band=str(band_of(total, params)),
                    qualifies=bool(qualifies(fit, engagement, total, params)),
                    reasons=tuple(reasons),
                    computed_at=row.computed_at if row else None,
                    at=at,
                )
            )
        result[contact_id] = scores
    return result


def score_history(
    contact_id: int, *, model_key: str | None = None, limit: int = 50
) -> QuerySet[ScoreHistory]:
    rows = ScoreHistory.objects.filter(contact_id=contact_id).select_related("model")
    if model_key:
        rows = rows.filter(model__key=model_key)
    return rows.order_by("-at", "-id")[:limit]


def any_model_enabled() -> bool:
    """Whether some scoring model is enabled, read fresh (asked after every batch of events,
    so without reading every plan to find there is none)."""
    return crm_queries.any_row(ScoringModel, enabled=True)
