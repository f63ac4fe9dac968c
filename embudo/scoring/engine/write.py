"""Writing computed scores: only the rows whose score changed, with a history row each and
their bands, in slices; the pipeline told which scores changed; new MQLs promoted."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from django.db import connection
from django.db.models import QuerySet

from embudo import pipeline
from embudo.crm import actions as crm
from embudo.crm.models import LifecycleStage, TransitionCause
from embudo.db.columns import row_matrix
from embudo.scoring.arithmetic import Params, band_of, engagement_at, qualifies, total_of
from embudo.scoring.engine.compute import Computed, _matrix, _positions, _reusable_sql
from embudo.scoring.engine.plans import Plan, Rule
from embudo.scoring.models import ContactScore, ScoreHistory, ScoringModel

# Past this many half-lives since its epoch, a full rescore moves the model's epoch to now, so
# normalised engagement (which grows by 2x per half-life) stays far from overflowing.
REBASE_HALF_LIVES = 256
# Stages the MQL rule promotes from: it never moves anyone back down the funnel.
PROMOTABLE = (LifecycleStage.SUBSCRIBER, LifecycleStage.LEAD)
REASONS_KEPT = 5
# Score rows written per slice (see save).
WRITE_ROWS = 50_000
ID_CHUNK = 5_000


# -- writing ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What a computation changed."""

    contacts: int = 0
    changed: int = 0
    promoted: list[int] = field(default_factory=list)


def save(computed: Computed, *, cause: str, rebase: bool = False, promote: bool = True) -> Outcome:
    """Write the changed scores and their history, and promote new MQLs; call inside a
    transaction (the callers hold one), so a failure leaves the previous scores."""
    plan, now, params = computed.plan, computed.now, computed.plan.params
    ids = computed.ids
    old = _old_scores(plan, ids)
    new_params = params
    if rebase:
        # The model moves its epoch to now: old values are re-expressed against it.
        new_params = _rebased(params, now)
        factor = params.growth(now)
        computed.engagement_norm = computed.engagement_norm / factor
        computed.contributions[:, len(plan.fit_rules) :] /= factor
        ScoringModel.objects.filter(pk=plan.model_id).update(epoch=now)
        old.engagement_norm = old.engagement_norm / factor

    fit, norm = computed.fit, computed.engagement_norm
    engagement = engagement_at(norm, new_params, now)
    total = total_of(fit, engagement, new_params)
    met = qualifies(fit, engagement, total, new_params)

    old_engagement = engagement_at(old.engagement_norm, new_params, now)
    old_met = qualifies(
        old.fit, old_engagement, total_of(old.fit, old_engagement, new_params), new_params
    )
    changed = ~np.isclose(fit, old.fit, rtol=1e-9, atol=1e-9) | ~np.isclose(
        norm, old.engagement_norm, rtol=1e-9, atol=1e-12
    )
    # Score rows exist only for contacts with something to say; a missing row reads as zero.
    changed &= old.exists | (fit != 0) | (norm != 0)
    flag_changed = old.exists & (old.qualified != met)
    write = changed | flag_changed
    crossing = met & ~(old.qualified & old_met)

    growth = new_params.growth(now)
    written = np.flatnonzero(write)
    # A slice at a time: the reasons' text and the rows handed to the driver are Python
    # objects, which for a million contacts at once would cost more memory than the rest.
    for start in range(0, len(written), WRITE_ROWS):
        rows = written[start : start + WRITE_ROWS]
        per_rule_now = computed.contributions[rows]
        per_rule_now[:, len(plan.fit_rules) :] /= growth
        reasons, named = _reasons(plan.rules, per_rule_now)
        _write_scores(
            plan, ids[rows], fit[rows], norm[rows], met[rows], old.row_id[rows], reasons, now
        )
        history_rows = np.flatnonzero(changed[rows])
        hist = rows[history_rows]
        _write_history(
            plan,
            ids[hist],
            fit[hist],
            engagement[hist],
            total[hist],
            band_of(total[hist], new_params),
            [named[i] for i in history_rows],
            now,
            cause,
        )
    pipeline.scores_changed(ids[changed].tolist())
    promoted = _promote(plan, ids[crossing].tolist(), now) if promote else []
    return Outcome(contacts=len(ids), changed=int(changed.sum()), promoted=promoted)


