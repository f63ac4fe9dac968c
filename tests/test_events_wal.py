"""The ingest path keeps SQLite's WAL from growing without end: a checkpoint runs outside the
write turn every so many pages, and the process's next turn finishes it before writing, so the
write can start the WAL over (see ``embudo.db.writer.ingest_turn``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from django.db import connection

from embudo.db import writer
from embudo.tracking.actions import record_events
from embudo.tracking.models import Event, EventSource

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's WAL only"),
]


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement SQLite runs on this thread's connection, in order."""
    monkeypatch.setattr(writer, "_unchecked", 0)
    monkeypatch.setattr(writer, "_finish_checkpoint", False)
    # Three single-event commits are enough to call for a checkpoint.
    monkeypatch.setattr(writer, "CHECKPOINT_PAGES", 3 * writer.PAGES_PER_COMMIT)
    connection.ensure_connection()
    seen: list[str] = []
    connection.connection.set_trace_callback(seen.append)
    yield seen
    connection.connection.set_trace_callback(None)


def one_event() -> None:
    event = {"event_id": str(uuid.uuid4()), "type": "page_view", "visitor_id": "v-wal"}
    assert record_events([event], source=EventSource.API, grouped=True).accepted == 1


def test_a_checkpoint_outside_the_turn_is_finished_by_the_next_turn_before_it_writes(
    statements: list[str],
) -> None:
    for _ in range(4):
        one_event()

    checkpoints = [i for i, sql in enumerate(statements) if "wal_checkpoint" in sql]
    inserts = [
        i for i, sql in enumerate(statements) if sql.startswith('INSERT INTO "tracking_event"')
    ]
    commits = [i for i, sql in enumerate(statements) if sql == "COMMIT"]
    assert len(inserts) == 4 and Event.objects.count() == 4
    # After the third commit, outside the turn; then inside the fourth turn, before its insert.
    assert len(checkpoints) == 2
    assert commits[2] < checkpoints[0] < inserts[3]
    assert commits[2] < checkpoints[1] < inserts[3]
    assert checkpoints[0] < checkpoints[1]
    assert not writer._finish_checkpoint
