"""Computing scores, set-based: the SQL finds who matches each rule, numpy adds the points up.

:func:`rescore_model` recomputes every contact under one model (rules changed);
:func:`rescore_contacts` recomputes a few contacts under every enabled model (a new event, a
changed property). Both compute first and then write, in one transaction, only the rows whose
score changed, with a history row each; contacts that newly meet a model's MQL rule move to
``mql``. A failure before the commit leaves every previous score as it was.

``plans`` compiles a model's rules, ``compute`` computes the scores and ``write`` writes them;
the two entry points live here, and every public name is importable from here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from django.db import transaction
from django.utils import timezone

from embudo.db.writer import no_checkpoint_at_commit
from embudo.scoring.engine.compute import (
    HORIZON_HALF_LIVES,
    RULES_PER_PASS,
    Build,
    Computed,
    EventsBuild,
    compute_all,
    compute_some,
)
from embudo.scoring.engine.plans import (
    PLAN_COLUMNS,
    Plan,
    Rule,
    enabled_plans,
    event_q,
    fit_q,
    plan_for,
)
from embudo.scoring.engine.write import (
    ID_CHUNK,
    PROMOTABLE,
    REASONS_KEPT,
    REBASE_HALF_LIVES,
    WRITE_ROWS,
    Outcome,
    needs_rebase,
    save,
)
from embudo.scoring.models import ScoringModel

__all__ = [
    "HORIZON_HALF_LIVES",
    "ID_CHUNK",
    "PLAN_COLUMNS",
    "PROMOTABLE",
    "REASONS_KEPT",
    "REBASE_HALF_LIVES",
    "RULES_PER_PASS",
    "WRITE_ROWS",
    "Build",
    "Computed",
    "EventsBuild",
    "Outcome",
    "Plan",
    "Rule",
    "compute_all",
    "compute_some",
    "enabled_plans",
    "event_q",
    "fit_q",
    "needs_rebase",
    "plan_for",
    "rescore_contacts",
    "rescore_model",
    "save",
]


def _chunks(ids: Sequence[int]) -> Iterable[Sequence[int]]:
    for start in range(0, len(ids), ID_CHUNK):
        yield ids[start : start + ID_CHUNK]


# -- the two entry points -----------------------------------------------------------------------


def rescore_model(
    model: ScoringModel,
    *,
    now: dt.datetime | None = None,
    cause: str = "rules",
    promote: bool = True,
) -> Outcome:
    """Recompute every contact under ``model``; nothing is written unless all of it is."""
    now = now or timezone.now()
    plan = plan_for(model)
    computed = compute_all(plan, now)
    with transaction.atomic():
        return save(computed, cause=cause, rebase=needs_rebase(plan.params, now), promote=promote)


def rescore_contacts(
    contact_ids: Iterable[int], *, now: dt.datetime | None = None, cause: str = "update"
) -> dict[str, Outcome]:
    """Recompute these contacts under every enabled model."""
    now = now or timezone.now()
    ids = sorted(set(contact_ids))
    if not ids:
        return {}
    plans = enabled_plans()
    outcomes = {plan.key: Outcome() for plan in plans}
    for chunk in _chunks(ids):
        computed = [compute_some(plan, chunk, now) for plan in plans]
        with no_checkpoint_at_commit(), transaction.atomic():  # every model's rows at once
            saved = [save(c, cause=cause) for c in computed]
        for plan, outcome in zip(plans, saved, strict=True):
            total = outcomes[plan.key]
            total.contacts += outcome.contacts
            total.changed += outcome.changed
            total.promoted += outcome.promoted
    return outcomes
