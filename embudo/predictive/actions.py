"""Every write of the predictive app: training a version (or refusing to, keeping the previous
one), scoring open contacts in bulk, excluding fields, and deciding when to retrain."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from threadpoolctl import threadpool_limits

from embudo.accounts.actions import record_audit
from embudo.accounts.actors import Actor
from embudo.crm import queries as crm_queries
from embudo.crm.models import LifecycleStage, LifecycleTransition
from embudo.errors import EmbudoError
from embudo.predictive import features, learning
from embudo.predictive.models import Prediction, PredictiveModel, PredictiveSettings

logger = logging.getLogger(__name__)

# Fewer outcomes than this (or of either class) and a model would learn noise.
MIN_OUTCOMES = 40
MIN_PER_CLASS = 10
MIN_HOLDOUT_PER_CLASS = 5
DEFAULT_HOLDOUT = 0.2
# Open contacts scored at a time (explaining a chunk holds one copy of it per field).
SCORE_CHUNK = 5000
WRITE_BATCH = 2000
# A background retrain already asked for within this long is not asked for again.
RETRAIN_PENDING = dt.timedelta(hours=1)
OUTCOME_STAGES = (LifecycleStage.CUSTOMER, LifecycleStage.DISQUALIFIED)


class TrainingRefused(EmbudoError):
    """Training cannot run on this data; the message says why. The previous model stays."""


@dataclass
class TrainingResult:
    ok: bool
    message: str
    version: int | None = None
    algorithm: str = ""
    flags: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    excluded: list[str] = field(default_factory=list)
    scored: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def predictive_settings() -> PredictiveSettings:
    found = PredictiveSettings.objects.order_by("pk").first()
    return found or PredictiveSettings.objects.create()


def active_model() -> PredictiveModel | None:
    # The fitted model's bytes load only when scoring reads them.
    return PredictiveModel.objects.defer("estimator").filter(is_active=True).first()


# What the model reads, as fields of the condition language: a change to any of them changes
# a contact's prediction (see features.py).
FEATURE_FIELDS = frozenset(
    {
        "event",
        *features.CONTACT_CATEGORIES,
        "company.",
        "property.",
    }
)


def predict_later(contact_ids: Iterable[int]) -> None:
    """Rescore these contacts with the active model in the background."""
    ids = sorted(set(contact_ids))
    if ids:
        from embudo.predictive.tasks import rescore_contacts

        rescore_contacts.enqueue(ids)


def before_merge(primary: Any, duplicate: Any) -> None:
    """One prediction per contact: the duplicate's goes (the merged contact is rescored)."""
    Prediction.objects.filter(contact=duplicate).delete()


def has_active_model() -> bool:
    """Whether a model is active, read fresh (asked after every batch of events)."""
    return crm_queries.any_row(PredictiveModel, is_active=True)


def train_model(
    *,
    exclude: Sequence[str] = (),
    holdout: float = DEFAULT_HOLDOUT,
    seed: int = 0,
    actor: Actor = None,
) -> TrainingResult:
    """Learn a new version from every contact with a known outcome, make it the active one and
    score the open contacts with it. Too few outcomes, one class only, or nothing to learn from:
    the run is refused with the reason, and the active version (if any) stays."""
    timer = learning.Timer()
    settings_row = predictive_settings()
    excluded = sorted(set(settings_row.excluded_fields) | {e.strip() for e in exclude if e.strip()})
    try:
        if not 0 <= holdout < 0.9:
            raise TrainingRefused(_("the holdout share must be at least 0 and below 0.9"))
        # One OpenMP thread: on a shared machine boosting's spinning threads fight the other
        # processes and training runs several times slower (measured 181 s against 22 s).
        with threadpool_limits(limits=1):
            result = _train(excluded, holdout, seed, actor, timer)
    except TrainingRefused as refused:
        message = str(refused)
        _record_run(settings_row, ok=False, message=message)
        record_audit(
            "predictive.train_refused", "predictivemodel", actor=actor, changes={"reason": message}
        )
        kept = active_model()
        if kept is not None:
            message += " " + _("The active model (version %(version)s) is kept.") % {
                "version": kept.version
            }
        return TrainingResult(False, message, excluded=excluded, seconds=timer.seconds)
    return result


