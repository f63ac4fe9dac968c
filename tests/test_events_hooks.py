"""What runs once events are stored: scoring, personas and the predictive model each ask
whether they are configured, afresh for every batch, so a change made anywhere (another server
process, the CLI, the admin) applies to the very next batch; and where nothing is configured,
nothing is queued or computed."""

from __future__ import annotations

from typing import Any

import pytest
from django_tasks_db.models import DBTaskResult

from embudo.crm.models import Contact
from embudo.predictive.models import PredictiveModel
from embudo.scoring.models import ContactScore
from embudo.segments import actions as segments
from embudo.segments import queries as segment_queries
from embudo.tracking.actions import record_events
from tests.factories import event_rule, make_contact, make_scoring_model

pytestmark = pytest.mark.django_db

PRICING = {
    "event": {
        "type": "page_view",
        "where": [{"field": "url", "op": "contains", "value": "/pricing"}],
    },
    "count": {"op": "gte", "value": 3},
    "within_days": 14,
}


def views(emails: list[str], url: str = "https://x.io/pricing") -> None:
    result = record_events(
        [{"type": "page_view", "email": email, "url": url} for email in emails], source="api"
    )
    assert result.accepted == len(emails)


def queued(path_part: str) -> int:
    return DBTaskResult.objects.filter(task_path__contains=path_part).count()


def test_a_big_batch_queues_nothing_while_nothing_is_configured(
    django_capture_on_commit_callbacks: Any,
) -> None:
    emails = [f"person{n}@x.io" for n in range(250)]
    views(emails)  # creates the contacts (their own hooks are not the subject here)
    assert Contact.objects.count() == 250

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        views(emails)

    assert callbacks, "the hooks were called"
    # Over 200 contacts scoring would rescore in the background, had it a model to score with.
    assert queued("rescore") == 0
    assert not segment_queries.has_personas()


def test_a_scoring_model_enabled_between_two_batches_scores_the_next_one(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ana = make_contact(email="ana@x.io")
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])
    assert not ContactScore.objects.filter(contact=ana).exists()

    model = make_scoring_model([event_rule("page_view", 10)])
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])

    score = ContactScore.objects.get(contact=ana, model=model)
    assert score.engagement_norm > 0


def test_a_scoring_model_disabled_between_two_batches_no_longer_scores(
    django_capture_on_commit_callbacks: Any,
) -> None:
    model = make_scoring_model([event_rule("page_view", 10)])
    ana = make_contact(email="ana@x.io")
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])
    first = ContactScore.objects.get(contact=ana, model=model).computed_at

    type(model).objects.filter(pk=model.pk).update(enabled=False)  # as another process would
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])

    assert ContactScore.objects.get(contact=ana, model=model).computed_at == first


def test_a_persona_defined_between_two_batches_is_assigned_by_the_next_one(
    django_capture_on_commit_callbacks: Any,
) -> None:
    ana = make_contact(email="ana@x.io")
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io", "ana@x.io"])
    segments.create_persona({"name": "Engaged", "conditions": PRICING})
    assert segment_queries.persona_of(ana) is None  # two views of three

    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])

    assert segment_queries.persona_of(ana).name == "Engaged"  # type: ignore[union-attr]


def test_events_queue_predictive_rescoring_only_while_a_model_is_active(
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_contact(email="ana@x.io")
    version = PredictiveModel.objects.create(algorithm="logistic", estimator=b"")
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])
    assert queued("predictive") == 0

    PredictiveModel.objects.filter(pk=version.pk).update(is_active=True)
    with django_capture_on_commit_callbacks(execute=True):
        views(["ana@x.io"])

    assert queued("predictive") == 1
