"""The update after each event (one contact, through the capture action and scoring's hook) gives
exactly the score a full rescore gives at the same moment: windows expire, caps hold, negative
points count, decay follows frozen time, and a rule changed anywhere applies to the next event."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest
from django.test import TestCase
from freezegun import freeze_time

from embudo.scoring import engine, queries
from embudo.scoring.engine import compute
from embudo.scoring.models import ContactScore, ScoreRule, ScoringModel
from tests.factories import (
    PRICING,
    event_rule,
    fit_rule,
    make_company,
    make_contact,
    make_scoring_model,
)
from tests.journeys import Event, journey

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 9, 0, 17, tzinfo=dt.UTC)


def event(contact: Any, event_type: str, at: dt.datetime, url: str = "") -> None:
    """One event by ``contact`` at ``at``, recorded at that moment; the after-commit hooks
    (scoring's among them) run as they do once a request's transaction commits."""
    with freeze_time(at), TestCase.captureOnCommitCallbacks(execute=True):
        journey(contact, events=[Event(event_type, at, url=url)])


def full_rescore(model: ScoringModel, contact: Any, at: dt.datetime) -> tuple[float, float]:
    """The contact's (fit, normalised engagement) from a full rescore at ``at`` (not saved)."""
    computed = engine.compute_all(engine.plan_for(model), at)
    row = int(np.searchsorted(computed.ids, contact.pk))
    assert computed.ids[row] == contact.pk
    return float(computed.fit[row]), float(computed.engagement_norm[row])


def stored(model: ScoringModel, contact: Any) -> tuple[float, float]:
    row = ContactScore.objects.get(model=model, contact=contact)
    return row.fit, row.engagement_norm


RULES = [
    fit_rule("company.industry", "eq", "Software", 20, name="Software"),
    fit_rule("created_at", "in_last_days", 10, 5, name="New contact"),
    event_rule("page_view", 3, repeatable=True, max_points=10, name="Visits"),
    event_rule({**PRICING, "within_days": 7}, 5, repeatable=True, max_points=15, name="Pricing"),
    event_rule("demo_request", 15, name="Demo"),
    event_rule("email_click", 2, repeatable=True, name="Clicks"),
    event_rule("unsubscribe", -12, repeatable=True, max_points=12, name="Unsubscribed"),
]

# (days after T0, event type, url): visits past the cap, pricing views expiring out of their
# 7-day window, a one-off twice, uncapped clicks, a negative rule, long gaps of decay.
STEPS = [
    (0.0, "page_view", "https://shop.example/pricing"),
    (0.1, "page_view", "https://shop.example/pricing"),
    (0.2, "page_view", "https://shop.example/pricing"),
    (0.3, "page_view", "https://shop.example/pricing"),
    (1.5, "email_click", ""),
    (2.0, "demo_request", ""),
    (6.9, "page_view", "https://shop.example/blog"),
    (7.05, "page_view", "https://shop.example/home"),  # the first pricing views have expired
    (9.0, "unsubscribe", ""),
    (10.5, "email_click", ""),  # no longer a new contact
    (12.0, "demo_request", ""),
    (15.0, "unsubscribe", ""),
    (40.0, "page_view", "https://shop.example/pricing"),
]


def test_the_update_after_each_event_equals_a_full_rescore_at_that_moment() -> None:
    with freeze_time(T0):
        model = make_scoring_model(RULES, half_life_days=5, engagement_cap=30)
        contact = make_contact(at=T0, company_id=make_company(industry="Software").pk)
    for days, event_type, url in STEPS:
        at = T0 + dt.timedelta(days=days)
        event(contact, event_type, at, url)
        fit, norm = stored(model, contact)
        expected_fit, expected_norm = full_rescore(model, contact, at)
        assert fit == pytest.approx(expected_fit, abs=1e-9), f"fit after day {days}"
        assert norm == pytest.approx(expected_norm, rel=1e-9, abs=1e-12), f"after day {days}"


def test_a_window_that_expired_counts_nothing_when_the_next_event_comes() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [
                event_rule({**PRICING, "within_days": 7}, 5, repeatable=True, name="Pricing"),
                event_rule("page_view", 1, repeatable=True, name="Visits"),
            ],
            half_life_days=10,
        )
        contact = make_contact(at=T0)
    for hours in (0, 1, 2):
        event(contact, "page_view", T0 + dt.timedelta(hours=hours), url="https://x.io/pricing")
    assert ContactScore.objects.get(model=model, contact=contact).reasons  # pricing counted
    later = T0 + dt.timedelta(days=8)
    event(contact, "page_view", later, url="https://x.io/about")

    row = ContactScore.objects.get(model=model, contact=contact)
    reasons = {ScoreRule.objects.get(pk=int(k)).name: v for k, v in row.reasons.items()}
    assert "Pricing" not in reasons  # three views, all older than 7 days
    # Four visits, three of them 8 days old, at a 10-day half-life.
    assert reasons["Visits"] == pytest.approx(1 + 3 * 2 ** (-8 / 10), abs=0.01)


def test_decay_with_frozen_time_reads_right_between_events() -> None:
    with freeze_time(T0):
        model = make_scoring_model(
            [event_rule("form_submit", 20, repeatable=True)], half_life_days=7
        )
        contact = make_contact(at=T0)
    event(contact, "form_submit", T0)
    event(contact, "form_submit", T0 + dt.timedelta(days=7))

    with freeze_time(T0 + dt.timedelta(days=14)):
        (score,) = [s for s in queries.contact_scores(contact.pk) if s.model_key == model.key]
    # 20 points 14 days ago and 20 points 7 days ago, halving every 7 days: 5 + 10.
    assert score.engagement == pytest.approx(15)


def test_a_rule_changed_in_the_database_applies_to_the_next_event() -> None:
    with freeze_time(T0):
        model = make_scoring_model([event_rule("email_click", 2, repeatable=True, name="Clicks")])
        contact = make_contact(at=T0)
    event(contact, "email_click", T0)
    assert list(ContactScore.objects.get(model=model, contact=contact).reasons.values()) == [
        pytest.approx(2)
    ]
    # Changed behind the actions' back (no new version): the next event must still see it.
    ScoreRule.objects.filter(model=model).update(points=7)
    event(contact, "email_click", T0)

    row = ContactScore.objects.get(model=model, contact=contact)
    assert list(row.reasons.values()) == [pytest.approx(14)]


def test_the_one_contact_queries_are_built_once_for_any_moment() -> None:
    with freeze_time(T0):
        make_scoring_model(RULES, half_life_days=5)
        contact = make_contact(at=T0)
    compute._SQL.clear()
    event(contact, "page_view", T0, url="https://shop.example/pricing")
    templates = dict(compute._SQL)
    event(contact, "page_view", T0 + dt.timedelta(days=3, hours=5), url="https://x.io/")

    # The fit query, the events query and the stored score's, each with its moments' slots.
    assert len(templates) == 3 and all(value is not None for value in templates.values())
    assert templates == compute._SQL  # nothing built again at the later moment