def _train(
    excluded: list[str], holdout: float, seed: int, actor: Actor, timer: learning.Timer
) -> TrainingResult:
    data = features.outcomes()
    positives = data.positives
    negatives = len(data) - positives
    if not len(data):
        raise TrainingRefused(
            _(
                "No contact has a known outcome yet: the model learns from contacts that became "
                "customers and contacts that were disqualified or lost all their deals."
            )
        )
    if len(data) < MIN_OUTCOMES or min(positives, negatives) < MIN_PER_CLASS:
        if positives == 0 or negatives == 0:
            raise TrainingRefused(
                _(
                    "Only one kind of outcome is known (%(positives)s customers, %(negatives)s "
                    "disqualified or lost): the model needs both to learn the difference."
                )
                % {"positives": positives, "negatives": negatives}
            )
        raise TrainingRefused(
            _(
                "Too few outcomes to learn from: %(positives)s customers and %(negatives)s "
                "disqualified or lost; at least %(total)s in all and %(each)s of each are needed."
            )
            % {
                "positives": positives,
                "negatives": negatives,
                "total": MIN_OUTCOMES,
                "each": MIN_PER_CLASS,
            }
        )
    train_rows, test_rows = _split(data.labels, holdout, seed)
    # Every contact's fields are read once, for choosing the fields and for the matrix.
    table = features.read_fields(data.contact_ids, features.candidate_fields(excluded))
    spec = features.spec_from(table, train_rows, excluded=excluded)
    if not spec.fields:
        raise TrainingRefused(
            _("There is nothing to learn from: no properties, source or events are known.")
        )
    x = features.matrix(spec, data.contact_ids, data.at, table)
    y = data.labels.astype(np.int64)
    x_train, y_train = x[train_rows], y[train_rows]
    learning.baselines(spec, x_train)
    selection = learning.select(spec, x_train, y_train, seed)
    estimator = learning.fit(selection.algorithm, spec, x_train, y_train, seed)
    metrics: dict[str, Any] = {
        "seed": seed,
        "holdout_share": holdout,
        "cv_auc": selection.cv_auc,
        "single_field_auc": selection.single_auc,
        "permutation_drop": selection.permutation_drop,
        "leakage_flags": [asdict(flag) for flag in selection.flags],
        "training": {"contacts": len(train_rows), "positives": int(y_train.sum())},
        "holdout": None,
    }
    if len(test_rows):
        metrics["holdout"] = learning.evaluate(
            y[test_rows], learning.probabilities(estimator, x[test_rows])
        )
    metrics["train_seconds"] = timer.seconds
    with transaction.atomic():
        PredictiveModel.objects.filter(is_active=True).update(is_active=False)
        model = PredictiveModel.objects.create(
            created_by=actor if getattr(actor, "is_authenticated", False) else None,
            algorithm=selection.algorithm,
            features=spec.to_json(),
            excluded_fields=excluded,
            metrics=metrics,
            outcomes=len(data),
            positives=positives,
            estimator=pickle.dumps(estimator, protocol=pickle.HIGHEST_PROTOCOL),
            is_active=True,
        )
        settings_row = predictive_settings()
        message = _("Version %(version)s trained (%(algorithm)s) on %(count)s outcomes.") % {
            "version": model.version,
            "algorithm": model.get_algorithm_display(),
            "count": len(train_rows),
        }
        _record_run(settings_row, ok=True, message=message, clear_pending=True)
        record_audit(
            "predictive.train",
            "predictivemodel",
            model.pk,
            actor=actor,
            changes={
                "algorithm": model.algorithm,
                "excluded": excluded,
                "outcomes": len(data),
                "flags": [flag.field for flag in selection.flags],
            },
        )
    scored = score_open_contacts(model)
    metrics["seconds"] = timer.seconds
    PredictiveModel.objects.filter(pk=model.pk).update(metrics=metrics)
    return TrainingResult(
        True,
        message,
        version=model.version,
        algorithm=model.algorithm,
        flags=metrics["leakage_flags"],
        metrics=metrics,
        excluded=excluded,
        scored=scored,
        seconds=timer.seconds,
    )


