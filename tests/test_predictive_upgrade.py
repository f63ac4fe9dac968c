"""Predictive scoring moved from `embudo.scoring.predictive` to `embudo.predictive`; tasks a
queue stored under the old module path before the upgrade still run after it."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django_tasks_db.models import DBTaskResult

from embudo.predictive import actions
from embudo.predictive.models import Prediction
from embudo.predictive.tasks import rescore_contacts, retrain
from tests.test_predictive import open_contact, world

pytestmark = pytest.mark.django_db

OLD_PATH = "embudo.scoring.predictive.tasks."


def queued_before_the_upgrade(task: Any, *args: Any) -> DBTaskResult:
    """Queue ``task`` as the previous release did: under the old module path."""
    result = task.enqueue(*args)
    row = DBTaskResult.objects.get(pk=result.id)
    row.task_path = OLD_PATH + row.task_path.rsplit(".", 1)[1]
    row.save(update_fields=["task_path"])
    return row


def test_a_rescore_queued_under_the_old_path_scores_the_contact_after_the_upgrade() -> None:
    world()
    actions.train_model(holdout=0, seed=1)
    newcomer = open_contact(seats=60, segment="enterprise")
    Prediction.objects.filter(contact=newcomer).delete()
    row = queued_before_the_upgrade(rescore_contacts, [newcomer.pk])
    assert row.task_path == "embudo.scoring.predictive.tasks.rescore_contacts"

    call_command("worker", "--batch")

    row.refresh_from_db()
    assert row.status == "SUCCESSFUL", row.traceback
    assert row.return_value == {"scored": 1}
    assert Prediction.objects.filter(contact=newcomer).exists()


def test_a_retrain_queued_under_the_old_path_trains_a_new_version_after_the_upgrade() -> None:
    world()
    first = actions.train_model(holdout=0, seed=1)
    row = queued_before_the_upgrade(retrain)

    call_command("worker", "--batch")

    row.refresh_from_db()
    assert row.status == "SUCCESSFUL", row.traceback
    model = actions.active_model()
    assert model is not None and model.pk == first.version + 1  # type: ignore[operator]
