"""The arithmetic of a score: decay to "now", caps, total, band and the MQL rule.

Every function takes plain numbers or numpy arrays alike, so one contact's page and a million
contacts' rescore share the same definitions.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np

from embudo.scoring.models import ScoringModel

DAY = 86_400.0


@dataclass(frozen=True)
class Params:
    """A scoring model's numbers, detached from the database row."""

    half_life_days: float
    epoch: dt.datetime
    fit_cap: float | None
    engagement_cap: float | None
    total_cap: float | None
    band_a: float
    band_b: float
    band_c: float
    mql_fit: float | None
    mql_engagement: float | None
    mql_total: float | None

    @classmethod
    def of(cls, model: ScoringModel) -> Params:
        return cls(
            half_life_days=model.half_life_days,
            epoch=model.epoch,
            fit_cap=model.fit_cap,
            engagement_cap=model.engagement_cap,
            total_cap=model.total_cap,
            band_a=model.band_a,
            band_b=model.band_b,
            band_c=model.band_c,
            mql_fit=model.mql_fit,
            mql_engagement=model.mql_engagement,
            mql_total=model.mql_total,
        )

    @property
    def half_life_seconds(self) -> float:
        return self.half_life_days * DAY

    def growth(self, at: dt.datetime) -> float:
        """2^((at - epoch) / h): an engagement normalised to the epoch, divided by this, is the
        engagement at ``at``."""
        return float(2.0 ** ((at - self.epoch).total_seconds() / self.half_life_seconds))


def epoch_seconds(at: dt.datetime) -> float:
    return at.timestamp()


def normalised_weight(occurred: Any, params: Params) -> Any:
    """What one point earned at ``occurred`` (epoch seconds) weighs, normalised to the epoch."""
    return np.exp2((occurred - epoch_seconds(params.epoch)) / params.half_life_seconds)


def engagement_at(engagement_norm: Any, params: Params, at: dt.datetime) -> Any:
    """The engagement at ``at``, capped."""
    raw = np.asarray(engagement_norm, dtype=float) / params.growth(at)
    return _cap(raw, params.engagement_cap)


def total_of(fit: Any, engagement: Any, params: Params) -> Any:
    return _cap(
        np.asarray(fit, dtype=float) + np.asarray(engagement, dtype=float), params.total_cap
    )


def band_of(total: Any, params: Params) -> Any:
    """The band, A to D, of each total (an array of one-letter strings for an array)."""
    total = np.asarray(total, dtype=float)
    bands = np.where(
        total >= params.band_a,
        "A",
        np.where(total >= params.band_b, "B", np.where(total >= params.band_c, "C", "D")),
    )
    return bands if bands.ndim else str(bands)


def qualifies(fit: Any, engagement: Any, total: Any, params: Params) -> Any:
    """The MQL rule: (fit ≥ F and engagement ≥ E) or total ≥ T; an empty half never matches."""
    fit = np.asarray(fit, dtype=float)
    met = np.zeros(fit.shape, dtype=bool)
    if params.mql_fit is not None or params.mql_engagement is not None:
        both = np.ones(fit.shape, dtype=bool)
        if params.mql_fit is not None:
            both &= fit >= params.mql_fit
        if params.mql_engagement is not None:
            both &= np.asarray(engagement, dtype=float) >= params.mql_engagement
        met |= both
    if params.mql_total is not None:
        met |= np.asarray(total, dtype=float) >= params.mql_total
    return met if met.ndim else bool(met)


def cap_fit(fit: Any, params: Params) -> Any:
    return _cap(np.asarray(fit, dtype=float), params.fit_cap)


def _cap(values: Any, cap: float | None) -> Any:
    return values if cap is None else np.minimum(values, cap)