def _split(labels: np.ndarray, holdout: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Training and held-out row numbers, stratified by outcome, reproducible by seed."""
    everything = np.arange(len(labels))
    if holdout <= 0:
        return everything, np.array([], dtype=np.int64)
    rng = np.random.default_rng(seed)
    test = []
    for label in (0, 1):
        where = np.flatnonzero(labels == label)
        take = round(len(where) * holdout)
        if take < MIN_HOLDOUT_PER_CLASS or len(where) - take < MIN_PER_CLASS:
            raise TrainingRefused(
                _(
                    "Too few outcomes to hold %(share)s of them out for testing; train with a "
                    "smaller --holdout, or 0 to report cross-validated figures only."
                )
                % {"share": f"{holdout:.0%}"}
            )
        test.append(rng.choice(where, size=take, replace=False))
    test_rows = np.sort(np.concatenate(test))
    train_rows = np.setdiff1d(everything, test_rows, assume_unique=True)
    return train_rows, test_rows


def _record_run(
    settings_row: PredictiveSettings, *, ok: bool, message: str, clear_pending: bool = False
) -> None:
    now = timezone.now()
    changes: dict[str, Any] = {
        "last_run_at": now,
        "last_run_ok": ok,
        "last_run_message": message,
        "updated_at": now,
    }
    if clear_pending or not ok:
        changes["retrain_enqueued_at"] = None
    PredictiveSettings.objects.filter(pk=settings_row.pk).update(**changes)


# -- scoring ------------------------------------------------------------------------------------


def load_estimator(model: PredictiveModel) -> Any:
    # The bytes were written by train_model on this database; nothing else writes them.
    return pickle.loads(bytes(model.estimator))


def score_open_contacts(model: PredictiveModel) -> int:
    """Score every open contact with ``model``, a chunk at a time (each chunk one short write),
    then drop the predictions of contacts that are no longer open."""
    ids = np.fromiter(
        features.open_contacts().order_by("pk").values_list("pk", flat=True).iterator(50_000),
        dtype=np.int64,
    )
    started = timezone.now()
    scored = _score(model, ids)
    Prediction.objects.filter(scored_at__lt=started).delete()
    Prediction.objects.exclude(model=model).delete()
    return scored


def score_contacts(contact_ids: Iterable[int]) -> int:
    """Rescore these contacts with the active model (after a change or new events); a contact
    no longer open loses its prediction."""
    model = active_model()
    wanted = sorted(set(contact_ids))
    if model is None or not wanted:
        return 0
    open_ids: set[int] = set()
    # In chunks: an import can hand over more ids than one SQL statement may carry.
    for start in range(0, len(wanted), features.CHUNK):
        chunk = wanted[start : start + features.CHUNK]
        found = set(features.open_contacts().filter(pk__in=chunk).values_list("pk", flat=True))
        Prediction.objects.filter(contact_id__in=[i for i in chunk if i not in found]).delete()
        open_ids |= found
    return _score(model, np.array(sorted(open_ids), dtype=np.int64))


def _score(model: PredictiveModel, ids: np.ndarray) -> int:
    if not len(ids):
        return 0
    spec = features.FeatureSpec.from_json(model.features)
    estimator = load_estimator(model)
    now = features.now_epoch()
    with threadpool_limits(limits=1):
        _score_chunks(model, spec, estimator, ids, now)
    return len(ids)


def _score_chunks(
    model: PredictiveModel, spec: features.FeatureSpec, estimator: Any, ids: np.ndarray, now: float
) -> None:
    for start in range(0, len(ids), SCORE_CHUNK):
        chunk = ids[start : start + SCORE_CHUNK]
        x = features.matrix(spec, chunk, np.full(len(chunk), now))
        p = learning.probabilities(estimator, x)
        reasons = learning.top_reasons(
            spec, x, learning.explain(estimator, model.algorithm, spec, x)
        )
        when = timezone.now()
        rows = [
            Prediction(
                contact_id=int(contact_id),
                model=model,
                probability=float(prob),
                reasons=why,
                scored_at=when,
            )
            for contact_id, prob, why in zip(chunk.tolist(), p.tolist(), reasons, strict=True)
        ]
        with transaction.atomic():
            Prediction.objects.bulk_create(
                rows,
                batch_size=WRITE_BATCH,
                update_conflicts=True,
                unique_fields=["contact"],
                update_fields=["model", "probability", "reasons", "scored_at"],
            )


# -- settings -----------------------------------------------------------------------------------


def set_excluded_fields(fields: Sequence[str], *, actor: Actor = None) -> list[str]:
    """Keep these fields out of every future training run (the active model is unchanged until
    the next run)."""
    cleaned = sorted({f.strip() for f in fields if f and f.strip()})
    with transaction.atomic():
        settings_row = predictive_settings()
        before = list(settings_row.excluded_fields)
        PredictiveSettings.objects.filter(pk=settings_row.pk).update(
            excluded_fields=cleaned, updated_at=timezone.now()
        )
        record_audit(
            "predictive.exclusions",
            "predictivesettings",
            settings_row.pk,
            actor=actor,
            changes={"before": before, "after": cleaned},
        )
    return cleaned


def activate_version(model: PredictiveModel, *, actor: Actor = None) -> PredictiveModel:
    """Make an earlier (or later) version the active one again and rescore with it."""
    with transaction.atomic():
        PredictiveModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        PredictiveModel.objects.filter(pk=model.pk).update(is_active=True)
        record_audit("predictive.activate", "predictivemodel", model.pk, actor=actor)
    model.is_active = True
    score_open_contacts(model)
    return model


# -- background retraining ----------------------------------------------------------------------


def new_outcomes_since(model: PredictiveModel) -> int:
    return LifecycleTransition.objects.filter(
        to_stage__in=OUTCOME_STAGES, changed_at__gt=model.created_at
    ).count()


def retrain_if_due() -> bool:
    """Ask for a background retrain once enough outcomes arrived since the active version.

    Only once a first version exists (an admin trains that one on purpose), and not again while
    one is pending."""
    model = active_model()
    if model is None:
        return False
    settings_row = predictive_settings()
    now = timezone.now()
    pending = settings_row.retrain_enqueued_at
    if pending is not None and now - pending < RETRAIN_PENDING:
        return False
    if new_outcomes_since(model) < settings_row.retrain_after:
        return False
    from embudo.predictive.tasks import retrain

    claimed = PredictiveSettings.objects.filter(
        pk=settings_row.pk, retrain_enqueued_at=pending
    ).update(retrain_enqueued_at=now)
    if claimed:
        transaction.on_commit(lambda: retrain.enqueue(), robust=True)
    return bool(claimed)
