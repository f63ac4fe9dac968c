"""Group commit of the events API: concurrent small requests share one transaction, and each
caller still gets its own exact answer, only once its events are committed.

The first caller is held at its write turn (the ``held_turn`` fixture) until the others queue up
behind it, so the grouping is certain rather than left to timing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from embudo import pipeline
from embudo.accounts.actions import create_api_key
from embudo.db import writer
from embudo.tracking.actions import IngestResult, ingest, record_events
from embudo.tracking.models import Event, EventSource
from tests.factories import make_contact, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def event(**fields: Any) -> dict[str, Any]:
    return {"event_id": str(uuid.uuid4()), "type": "page_view", **fields}


def api_events(items: list[dict[str, Any]]) -> Callable[[], IngestResult]:
    return lambda: record_events(items, source=EventSource.API, grouped=True)


@pytest.fixture
def held_turn(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Until the returned event is set, a group's leader waits before taking its write turn."""
    opened = threading.Event()
    real_turn = writer.ingest_turn

    @contextmanager
    def turn_after_gate(events: int = 1) -> Iterator[writer.Turn]:
        assert opened.wait(timeout=30), "the test never opened the gate"
        with real_turn(events) as turn:
            yield turn

    monkeypatch.setattr(writer, "ingest_turn", turn_after_gate)
    return opened


