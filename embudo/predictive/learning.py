"""The learning itself, on numpy arrays: choosing between a regularised logistic regression and
gradient boosting by cross-validation, the leakage guard, calibration, the held-out figures and
each contact's signed reasons."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.frozen import FrozenEstimator
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from embudo.predictive.features import FeatureSpec

CV_FOLDS = 3
# Model selection and the leakage guard look at this many training contacts at most: enough
# to rank two algorithms, and it keeps training on 100,000 contacts well under two minutes.
SELECTION_SAMPLE = 20_000
# The leakage guard's two tests (see docs/predictive.md).
LEAK_SINGLE_AUC = 0.95
LEAK_PERMUTATION_DROP = 0.10
SINGLE_FIELD_BINS = 20
TOP_REASONS = 5
# The guard shuffles each field in this many validation rows per fold (enough for a stable AUC).
PERMUTATION_ROWS = 3000
# From this many training contacts on, the base model is fitted once and calibrated on a slice
# kept aside; below it, on cross-validated predictions (four fits, cheap on small data).
CALIBRATION_SLICE_FROM = 50_000
CALIBRATION_SHARE = 0.2
# Gradient boosting is a bag of this many models, each seeing this share of the columns.
BAG_MEMBERS = 3
COLUMN_SHARE = 0.5


def logistic(seed: int) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", LogisticRegression(C=0.5, max_iter=2000)),
        ]
    )


class CategoryCodes(BaseEstimator, TransformerMixin):  # type: ignore[misc]
    """Each category field's one-hot columns folded back into one column of codes (NaN when
    blank or another value), so gradient boosting splits on categories natively: far fewer
    columns to histogram than one per value."""

    def __init__(self, groups: list[tuple[int, int]] | None = None) -> None:
        self.groups = groups or []

    def fit(self, x: np.ndarray, y: Any = None) -> CategoryCodes:
        return self

    def plain_columns(self, width: int) -> np.ndarray:
        keep = np.ones(width, dtype=bool)
        for start, stop in self.groups:
            keep[start:stop] = False
        return keep

    def transform(self, x: np.ndarray) -> np.ndarray:
        parts = [x[:, self.plain_columns(x.shape[1])]]
        for start, stop in self.groups:
            block = x[:, start:stop]
            codes = block.argmax(axis=1).astype(np.float32)
            codes[block.sum(axis=1) <= 0] = np.nan
            parts.append(codes.reshape(-1, 1))
        return np.hstack(parts)

    def categorical_mask(self, width: int) -> list[bool]:
        plain = int(self.plain_columns(width).sum())
        return [False] * plain + [True] * len(self.groups)


class BoostingBag(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A few gradient boosting models, each growing its trees from a different random share
    of the columns, whose log-odds are averaged. On the UCI bank data the bag ranks contacts a
    little better than one model and varies less from one split to the next (cross-validated
    on the training contacts; see docs/predictive.md)."""

    def __init__(
        self,
        members: int = BAG_MEMBERS,
        seed: int = 0,
        early_stopping: bool = False,
        categorical_features: list[bool] | None = None,
    ) -> None:
        self.members = members
        self.seed = seed
        self.early_stopping = early_stopping
        self.categorical_features = categorical_features

    def fit(self, x: np.ndarray, y: np.ndarray) -> BoostingBag:
        self.classes_ = np.unique(y)
        self.models_ = [
            HistGradientBoostingClassifier(
                learning_rate=0.08,
                max_iter=200,
                max_leaf_nodes=15,
                min_samples_leaf=40,
                l2_regularization=1.0,
                max_features=COLUMN_SHARE if self.members > 1 else 1.0,
                early_stopping=self.early_stopping,
                categorical_features=self.categorical_features,
                random_state=self.seed + member,
            ).fit(x, y)
            for member in range(self.members)
        ]
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.mean([model.decision_function(x) for model in self.models_], axis=0)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1.0 - p, p])

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(x) > 0).astype(int)]


