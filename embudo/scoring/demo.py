"""The demo company's scoring model: who fits a B2B software vendor, what shows interest, and the
threshold marketing and sales agreed on; scores are computed at the end of the seed."""

from __future__ import annotations

from typing import Any

from embudo.scoring import engine
from embudo.scoring.models import ScoreRule, ScoringModel

DEFAULT_MODEL: dict[str, Any] = {
    "key": "default",
    "name": "Ideal B2B buyer",
    "description": "Fit of company and role, and interest shown in the last weeks.",
    "half_life_days": 30.0,
    "fit_cap": 50.0,
    "engagement_cap": 50.0,
    "total_cap": 100.0,
    "band_a": 70.0,
    "band_b": 45.0,
    "band_c": 20.0,
    "mql_fit": 25.0,
    "mql_engagement": 20.0,
    "mql_total": 60.0,
}


def _page(path: str) -> dict[str, Any]:
    return {"type": "page_view", "where": [{"field": "url", "op": "contains", "value": path}]}


def _title_has(*words: str) -> dict[str, Any]:
    return {"any": [{"field": "job_title", "op": "contains", "value": w} for w in words]}


# (kind, name, condition, points, repeatable, max_points)
DEFAULT_RULES: list[tuple[str, str, Any, float, bool, float | None]] = [
    (
        "fit",
        "Target industry",
        {
            "field": "company.industry",
            "op": "in",
            "value": [
                "Software",
                "Financial Services",
                "Professional Services",
                "Telecommunications",
            ],
        },
        15,
        False,
        None,
    ),
    (
        "fit",
        "200+ employees",
        {"field": "company.employees", "op": "gte", "value": 200},
        10,
        False,
        None,
    ),
    (
        "fit",
        "Under 20 employees",
        {"field": "company.employees", "op": "lt", "value": 20},
        -10,
        False,
        None,
    ),
    (
        "fit",
        "Decision maker",
        _title_has("Director", "Directora", "Head", "VP", "CEO", "Founder", "COO", "CFO"),
        15,
        False,
        None,
    ),
    (
        "fit",
        "Marketing or revenue role",
        _title_has("Marketing", "RevOps", "Growth", "Demand"),
        10,
        False,
        None,
    ),
    (
        "fit",
        "Student or academic email",
        {"field": "email_domain", "op": "ends_with", "value": ".edu"},
        -20,
        False,
        None,
    ),
    ("engagement", "Pricing page visits", _page("/pricing"), 5, True, 15),
    ("engagement", "Site visits", {"type": "page_view"}, 1, True, 10),
    ("engagement", "Email clicks", {"type": "email_click"}, 3, True, 9),
    ("engagement", "Form submissions", {"type": "form_submit"}, 10, True, 20),
    ("engagement", "Meeting booked", {"type": "meeting_booked"}, 20, False, None),
]


def create_default_model(**overrides: Any) -> ScoringModel:
    """The demo model with its rules, written directly (the seed rescores it itself)."""
    model = ScoringModel.objects.create(**{**DEFAULT_MODEL, **overrides})
    ScoreRule.objects.bulk_create(
        ScoreRule(
            model=model,
            kind=kind,
            name=name,
            condition=condition,
            points=points,
            repeatable=repeatable,
            max_points=max_points,
            position=position,
        )
        for position, (kind, name, condition, points, repeatable, max_points) in enumerate(
            DEFAULT_RULES
        )
    )
    return model


def seed_scoring(ctx: Any) -> None:
    """Score every demo contact as of the demo's today. The demo's stages were drawn on
    purpose, so this first scoring promotes nobody; later crossings do."""
    model = create_default_model(epoch=ctx.now)
    outcome = engine.rescore_model(model, now=ctx.now, cause="demo", promote=False)
    ScoringModel.objects.filter(pk=model.pk).update(rescored_at=ctx.now)
    ctx.counts["scored contacts"] = outcome.changed