@dataclass
class _Old:
    exists: np.ndarray
    row_id: np.ndarray
    fit: np.ndarray
    engagement_norm: np.ndarray
    qualified: np.ndarray


def _old_scores(plan: Plan, ids: np.ndarray) -> _Old:
    n = len(ids)
    old = _Old(
        exists=np.zeros(n, dtype=bool),
        row_id=np.zeros(n, dtype=np.int64),
        fit=np.zeros(n),
        engagement_norm=np.zeros(n),
        qualified=np.zeros(n, dtype=bool),
    )
    columns = ["contact_id", "pk", "fit", "engagement_norm", "qualified"]

    def of(some: list[int]) -> QuerySet[Any]:
        return ContactScore.objects.filter(model_id=plan.model_id, contact_id__in=some)

    if n == 1:  # a new event: the query built once per model, reused with the contact's id
        built = _reusable_sql(
            (plan.model_id, "old"),
            lambda some, _at: of(some).values_list(*columns),
            int(ids[0]),
            dt.datetime.now(dt.UTC),
        )
        matrix = row_matrix(built, len(columns))
    elif n <= ID_CHUNK:
        matrix = _matrix(of(ids.tolist()), columns)
    else:
        matrix = _matrix(ContactScore.objects.filter(model_id=plan.model_id), columns)
    idx = _positions(ids, matrix[:, 0])
    known = idx >= 0
    idx, matrix = idx[known], matrix[known]
    old.exists[idx] = True
    old.row_id[idx] = matrix[:, 1].astype(np.int64)
    old.fit[idx] = matrix[:, 2]
    old.engagement_norm[idx] = matrix[:, 3]
    old.qualified[idx] = matrix[:, 4] > 0
    return old


def _rebased(params: Params, now: dt.datetime) -> Params:
    from dataclasses import replace

    return replace(params, epoch=now)


def needs_rebase(params: Params, now: dt.datetime) -> bool:
    return (now - params.epoch).total_seconds() / params.half_life_seconds > REBASE_HALF_LIVES


def _reasons(rules: Sequence[Rule], per_rule: np.ndarray) -> tuple[list[str], list[str]]:
    """Per contact, as JSON text: {rule id: points} kept on the score and [[rule name, points]]
    kept in the history, the largest few by size. Rows with the same number of reasons are
    formatted together by one %-format over the whole group (a loop per row would cost
    seconds per million contacts)."""
    n = len(per_rule)
    keep = min(REASONS_KEPT, per_rule.shape[1])
    as_json = np.full(n, "{}", dtype=object)
    named = np.full(n, "[]", dtype=object)
    if not keep or not n:
        return as_json.tolist(), named.tolist()
    order = np.argsort(-np.abs(per_rule), axis=1, kind="stable")[:, :keep]
    points = np.round(np.take_along_axis(per_rule, order, axis=1), 2)
    counts = (points != 0).sum(axis=1)
    rule_ids = np.array([r.id for r in rules], dtype=object)
    names = np.array([json.dumps(r.name, ensure_ascii=False) for r in rules], dtype=object)
    for count in range(1, keep + 1):
        rows = np.flatnonzero(counts == count)
        if not len(rows):
            continue
        values = points[rows, :count].astype(object)
        for labels, target, pattern, wrap in (
            (rule_ids, as_json, '"%d": %.2f', "{%s}"),
            (names, named, "[%s, %.2f]", "[%s]"),
        ):
            pairs = np.empty((len(rows), 2 * count), dtype=object)
            pairs[:, 0::2] = labels[order[rows, :count]]
            pairs[:, 1::2] = values
            template = wrap % ", ".join([pattern] * count) + "\n"
            text = (template * len(rows)) % tuple(pairs.ravel().tolist())
            target[rows] = text.split("\n")[:-1]
    return as_json.tolist(), named.tolist()


