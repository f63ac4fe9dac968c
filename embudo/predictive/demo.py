"""The demo company's predictive model: trained once on the demo's customers and disqualified
contacts, so every open contact shows a predicted conversion and the Model page has figures."""

from __future__ import annotations

from typing import Any

from embudo.predictive import actions


def seed_predictive(ctx: Any) -> None:
    result = actions.train_model(holdout=0.2, seed=0)
    ctx.counts["predictive model versions"] = 1 if result.ok else 0
    ctx.counts["predictions"] = result.scored
