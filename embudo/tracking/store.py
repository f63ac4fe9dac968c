"""The ingest hot path's SQL: one multi-row statement per batch for events, visitors and
touchpoints.

Raw SQL through Django's connection, because it was measured to matter (see bench/ingest.py):
the ORM's ``bulk_create(ignore_conflicts=True)`` cannot say which rows were new, and building a
model instance per event costs more than the insert itself. The statements use
``INSERT … ON CONFLICT … RETURNING``, which SQLite (3.35+) and PostgreSQL both understand, so a
retried event is skipped by the database and counted exactly as a duplicate.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from django.db import connection

from embudo.crm.models import Contact
from embudo.tracking.models import Event, Touchpoint, Visitor

EVENT_COLUMNS = (
    "id",
    "type",
    "contact_id",
    "visitor_id",
    "properties",
    "url",
    "referrer",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "occurred_at",
    "received_at",
    "source",
)
TOUCHPOINT_COLUMNS = (
    "contact_id",
    "visitor_id",
    "channel",
    "source",
    "medium",
    "campaign_id",
    "term",
    "content",
    "landing_url",
    "occurred_at",
    "event_id",
)
Row = tuple[Any, ...]
P = TypeVar("P")
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class Dialect:
    """How values are written for the current database: SQLite keeps UUIDs as 32 hex characters
    and date-times as naive UTC text; PostgreSQL takes them natively.

    Build one with :meth:`current` (kept on the connection) rather than per call.
    """

    @classmethod
    def current(cls) -> Dialect:
        dialect = getattr(connection, "_embudo_dialect", None)
        if dialect is None or dialect.raw is not connection.connection:
            dialect = cls()
            connection._embudo_dialect = dialect  # type: ignore[attr-defined]
        return dialect

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw = connection.connection
        self.native = connection.vendor == "postgresql"
        self.quote = connection.ops.quote_name
        if self.native:
            from psycopg.types.json import Jsonb

            self._jsonb = Jsonb
            self.max_params = 65535
        else:
            raw = connection.connection
            self.max_params = int(raw.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))

    def uuid(self, hex_id: str) -> Any:
        return uuid.UUID(hex_id) if self.native else hex_id

    def uuid_text(self, stored: Any) -> str:
        """The 32-hex form of a UUID as the database hands it back."""
        return stored.hex if isinstance(stored, uuid.UUID) else str(stored).replace("-", "")

    def datetime(self, value: dt.datetime) -> Any:
        if self.native:
            return value
        if value.utcoffset():
            value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None).isoformat(" ")

    def json(self, value: Any) -> Any:
        if self.native:
            return self._jsonb(value)
        return _JSON.encode(value) if value else "{}"

    def execute(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Run one statement written with ``%s`` placeholders and return its rows.

        On SQLite the statement goes to the driver directly: Django's wrapper rewrites ``%s`` to
        ``?`` with a regular expression over the whole text, which for a 500-row VALUES list
        costs more than SQLite parsing it.
        """
        if self.native:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                return cursor.fetchall() if cursor.description else []
        cursor = connection.connection.execute(sql.replace("%s", "?"), params)
        try:
            return cursor.fetchall()
        finally:
            cursor.close()

    def insert(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[Row],
        suffix: str = "",
    ) -> list[Row]:
        """Multi-row INSERTs of ``rows`` (as many per statement as the driver allows), each
        ending in ``suffix`` (an ON CONFLICT or RETURNING clause); the rows they return."""
        names = ", ".join(self.quote(c) for c in columns)
        placeholder = "(" + ", ".join(["%s"] * len(columns)) + ")"
        per_statement = max(1, min(1000, self.max_params // len(columns)))
        returned: list[Row] = []
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            sql = (
                f"INSERT INTO {self.quote(table)} ({names}) VALUES "
                + ", ".join([placeholder] * len(chunk))
                + suffix
            )
            returned.extend(self.execute(sql, [value for row in chunk for value in row]))
        return returned


def insert_events(dialect: Dialect, rows: Sequence[Row]) -> set[str]:
    """Insert the rows that are new; return the 32-hex ids of those actually inserted."""
    if len(rows) > 1:
        # In id order each statement walks the primary-key index once, left to right.
        rows = sorted(rows, key=_first)
    returned = dialect.insert(
        Event._meta.db_table, EVENT_COLUMNS, rows, " ON CONFLICT (id) DO NOTHING RETURNING id"
    )
    if dialect.native:
        return {row[0].hex for row in returned}
    return {row[0] for row in returned}


def _first(row: Row) -> Any:
    return row[0]


def insert_touchpoints(dialect: Dialect, rows: Sequence[Row]) -> None:
    dialect.insert(Touchpoint._meta.db_table, TOUCHPOINT_COLUMNS, rows)


def touch_visitors(
    dialect: Dialect, visitor_ids: Iterable[str], seen_at: dt.datetime
) -> dict[str, int | None]:
    """Record that these visitors were seen; return each one's contact (None: anonymous).

    An upsert rather than a read: on PostgreSQL it takes the visitor's row lock, so an
    identification committing at the same moment is either seen here or sees our events.
    """
    ordered = sorted(set(visitor_ids))  # one lock order for every batch: no deadlocks
    if not ordered:
        return {}
    when = dialect.datetime(seen_at)
    returned = dialect.insert(
        Visitor._meta.db_table,
        ("id", "first_seen_at", "last_seen_at"),
        [(vid, when, when) for vid in ordered],
        " ON CONFLICT (id) DO UPDATE SET last_seen_at = excluded.last_seen_at"
        " RETURNING id, contact_id",
    )
    return dict(returned)  # type: ignore[arg-type]


def contacts_by(dialect: Dialect, column: str, values: Iterable[Any]) -> dict[Any, int]:
    """``{value: contact pk}`` for the contacts whose ``column`` (id, email or external_id) is
    one of ``values``; one query per 1,000 values."""
    wanted = list(values)
    found: dict[Any, int] = {}
    table = dialect.quote(Contact._meta.db_table)
    name = dialect.quote(column)
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        sql = f"SELECT {name}, id FROM {table} WHERE {name} IN ({', '.join(['%s'] * len(chunk))})"
        found.update(dialect.execute(sql, chunk))  # type: ignore[arg-type]
    return found


_thread_lock = threading.Lock()
_lock_files: dict[str, int] = {}
# WAL pages this process's ingest commits wrote since it last checkpointed (see ingest_turn),
# estimated: a commit writes a few pages whatever its size (the leaves of the events table and
# of each index it touched, the visitor's), and a big batch about one more page per ten events.
_unchecked = 0
PAGES_PER_COMMIT = 8
EVENTS_PER_PAGE = 10
CHECKPOINT_PAGES = 4_000  # about 16 MB of WAL
# Set after a checkpoint outside the turn: the next turn finishes it (see ingest_turn).
_finish_checkpoint = False


@dataclass
class Turn:
    """A writer's turn; ``events`` says how many events it wrote (for the WAL checkpoint), and
    may be set inside the turn by a writer that learns it only then."""

    events: int


@contextmanager
def ingest_turn(events: int = 1) -> Iterator[Turn]:
    """On SQLite, wait for this writer's turn before BEGIN, in a queue the kernel wakes at once,
    and keep the WAL checkpoint out of the turn.

    SQLite lets one writer in at a time and makes the others poll with growing sleeps (1, 2,
    5… ms) while they wait; many small ingest transactions from several threads and processes
    then spend more time asleep than writing. A thread lock and an ``flock`` on a file beside the
    database hand the turn straight to the next ingest writer instead. And a commit that crosses
    SQLite's automatic checkpoint threshold copies the WAL into the database (with fsyncs) while
    still holding the turn; here automatic checkpoints are paused for the ingest commit, and every
    ``CHECKPOINT_PAGES`` pages of WAL (estimated from the commits and events) a PASSIVE
    checkpoint runs after the turn is handed on (writers carry on meanwhile). Other writers are
    unaffected. Inside an already open transaction this does nothing (the lock is ours).

    That checkpoint cannot finish while other writers append to the WAL, and SQLite starts the
    WAL over from its beginning only after a finished one: under steady load the WAL would grow
    without end (hundreds of MB in seconds), and every page read looks through a longer WAL
    index. So the process's next turn, before it writes, checkpoints the few frames appended
    meanwhile; with nobody else writing that one finishes, and the write starts the WAL over.
    """
    global _unchecked, _finish_checkpoint
    turn = Turn(events)
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield turn
        return
    name = str(connection.settings_dict["NAME"])
    path = f"{name}-ingest.lock" if os.path.isabs(name) else ""
    connection.ensure_connection()
    raw = connection.connection
    checkpoint = False
    with _thread_lock:
        fd = -1
        if path:  # an in-memory test database needs no more than the thread lock
            fd = _lock_files.get(path, -1)
            if fd < 0:
                fd = _lock_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # whatever fails from here on, the turn is handed on
            if _finish_checkpoint:
                _finish_checkpoint = False
                raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            raw.execute("PRAGMA wal_autocheckpoint=0")
            yield turn
        finally:
            raw.execute("PRAGMA wal_autocheckpoint=1000")
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_UN)
            if turn.events:
                _unchecked += PAGES_PER_COMMIT + turn.events // EVENTS_PER_PAGE
            if _unchecked >= CHECKPOINT_PAGES:
                _unchecked, checkpoint = 0, True
    if checkpoint:
        raw.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        _finish_checkpoint = True  # read by the next turn of any thread of this process


@dataclass(eq=False)
class Ticket(Generic[P]):
    """One caller's work in a :class:`GroupCommit`; ``error`` is set when it was not committed."""

    work: P
    key: Hashable
    size: int
    error: BaseException | None = None
    lead: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class GroupCommit(Generic[P]):
    """Concurrent writers of one process share one write turn and one transaction.

    Each caller queues its work and waits. The first caller that finds nobody writing becomes
    the leader: it waits for the write turn (while more callers queue up behind it), takes the
    whole queue — callers with the same ``key``, up to ``limit`` in size — and hands it to
    ``write``, which commits it in one transaction and marks each ticket's ``error`` if that
    ticket's work could not be committed. Then the leader passes leadership to the first caller
    still waiting (who starts the next transaction), runs ``after`` once for the committed
    tickets (the after-commit work: one call for the whole group), and only then wakes the
    callers it wrote for. Under no load a caller leads itself and waits for nobody; under load,
    one commit (and one trip through SQLite's lock) serves many callers. Nobody returns before
    the transaction holding their work has committed and its after-commit work has run.
    """

    def __init__(
        self,
        write: Callable[[list[Ticket[P]], Turn], None],
        limit: int,
        after: Callable[[list[Ticket[P]]], None] | None = None,
    ) -> None:
        self._write = write
        self._after = after
        self._limit = limit
        self._lock = threading.Lock()
        self._queue: list[Ticket[P]] = []
        self._leading = False

    def waiting(self) -> int:
        """How many callers are queued (the leader's own work included until it takes it)."""
        with self._lock:
            return len(self._queue)

    def run(self, work: P, key: Hashable, size: int) -> None:
        """Return once ``work`` is committed; raise what stopped it otherwise."""
        ticket = Ticket(work, key, size)
        with self._lock:
            self._queue.append(ticket)
            leader = not self._leading
            self._leading = True
        if not leader:
            ticket.done.wait()
            if not ticket.lead:
                if ticket.error is not None:
                    raise ticket.error
                return
        self._lead(ticket)
        if ticket.error is not None:
            raise ticket.error

    def _lead(self, mine: Ticket[P]) -> None:
        batch: list[Ticket[P]] = []
        try:
            with ingest_turn(0) as turn:
                batch = self._take(mine)
                self._write(batch, turn)
        except BaseException as error:  # every caller in the batch must hear it
            for ticket in batch or [mine]:
                ticket.error = ticket.error or error
        finally:
            with self._lock:
                if not batch:  # the turn itself failed: the leader leaves with its own work
                    self._queue.remove(mine)
                if self._queue:
                    following = self._queue[0]
                    following.lead = True
                    following.done.set()
                else:
                    self._leading = False
            try:
                committed = [ticket for ticket in batch if ticket.error is None]
                if committed and self._after is not None:
                    self._after(committed)
            finally:
                for ticket in batch:
                    if ticket is not mine:
                        ticket.done.set()

    def _take(self, mine: Ticket[P]) -> list[Ticket[P]]:
        """The leader's own ticket and the queued ones that can share its transaction."""
        with self._lock:
            batch, rest, size = [], [], 0
            for ticket in self._queue:
                if ticket is mine or (ticket.key == mine.key and size + ticket.size <= self._limit):
                    batch.append(ticket)
                    size += ticket.size
                else:
                    rest.append(ticket)
            self._queue = rest
        return batch
