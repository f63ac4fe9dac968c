"""The fresh reads behind the dashboard (nothing kept): numbers read from the database come back
the same however they travel, and the ROI's per-stage first touches follow the attribution
journeys' rules (recycled entries, the lookback, touches at an entry's moment)."""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections import Counter
from typing import Any

import numpy as np
import pytest
from django.db import connection
from django.db.models import F, FloatField, Value
from django.db.models.functions import Cast

from embudo.analytics.attribution import AttributionRequest
from embudo.analytics.attribution.journeys import _sorted
from embudo.analytics.funnel import FunnelRequest, load_history
from embudo.analytics.roi import roi
from embudo.crm.models import LifecycleTransition
from embudo.db.columns import numeric_columns
from embudo.db.functions import EpochSeconds
from embudo.tracking.models import Campaign, Touchpoint
from tests.journeys import T0, Person, Touch, days, journey, journeys, person

pytestmark = pytest.mark.django_db

CHANNELS = ("email", "paid_search", "organic_search", "paid_social")


def test_numbers_come_back_the_same_as_the_orm_reads_them() -> None:
    journey(
        person(
            at=T0, stage="lead", touches=[Touch(CHANNELS[i % 4], days(-i / 7)) for i in range(40)]
        )
    )
    query = (
        Touchpoint.objects.annotate(third=Cast(F("id"), FloatField()) / Value(3.0))
        .order_by("id")
        .values_list("id", "contact_id", "third")
    )

    ids, contacts, thirds = numeric_columns(query, [np.int64, np.int64, np.float64])

    expected = list(query)
    assert ids.tolist() == [row[0] for row in expected]
    assert contacts.tolist() == [row[1] for row in expected]
    # Floats bit for bit, not to 15 digits.
    assert thirds.tolist() == [row[2] for row in expected]


def test_a_column_longer_than_sqlites_longest_text_is_read_row_by_row() -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's text length limit")
    contact = journey(
        person(
            at=T0, stage="lead", touches=[Touch(CHANNELS[i % 4], days(-i / 50)) for i in range(300)]
        )
    )
    query = Touchpoint.objects.order_by("id").values_list("id", "contact_id")
    connection.ensure_connection()
    raw = connection.connection
    limit = raw.getlimit(sqlite3.SQLITE_LIMIT_LENGTH)
    raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1000)  # the ids alone take more
    try:
        ids, contacts = numeric_columns(query, [np.int64, np.int64])
    finally:
        raw.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, limit)

    assert ids.tolist() == [row[0] for row in query] and set(contacts.tolist()) == {contact.pk}


def test_a_null_among_the_numbers_fails_loudly() -> None:
    journey(person(at=T0, stage="lead", touches=[Touch("email", days(-1))]))
    Touchpoint.objects.create(channel="email", occurred_at=days(-2), source="test")

    with pytest.raises(ValueError, match="NULL"):
        numeric_columns(Touchpoint.objects.values_list("contact_id"), [np.int64])


def test_an_empty_query_gives_empty_columns() -> None:
    found = numeric_columns(Touchpoint.objects.values_list("id", "contact_id"), [np.int64] * 2)

    assert [column.size for column in found] == [0, 0]


def test_a_query_that_can_match_nothing_gives_empty_columns_without_asking_the_database(
    django_assert_num_queries: Any,
) -> None:
    nothing = Touchpoint.objects.filter(contact_id__in=[]).values_list("id", "contact_id")

    with django_assert_num_queries(0):
        ids, contacts = numeric_columns(nothing, [np.int64, np.float64])

    assert (ids.size, ids.dtype, contacts.size, contacts.dtype) == (0, np.int64, 0, np.float64)


def test_the_history_times_are_the_databases_epoch_seconds_to_the_last_bit() -> None:
    rng = random.Random(7)
    people: dict[str, Person] = {}
    for i in range(30):
        at = T0 - dt.timedelta(days=rng.uniform(0, 20), microseconds=rng.randrange(10**6))
        mql = ("mql", at + dt.timedelta(hours=rng.uniform(0, 100)))
        people[f"lead {i}"] = person(at=at, stage="lead", stages=[mql])
    journeys(people)

    history = load_history(FunnelRequest(days(-25).date(), days(5).date()))

    expected = list(
        LifecycleTransition.objects.annotate(t=EpochSeconds("changed_at", to_millisecond=True))
        .order_by("contact_id", "changed_at", "id")
        .values_list("t", flat=True)
    )
    assert history.at.tolist() == expected


