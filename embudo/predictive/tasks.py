"""Background work: retraining once enough new outcomes arrived, and rescoring contacts whose
data changed. Both take plain ids and are safe to run twice."""

from __future__ import annotations

from typing import Any

from django_tasks import task

from embudo.predictive import actions


@task()
def retrain() -> dict[str, Any]:
    """Train a new version with the stored settings; a refused run keeps the active one."""
    result = actions.train_model()
    return {"ok": result.ok, "message": result.message, "version": result.version}


@task()
def rescore_contacts(contact_ids: list[int]) -> dict[str, Any]:
    return {"scored": actions.score_contacts(contact_ids)}