def boosting(seed: int, n: int = 0, spec: FeatureSpec | None = None) -> Pipeline:
    groups = []
    width = 0
    if spec is not None:
        width = len(spec.columns)
        groups = [
            (s.start, s.stop)
            for f, s in zip(spec.fields, spec.slices(), strict=True)
            if f.kind == "category"
        ]
    codes = CategoryCodes(groups)
    return Pipeline(
        [
            ("codes", codes),
            (
                "model",
                BoostingBag(
                    seed=seed,
                    # Stops adding trees once a tenth of the rows kept aside stops improving.
                    early_stopping=n > 10_000,
                    categorical_features=codes.categorical_mask(width) if width else None,
                ),
            ),
        ]
    )


CANDIDATES = {"logistic": logistic, "boosting": boosting}


@dataclass
class LeakFlag:
    field: str
    label: str
    single_auc: float
    permutation_drop: float
    reason: str


@dataclass
class Selection:
    algorithm: str
    cv_auc: dict[str, float]
    single_auc: dict[str, float]
    permutation_drop: dict[str, float]
    flags: list[LeakFlag] = field(default_factory=list)


def _stratified_sample(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(y) <= size:
        return np.arange(len(y))
    rng = np.random.default_rng(seed)
    picked = []
    for label in (0, 1):
        where = np.flatnonzero(y == label)
        take = max(1, round(size * len(where) / len(y)))
        picked.append(rng.choice(where, size=min(take, len(where)), replace=False))
    return np.sort(np.concatenate(picked))


def select(spec: FeatureSpec, x: np.ndarray, y: np.ndarray, seed: int) -> Selection:
    """Cross-validate both candidates on (a sample of) the training rows; meanwhile measure, per
    field, how much the boosting model's AUC drops when that field's values are shuffled."""
    rows = _stratified_sample(y, SELECTION_SAMPLE, seed)
    xs, ys = x[rows], y[rows]
    folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
    scores: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    drops = np.zeros(len(spec.fields))
    rng = np.random.default_rng(seed)
    slices = spec.slices()
    for train, test in folds.split(xs, ys):
        for name in CANDIDATES:
            estimator = boosting(seed, len(train), spec) if name == "boosting" else logistic(seed)
            estimator.fit(xs[train], ys[train])
            raw = _raw_score(estimator, xs[test])
            scores[name].append(float(roc_auc_score(ys[test], raw)))
            if name == "boosting":
                probe = test[:PERMUTATION_ROWS]
                if len(np.unique(ys[probe])) < 2:
                    probe = test
                auc = float(roc_auc_score(ys[probe], raw[: len(probe)]))
                # Every field's shuffled copy in one prediction: far fewer calls into the model.
                shuffled = np.tile(xs[probe], (len(slices), 1))
                for i, columns in enumerate(slices):
                    copy = slice(i * len(probe), (i + 1) * len(probe))
                    shuffled[copy, columns] = xs[probe][rng.permutation(len(probe))][:, columns]
                permuted = _raw_score(estimator, shuffled).reshape(len(slices), len(probe))
                for i in range(len(slices)):
                    drops[i] += auc - float(roc_auc_score(ys[probe], permuted[i]))
    drops /= CV_FOLDS
    cv_auc = {name: float(np.mean(values)) for name, values in scores.items()}
    # Ties go to the logistic regression: simpler, and its reasons are exact.
    algorithm = max(cv_auc, key=lambda name: (round(cv_auc[name], 3), name == "logistic"))
    single = {
        f.key: single_field_auc(x[:, s], y, f.kind)
        for f, s in zip(spec.fields, slices, strict=True)
    }
    drop = {f.key: float(d) for f, d in zip(spec.fields, drops, strict=True)}
    flags = []
    for f in spec.fields:
        reasons = []
        if single[f.key] >= LEAK_SINGLE_AUC:
            reasons.append(f"alone it predicts the outcome with AUC {single[f.key]:.3f}")
        if drop[f.key] >= LEAK_PERMUTATION_DROP:
            reasons.append(f"the model leans on it: shuffling it costs {drop[f.key]:.3f} of AUC")
        if reasons:
            flags.append(LeakFlag(f.key, f.label, single[f.key], drop[f.key], "; ".join(reasons)))
    return Selection(algorithm, cv_auc, single, drop, flags)


def single_field_auc(columns: np.ndarray, y: np.ndarray, kind: str) -> float:
    """How well one field alone separates the outcomes: rows grouped by the field's value
    (quantile bins for numbers, a bin for "blank" — being blank can leak too), each group
    scored by its conversion rate. 0.5 is no signal, 1.0 perfect separation either way."""
    n = len(y)
    if kind == "category":
        filled = columns.sum(axis=1) > 0
        groups = np.where(filled, columns.argmax(axis=1), columns.shape[1])
    else:
        values = columns[:, -1].astype(np.float64)  # events: the "ever" count
        known = ~np.isnan(values)
        # At least ~30 contacts per bin: with fewer, a bin's rate is mostly noise and small
        # data would look "perfectly separated" by chance.
        bins = int(np.clip(known.sum() // 30, 2, SINGLE_FIELD_BINS))
        groups = np.full(n, bins, dtype=np.int64)
        if known.any():
            edges = np.unique(np.quantile(values[known], np.linspace(0, 1, bins + 1)))
            groups[known] = np.searchsorted(edges[1:-1], values[known], side="right")
    groups = groups.astype(np.int64)
    totals = np.bincount(groups)
    rates = np.bincount(groups, weights=y) / np.maximum(totals, 1)
    if len(np.unique(y)) < 2:
        return 0.5
    auc = float(roc_auc_score(y, rates[groups]))
    return max(auc, 1.0 - auc)


def _raw_score(estimator: Any, x: np.ndarray) -> np.ndarray:
    return np.asarray(estimator.decision_function(x), dtype=np.float64)


def fit(
    algorithm: str, spec: FeatureSpec, x: np.ndarray, y: np.ndarray, seed: int
) -> CalibratedClassifierCV:
    """The chosen algorithm fitted and its probabilities calibrated (isotonic with enough
    outcomes, else Platt's sigmoid). Small data: the base model is fitted on every training row
    and calibrated on cross-validated predictions. Large data: fitted once on 80 % and
    calibrated on the other 20 %, which keeps training on 100,000 contacts fast."""
    method = "sigmoid"

    def base(n: int) -> Any:
        return boosting(seed, n, spec) if algorithm == "boosting" else logistic(seed)

    if len(y) < CALIBRATION_SLICE_FROM:
        folds = StratifiedKFold(n_splits=CV_FOLDS, shuffle=True, random_state=seed)
        model = CalibratedClassifierCV(base(len(y)), method=method, cv=folds, ensemble=False)
        model.fit(x, y)
        return model
    rng = np.random.default_rng(seed)
    aside = np.zeros(len(y), dtype=bool)
    for label in (0, 1):
        where = np.flatnonzero(y == label)
        aside[rng.choice(where, size=int(len(where) * CALIBRATION_SHARE), replace=False)] = True
    fitted = base(int((~aside).sum())).fit(x[~aside], y[~aside])
    model = CalibratedClassifierCV(FrozenEstimator(fitted), method=method, ensemble=False)
    model.fit(x[aside], y[aside])
    return model


def base_estimator(model: CalibratedClassifierCV) -> Any:
    """The fitted model under the calibration (unwrapped when it was frozen)."""
    inner = model.calibrated_classifiers_[0].estimator
    return inner.estimator if isinstance(inner, FrozenEstimator) else inner


def probabilities(model: CalibratedClassifierCV, x: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float64)


def baselines(spec: FeatureSpec, x: np.ndarray) -> None:
    """Record in the spec each field's baseline: the most common category (or none), the
    median number, no events."""
    for f, columns in zip(spec.fields, spec.slices(), strict=True):
        block = x[:, columns]
        if f.kind == "category":
            counts = block.sum(axis=0)
            blank = len(block) - counts.sum()
            base = np.zeros(f.width)
            if counts.size and counts.max() > blank:
                base[int(counts.argmax())] = 1.0
            f.baseline = base.tolist()
        elif f.kind == "events":
            f.baseline = [0.0] * f.width
        else:
            known = block[~np.isnan(block[:, 0]), 0]
            f.baseline = [float(np.median(known)) if known.size else 0.0]


def explain(
    model: CalibratedClassifierCV, algorithm: str, spec: FeatureSpec, x: np.ndarray
) -> np.ndarray:
    """Each field's signed contribution to each contact's log-odds (rows x fields).

    Logistic regression: the sum over the field's columns of coefficient x standardised value,
    i.e. how far this contact's value moves it from an average contact. Boosting: the change in
    the model's log-odds when the field is set back to its baseline (the median, the most
    common category, no events), one extra prediction per field — cheap, and honest about what
    the model does with that field for this contact, though interactions are not split."""
    base = base_estimator(model)
    slices = spec.slices()
    out = np.zeros((len(x), len(spec.fields)))
    if algorithm == "logistic":
        z = base.named_steps["scale"].transform(base.named_steps["impute"].transform(x))
        per_column = z * base.named_steps["model"].coef_[0]
        for i, columns in enumerate(slices):
            out[:, i] = per_column[:, columns].sum(axis=1)
        return out
    raw = _raw_score(base, x)
    # Only the rows whose value is not already the baseline can change (the others contribute
    # nothing), and all the changed copies go to the model in one prediction.
    copies, owners = [], []
    for i, (f, columns) in enumerate(zip(spec.fields, slices, strict=True)):
        baseline = np.asarray(f.baseline, dtype=x.dtype)
        rows = np.flatnonzero(~np.all(x[:, columns] == baseline, axis=1))
        if rows.size:
            copy = x[rows]
            copy[:, columns] = baseline
            copies.append(copy)
            owners.append((i, rows))
    if copies:
        changed = _raw_score(base, np.vstack(copies))
        start = 0
        for i, rows in owners:
            out[rows, i] = raw[rows] - changed[start : start + len(rows)]
            start += len(rows)
    return out


def top_reasons(
    spec: FeatureSpec, x: np.ndarray, contributions: np.ndarray, count: int = TOP_REASONS
) -> list[list[dict[str, Any]]]:
    """The ``count`` strongest contributions per contact, signed, strongest first, each with
    the field's value in words; contributions too small to matter are left out."""
    order = np.argsort(-np.abs(contributions), axis=1)[:, :count]
    slices = spec.slices()
    result = []
    for row, picks in enumerate(order):
        reasons = []
        for i in picks:
            value = float(contributions[row, i])
            if abs(value) < 0.01:
                continue
            f = spec.fields[i]
            reasons.append(
                {
                    "field": f.key,
                    "label": f.label,
                    "value": describe(f, x[row, slices[i]]),
                    "contribution": round(value, 4),
                }
            )
        result.append(reasons)
    return result


def describe(f: Any, values: np.ndarray) -> str:
    if f.kind == "category":
        filled = np.flatnonzero(values > 0)
        return f.categories[int(filled[0])] if filled.size else "—"
    if f.kind == "events":
        return f"{int(values[-2])} in 90 days, {int(values[-1])} in all"
    value = values[0]
    if np.isnan(value):
        return "—"
    if f.kind == "boolean":
        return "yes" if value else "no"
    return f"{value:g}"


# -- figures ------------------------------------------------------------------------------------


def evaluate(y: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    """AUC, log loss, Brier score, a calibration table and conversion by score decile."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    base_rate = float(y.mean()) if len(y) else 0.0
    figures: dict[str, Any] = {
        "contacts": len(y),
        "positives": int(y.sum()),
        "base_rate": base_rate,
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None,
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
    }
    figures["calibration"] = calibration_table(y, p)
    figures["deciles"] = decile_table(y, p)
    return figures


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    which = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        mask = which == b
        if mask.any():
            table.append(
                {
                    "from": b / bins,
                    "to": (b + 1) / bins,
                    "contacts": int(mask.sum()),
                    "predicted": float(p[mask].mean()),
                    "observed": float(y[mask].mean()),
                }
            )
    return table


def decile_table(y: np.ndarray, score: np.ndarray) -> list[dict[str, Any]]:
    """Decile 1 holds the highest scores; lift is the decile's conversion over the base rate."""
    if not len(y):
        return []
    order = np.argsort(-score, kind="stable")
    base = float(y.mean()) or 1.0
    table = []
    for decile, part in enumerate(np.array_split(order, 10), start=1):
        if not len(part):
            continue
        rate = float(y[part].mean())
        table.append(
            {
                "decile": decile,
                "contacts": len(part),
                "min_score": float(score[part].min()),
                "max_score": float(score[part].max()),
                "converted": int(y[part].sum()),
                "conversion": rate,
                "lift": rate / base,
            }
        )
    return table


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start
