"""The SQLite writer turn: writers of many small transactions take turns in a queue the kernel
wakes at once, the WAL checkpoint kept out of their commits; and :class:`GroupCommit`, which lets
concurrent writers of one process share one turn and one transaction.

On PostgreSQL (and inside an open transaction) the turn does nothing: writers there need none.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from django.db import connection

P = TypeVar("P")

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


@contextmanager
def no_checkpoint_at_commit() -> Iterator[None]:
    """On SQLite, keep the WAL checkpoint out of this transaction's commit.

    Writers in :func:`ingest_turn` store with SQLite's automatic checkpoint paused and
    checkpoint every so many events instead, so the WAL keeps growing past the automatic
    threshold, and the next commit that has it on pays for copying the WAL into the database: a
    rescore right after each event was that commit, adding 10 to 60 ms to one update in about
    fifty. Hooks running at this commit may write again, hence no lock here, only the setting,
    put back after."""
    if connection.vendor != "sqlite" or connection.in_atomic_block:
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    (pages,) = raw.execute("PRAGMA wal_autocheckpoint").fetchone()
    raw.execute("PRAGMA wal_autocheckpoint=0")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
