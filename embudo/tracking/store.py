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
from collections.abc import Iterable, Sequence
from typing import Any

from embudo.crm.models import Contact
from embudo.db.bulk import Dialect, Row
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