@pytest.fixture
def groups(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many callers each storing transaction held, in order."""
    sizes: list[int] = []
    real_store = ingest._store

    def counting_store(batch: list[Any]) -> None:
        sizes.append(len(batch))
        real_store(batch)

    monkeypatch.setattr(ingest, "_store", counting_store)
    return sizes


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.005)


def together(gate: threading.Event, calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread — the first one leads, held at its turn until all the
    others wait behind it — and return what each returned or raised."""
    outcomes: list[Any] = [None] * len(calls)

    def run(position: int, call: Callable[[], Any]) -> None:
        try:
            outcomes[position] = call()
        except Exception as error:  # the test inspects it
            outcomes[position] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    threads[0].start()
    wait_for(lambda: ingest._GROUP.waiting() == 1, "the first caller leads")
    for thread in threads[1:]:
        thread.start()
    wait_for(lambda: ingest._GROUP.waiting() == len(calls), "every caller is queued")
    gate.set()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a caller never got its answer"
    return outcomes


def test_concurrent_callers_share_one_commit_and_each_gets_its_own_counts(
    held_turn: threading.Event, groups: list[int]
) -> None:
    contact = make_contact()
    stored_before = event(contact_id=contact.pk)
    record_events([stored_before], source=EventSource.API)
    groups.clear()

    outcomes = together(
        held_turn,
        [
            api_events([event(contact_id=contact.pk) for _ in range(3)]),
            api_events([stored_before, event(contact_id=contact.pk)]),
            api_events([event(contact_id=999_999_999), event(email="new.person@acme.test")]),
            api_events([{"type": "", "visitor_id": "v-1"}, event(visitor_id="v-1")]),
        ],
    )

    assert groups == [4], "the four callers did not share one transaction"
    counts = [(o.accepted, o.duplicate, o.rejected) for o in outcomes]
    assert counts == [(3, 0, 0), (1, 1, 0), (1, 0, 1), (1, 0, 1)]
    assert outcomes[2].errors[0]["index"] == 0
    assert outcomes[2].errors[0]["reason"] == "no contact with id 999999999"
    assert outcomes[3].errors[0]["index"] == 0
    assert Event.objects.count() == 1 + 3 + 1 + 1 + 1
    assert Event.objects.filter(contact__email="new.person@acme.test").count() == 1


def test_the_same_event_from_concurrent_callers_is_stored_and_accepted_once(
    held_turn: threading.Event, groups: list[int]
) -> None:
    twice = event(visitor_id="v-shared")

    outcomes = together(
        held_turn,
        [
            api_events([twice, event(visitor_id="v-a")]),
            api_events([dict(twice), event(visitor_id="v-b")]),
            api_events([dict(twice)]),
        ],
    )

    assert groups == [3]
    assert sum(o.accepted for o in outcomes) == 3
    assert sum(o.duplicate for o in outcomes) == 2
    shared = uuid.UUID(twice["event_id"]).hex
    assert all(shared in o.event_ids for o in outcomes)
    assert Event.objects.count() == 3


def test_a_caller_whose_events_fail_is_not_acknowledged_and_the_others_are_stored(
    held_turn: threading.Event, groups: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_touchpoints = ingest._record_touchpoints

    def failing_on_poison(dialect: Any, events: list[Any]) -> set[int]:
        if any("poison" in e.url for e, _contact in events):
            raise RuntimeError("this caller's events cannot be stored")
        return real_touchpoints(dialect, events)

    monkeypatch.setattr(ingest, "_record_touchpoints", failing_on_poison)
    poisoned = event(visitor_id="v-p", url="https://acme.test/poison?utm_source=x")
    fine = [
        event(visitor_id="v-f1"),
        event(visitor_id="v-f2", url="https://acme.test/?utm_source=y"),
    ]

    outcomes = together(
        held_turn, [api_events([fine[0]]), api_events([poisoned]), api_events([fine[1]])]
    )

    assert isinstance(outcomes[1], RuntimeError)
    assert [outcomes[0].accepted, outcomes[2].accepted] == [1, 1]
    # Together first, which failed as a whole; then each caller on its own.
    assert groups == [3, 1, 1, 1]
    stored = {e.hex for e in Event.objects.values_list("id", flat=True)}
    assert stored == {uuid.UUID(e["event_id"]).hex for e in fine}


def test_when_the_shared_transaction_cannot_commit_no_caller_is_acknowledged(
    held_turn: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(contact_ids: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(ingest, "set_first_touch", broken)

    outcomes = together(
        held_turn,
        [api_events([event(visitor_id=f"v-{n}")]) for n in range(3)],
    )

    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert Event.objects.count() == 0


def test_after_events_hooks_hear_the_groups_contacts_once_committed(
    held_turn: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_contact(), make_contact()
    heard: list[tuple[list[int], int]] = []
    lock = threading.Lock()

    answered = threading.Event()

    def hook(moments: pipeline.Moments) -> None:
        # The events must already be committed, and no caller answered yet.
        contact_ids = sorted(moments.event_contacts)
        visible = Event.objects.filter(contact_id__in=contact_ids).count()
        with lock:
            heard.append((contact_ids, visible if not answered.is_set() else -1))

    def answer_then_mark(items: list[dict[str, Any]]) -> Callable[[], IngestResult]:
        def call() -> IngestResult:
            outcome = api_events(items)()
            answered.set()
            return outcome

        return call

    def failing_hook(moments: pipeline.Moments) -> None:
        raise RuntimeError("a broken reaction must not fail the request")

    monkeypatch.setattr(
        pipeline,
        "REACTIONS",
        (pipeline.Reaction("failing", failing_hook), pipeline.Reaction("spy", hook)),
    )

    outcomes = together(
        held_turn,
        [
            answer_then_mark([event(contact_id=first.pk), event(contact_id=first.pk)]),
            answer_then_mark([event(contact_id=second.pk)]),
            answer_then_mark([event(visitor_id="v-anonymous")]),
        ],
    )

    assert [o.accepted for o in outcomes] == [2, 1, 1]
    # One call for the whole group, before any caller was answered.
    assert heard == [([first.pk, second.pk], 3)]


def test_full_batches_share_a_transaction_up_to_the_group_limit(
    held_turn: threading.Event, groups: list[int]
) -> None:
    # Three requests of the largest size: two fit in one transaction, the third takes the next.
    batches = [[event(visitor_id=f"v-{n}-{i}") for i in range(ingest.MAX_BATCH)] for n in range(3)]
    assert 2 * ingest.MAX_BATCH <= ingest.GROUP_LIMIT < 3 * ingest.MAX_BATCH

    outcomes = together(held_turn, [api_events(batch) for batch in batches])

    assert groups == [2, 1]
    assert [o.accepted for o in outcomes] == [ingest.MAX_BATCH] * 3
    assert Event.objects.count() == 3 * ingest.MAX_BATCH


def test_requests_inside_a_transaction_are_stored_on_their_own(groups: list[int]) -> None:
    from django.db import transaction

    with transaction.atomic():
        outcome = record_events(
            [event(visitor_id="v-inside")], source=EventSource.API, grouped=True
        )

    assert outcome.accepted == 1
    assert ingest._GROUP.waiting() == 0
    assert Event.objects.count() == 1


def test_many_concurrent_single_event_requests_each_get_their_own_answer() -> None:
    key = create_api_key("load", ["ingest"], created_by=make_user("admin")).secret
    contact = make_contact()
    # Every id is sent by two different threads: one of them must hear "duplicate".
    ids = [str(uuid.uuid4()) for _ in range(40)]
    plans = [
        [*ids[n * 10 : n * 10 + 10], *ids[((n + 1) % 4) * 10 : ((n + 1) % 4) * 10 + 10]]
        for n in range(4)
    ]
    answers: list[list[dict[str, Any]]] = [[] for _ in plans]
    # Look the key up once first: the in-memory test database refuses (rather than queues) the
    # key's last-used stamp written by four threads at once while another one stores events.
    warm = Client().post(
        "/api/v1/events",
        data=json.dumps(event(visitor_id="v-warm")),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert warm.status_code == 200

    def send(position: int) -> None:
        client = Client()
        try:
            for event_id in plans[position]:
                response = client.post(
                    "/api/v1/events",
                    data=json.dumps(event(event_id=event_id, contact_id=contact.pk)),
                    content_type="application/json",
                    HTTP_AUTHORIZATION=f"Bearer {key}",
                )
                assert response.status_code == 200, response.content
                answers[position].append(response.json())
        finally:
            connection.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    flat = [answer for per_thread in answers for answer in per_thread]
    assert len(flat) == 80
    assert sum(a["accepted"] for a in flat) == 40
    assert sum(a["duplicate"] for a in flat) == 40
    assert all(a["accepted"] + a["duplicate"] == 1 for a in flat)
    assert Event.objects.filter(contact=contact).count() == 40
