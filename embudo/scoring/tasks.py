"""Background scoring: a model's full rescore after its rules change, and big batches of
contacts (an import, a large event batch). Tasks take ids and are safe to run twice."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from embudo.scoring.models import ScoringModel


@task()
def rescore_model_task(model_id: int, version: int) -> dict[str, Any]:
    """Rescore every contact under the model, unless it changed again since (a newer task
    carries the newer version) or was deleted."""
    from embudo.scoring import actions

    model = ScoringModel.objects.filter(pk=model_id).first()
    if model is None:
        return {"rescored": False, "reason": f"scoring model {model_id} no longer exists"}
    outcome = actions.rescore_model(model, version=version)
    if outcome is None:
        return {"rescored": False, "reason": f"model {model.key} changed again; a newer task runs"}
    return {
        "rescored": True,
        "contacts": outcome.contacts,
        "changed": outcome.changed,
        "promoted": len(outcome.promoted),
    }


@task()
def rescore_contacts_task(contact_ids: list[int], cause: str) -> dict[str, Any]:
    from embudo.scoring import engine

    outcomes = engine.rescore_contacts(contact_ids, cause=cause)
    return {key: {"changed": o.changed, "promoted": len(o.promoted)} for key, o in outcomes.items()}