def test_the_order_of_touchpoints_is_by_contact_then_time_then_id() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(1, 500))
        contact = rng.integers(0, int(rng.integers(1, 30)), n)
        time = rng.integers(0, int(rng.integers(1, 10)), n) * 1000  # many at the same moment
        ids = rng.permutation(n) + 1

        assert _sorted(contact, time, ids).tolist() == np.lexsort((ids, time, contact)).tolist()


def test_roi_credits_each_recycled_lead_to_the_first_touch_of_its_own_journey() -> None:
    start = days(-10)
    journeys(
        {
            "recycled": person(
                at=days(-7),
                stage="lead",
                stages=[("disqualified", days(-6)), ("lead", days(-3))],
                touches=[
                    Touch("email", days(-9)),
                    Touch("paid_search", days(-8)),
                    Touch(
                        "organic_search", days(-7)
                    ),  # at the first entry's moment: that journey's
                    Touch("paid_social", days(-5)),
                ],
            ),
            "late": person(
                at=days(-2),
                stage="lead",
                touches=[
                    Touch("email", days(-200)),  # beyond the 90-day lookback
                    Touch("paid_search", days(-1)),  # after becoming a lead
                ],
            ),
        }
    )

    result = roi(AttributionRequest(date_from=start.date(), date_to=days(0).date()))

    leads = {row.key: row.leads for row in result.rows if row.leads}
    assert leads == {"email": 1.0, "paid_social": 1.0}


@pytest.mark.parametrize("by", ["channel", "campaign"])
def test_roi_stage_counts_are_first_touch_over_each_entrys_journey(by: str) -> None:
    rng = random.Random(11)
    campaigns = [Campaign.objects.create(name=f"c{i}") for i in range(3)]
    stages = ["lead", "mql", "sql", "subscriber", "disqualified"]
    people: dict[str, Person] = {}
    for i in range(25):
        moments = sorted(
            T0 - dt.timedelta(days=rng.choice([0, 1, 2, 3, 5, 8, 13, 40, 100, 130]))
            for _ in range(rng.randrange(1, 6))
        )
        first = rng.choice(stages)
        moves = [(rng.choice(stages), at) for at in moments[1:]]
        touches = []
        for _ in range(rng.randrange(0, 8)):
            at = (
                rng.choice(moments)
                if rng.random() < 0.3
                else T0 - dt.timedelta(days=rng.choice([0, 0.5, 1, 2, 4, 9, 30, 95, 120]))
            )
            touches.append(Touch(rng.choice(CHANNELS), at, rng.choice([None, *campaigns])))
        people[f"contact {i}"] = person(at=moments[0], stage=first, stages=moves, touches=touches)
    journeys(people)
    period_start, period_end = days(-14), days(1)

    result = roi(AttributionRequest(date_from=period_start.date(), date_to=days(0).date(), by=by))

    for stage, field in (("lead", "leads"), ("mql", "mqls"), ("sql", "sqls")):
        expected = _first_touches_by_hand(stage, period_start, period_end, by)
        got = {row.key: getattr(row, field) for row in result.rows if getattr(row, field)}
        assert got == expected, stage


def _first_touches_by_hand(
    stage: str, start: dt.datetime, end: dt.datetime, by: str
) -> dict[str, float]:
    """Each entry into ``stage`` in the period: its contact's touchpoints after the contact's
    previous entry, up to and at its own moment, within 90 days; the earliest takes it."""
    entries = list(
        LifecycleTransition.objects.filter(to_stage=stage)
        .exclude(from_stage=stage)
        .order_by("contact_id", "changed_at", "id")
        .values_list("contact_id", "changed_at")
    )
    counts: Counter[str] = Counter()
    previous: dict[int, dt.datetime] = {}
    for contact_id, at in entries:
        since = previous.get(contact_id)
        previous[contact_id] = at
        if not start <= at < end:
            continue
        touches = [
            t
            for t in Touchpoint.objects.filter(contact_id=contact_id).order_by("occurred_at", "id")
            if (since is None or t.occurred_at > since)
            and at - dt.timedelta(days=90) <= t.occurred_at <= at
        ]
        if touches:
            first = touches[0]
            counts[first.channel if by == "channel" else str(first.campaign_id or "")] += 1
    return {key: float(n) for key, n in counts.items()}
