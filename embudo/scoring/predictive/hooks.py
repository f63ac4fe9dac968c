"""What the predictive app does when contacts change elsewhere: rescore them, and count new
outcomes towards a retrain. Registered from the app's ``ready()``; each runs after commit."""

from __future__ import annotations

from typing import Any

from embudo.scoring.predictive import actions


def _has_model() -> bool:
    return actions.has_active_model()


def contacts_changed(contact_ids: list[int]) -> None:
    if contact_ids and _has_model():
        from embudo.scoring.predictive.tasks import rescore_contacts

        rescore_contacts.enqueue(list(contact_ids))


def stage_changed(stage: str, contact_ids: list[int]) -> None:
    contacts_changed(contact_ids)
    if stage in actions.OUTCOME_STAGES:
        actions.retrain_if_due()


def import_finished(result: Any) -> None:
    if getattr(result, "kind", "") == "contacts" and _has_model():
        contacts_changed(list(getattr(result, "changed_ids", [])))
        actions.retrain_if_due()


def before_merge(primary: Any, duplicate: Any) -> None:
    """One prediction per contact: the duplicate's goes (the merged contact is rescored)."""
    from embudo.scoring.predictive.models import Prediction

    Prediction.objects.filter(contact=duplicate).delete()