def _json_placeholder() -> str:
    return "CAST(%s AS jsonb)" if connection.vendor == "postgresql" else "%s"


def _write_scores(
    plan: Plan,
    contact_ids: np.ndarray,
    fit: np.ndarray,
    norm: np.ndarray,
    met: np.ndarray,
    row_ids: np.ndarray,
    reasons: list[str],
    now: dt.datetime,
) -> None:
    """Update the rows that exist and insert the others, with executemany: the ORM would build
    a model object per row, which a million-contact rescore cannot afford."""
    quote = connection.ops.quote_name
    table = quote(ContactScore._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    json_ph = _json_placeholder()
    existing = row_ids > 0
    with connection.cursor() as cursor:
        if existing.any():
            cursor.executemany(
                f"UPDATE {table} SET {quote('fit')} = %s, {quote('engagement_norm')} = %s, "
                f"{quote('reasons')} = {json_ph}, {quote('qualified')} = %s, "
                f"{quote('computed_at')} = %s WHERE {quote('id')} = %s",
                list(
                    zip(
                        fit[existing].tolist(),
                        norm[existing].tolist(),
                        [r for r, e in zip(reasons, existing, strict=True) if e],
                        met[existing].tolist(),
                        [at] * int(existing.sum()),
                        row_ids[existing].tolist(),
                        strict=True,
                    )
                ),
            )
        fresh = ~existing
        if fresh.any():
            cursor.executemany(
                f"INSERT INTO {table} ({quote('contact_id')}, {quote('model_id')}, {quote('fit')}, "
                f"{quote('engagement_norm')}, {quote('reasons')}, {quote('qualified')}, "
                f"{quote('computed_at')}) VALUES (%s, %s, %s, %s, {json_ph}, %s, %s)",
                list(
                    zip(
                        contact_ids[fresh].tolist(),
                        [plan.model_id] * int(fresh.sum()),
                        fit[fresh].tolist(),
                        norm[fresh].tolist(),
                        [r for r, f in zip(reasons, fresh, strict=True) if f],
                        met[fresh].tolist(),
                        [at] * int(fresh.sum()),
                        strict=True,
                    )
                ),
            )


def _write_history(
    plan: Plan,
    contact_ids: np.ndarray,
    fit: np.ndarray,
    engagement: np.ndarray,
    total: np.ndarray,
    bands: np.ndarray,
    named: list[str],
    now: dt.datetime,
    cause: str,
) -> None:
    if not len(contact_ids):
        return
    quote = connection.ops.quote_name
    table = quote(ScoreHistory._meta.db_table)
    at = connection.ops.adapt_datetimefield_value(now)
    columns = ", ".join(
        quote(c)
        for c in (
            "contact_id",
            "model_id",
            "at",
            "fit",
            "engagement",
            "total",
            "band",
            "reasons",
            "cause",
        )
    )
    count = len(contact_ids)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {table} ({columns}) VALUES (%s, %s, %s, %s, %s, %s, %s, "
            f"{_json_placeholder()}, %s)",
            list(
                zip(
                    contact_ids.tolist(),
                    [plan.model_id] * count,
                    [at] * count,
                    np.round(fit, 4).tolist(),
                    np.round(engagement, 4).tolist(),
                    np.round(total, 4).tolist(),
                    bands.tolist(),
                    named,
                    [cause[:32]] * count,
                    strict=True,
                )
            ),
        )


def _promote(plan: Plan, contact_ids: list[int], now: dt.datetime) -> list[int]:
    """Move the contacts that just met the MQL rule, if still subscribers or leads, to ``mql``."""
    if not contact_ids:
        return []
    return crm.move_contacts(
        LifecycleStage.MQL,
        contact_ids,
        cause=TransitionCause.RULE,
        at=now,
        note=f"scoring model {plan.key}",
        only_from=PROMOTABLE,
    )
