"""Predictive scoring moved from `embudo.scoring.predictive` to `embudo.predictive`; tasks a
queue stored under the old module path before the upgrade still run after it.

The worker finds a queued task by importing its stored path (`DBTaskResult.task` for the
database queue, RQ's job function for Redis); these tests run the task found that way. (The
database worker itself closes the connection between tasks, which a test transaction on
PostgreSQL cannot survive; `tests/test_tasks_worker.py` runs it as a real process.)"""

from __future__ import annotations

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from embudo.predictive import actions
from embudo.predictive.models import Prediction
from embudo.predictive.tasks import rescore_contacts, retrain
from tests.test_predictive import open_contact, world

pytestmark = pytest.mark.django_db

OLD_PATH = "embudo.scoring.predictive.tasks."


def run_as_the_worker_would(row: DBTaskResult) -> Any:
    task = row.task  # imports row.task_path, as the worker does
    return task.call(*row.args_kwargs["args"], **row.args_kwargs["kwargs"])


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

    outcome = run_as_the_worker_would(row)

    assert outcome == {"scored": 1}
    assert Prediction.objects.filter(contact=newcomer).exists()


def test_a_retrain_queued_under_the_old_path_trains_a_new_version_after_the_upgrade() -> None:
    world()
    first = actions.train_model(holdout=0, seed=1)
    row = queued_before_the_upgrade(retrain)

    outcome = run_as_the_worker_would(row)

    assert outcome["ok"] is True, outcome["message"]
    model = actions.active_model()
    assert model is not None and model.pk == first.version + 1  # type: ignore[operator]
