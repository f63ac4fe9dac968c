"""Data stamps: a token per source table that changes whenever a row of it is written, so the
reports can keep what they read from that table in memory until it changes.

On SQLite, triggers on the tables the reports read (lifecycle history, touchpoints, won deals
and their contacts) give the table's stamp a new random token on every insert, delete and
relevant update, whoever writes (actions, bulk imports, the admin, raw SQL). A token is random
rather than counted so that a rolled-back write, which restores the old token, can never hand a
later, different write the same token. SQLite has one writer at a time, so the stamp row costs
writers no waiting; on PostgreSQL one stamp row would make every writer of those tables wait
for each other (and could deadlock them), so there are no triggers there and nothing is kept:
every report reads afresh.

``remembered(key, tables, build)`` returns ``build()``'s value, computed again only when a
stamp of ``tables`` changed. The stamps are read before ``build()`` reads the data, so a kept
value is never older than the stamps it is kept under.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
from django.db import DEFAULT_DB_ALIAS, connection, connections

from embudo import caches

STAMP_TABLE = "analytics_datastamp"

# Table → the writes that change what the reports read: inserts, deletes and updates of the
# listed columns (None: of any column). A contact or company matters to the reports only
# through the lifecycle history, which stamps its own inserts and deletes, so only the updates
# of the columns the breakdowns read count there (not every score change).
ALL = ("INSERT", "DELETE", "UPDATE")
WATCHED: dict[str, tuple[tuple[str, ...], tuple[str, ...] | None]] = {
    "crm_lifecycletransition": (ALL, None),
    "tracking_touchpoint": (ALL, ("contact_id", "occurred_at", "channel", "campaign_id")),
    "deals_deal": (ALL, ("status", "closed_at", "amount_reporting")),
    "deals_deal_contacts": (ALL, None),
    "crm_contact": (
        ("UPDATE",),
        ("original_source", "original_campaign", "owner_id", "company_id"),
    ),
    "crm_company": (("UPDATE",), ("industry", "country", "city", "employees", "properties")),
}
TRIGGER_PREFIX = "analytics_stamp_"
_TRIGGERS = sum(len(events) for events, _columns in WATCHED.values())

# A handful of entries: the dashboard's period for its reads (history, journeys, stage counts),
# a few other periods besides. Least recently used go first.
_KEPT_ENTRIES = 12
_kept: OrderedDict[tuple[Any, ...], tuple[tuple[int, ...], Any]] = OrderedDict()
_lock = threading.Lock()


def install(using: str = DEFAULT_DB_ALIAS) -> None:
    """Create the stamp rows and triggers if missing (SQLite only), and renew every token.

    Run after every migration: a table that SQLite's schema editor rebuilt lost its triggers,
    and a data migration may have written without them."""
    database = connections[using]
    if database.vendor != "sqlite":
        return
    with database.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        tables = {row[0] for row in cursor.fetchall()}
        if STAMP_TABLE not in tables:
            return
        # Made anew each time, so that a changed list of columns takes effect.
        cursor.execute(
            f"SELECT name FROM sqlite_master WHERE type = 'trigger' "
            f"AND name LIKE '{TRIGGER_PREFIX}%'"
        )
        for (old,) in cursor.fetchall():
            cursor.execute(f"DROP TRIGGER {old}")
        for table, (events, columns) in WATCHED.items():
            if table not in tables:
                continue
            cursor.execute(
                f"INSERT OR IGNORE INTO {STAMP_TABLE} (name, token) VALUES (%s, random())",
                [table],
            )
            bump = f"UPDATE {STAMP_TABLE} SET token = random() WHERE name = '{table}'"
            for event in events:
                name = f"{TRIGGER_PREFIX}{table}_{event.lower()}"
                when = ""
                if event == "UPDATE" and columns:
                    # Django's save() sets every column: only a changed value counts.
                    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in columns)
                    when = f" OF {', '.join(columns)} ON {table} FOR EACH ROW WHEN {changed}"
                else:
                    when = f" ON {table} FOR EACH ROW"
                cursor.execute(f"CREATE TRIGGER {name} AFTER {event}{when} BEGIN {bump}; END")
        cursor.execute(f"UPDATE {STAMP_TABLE} SET token = random()")


def current(tables: tuple[str, ...]) -> tuple[int, ...] | None:
    """The tokens of ``tables`` now, or None when they cannot be trusted (not SQLite, a stamp or
    a trigger missing): then nothing is kept."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT name, token, (SELECT count(*) FROM sqlite_master WHERE type = 'trigger' "
            f"AND name LIKE '{TRIGGER_PREFIX}%') FROM {STAMP_TABLE}"
        )
        rows = cursor.fetchall()
    if not rows or rows[0][2] != _TRIGGERS:
        return None
    tokens = {name: token for name, token, _count in rows}
    if any(table not in tokens for table in tables):
        return None
    return tuple(tokens[table] for table in tables)


def remembered(key: tuple[Any, ...], tables: tuple[str, ...], build: Callable[[], Any]) -> Any:
    """``build()``, kept in this process until a write to one of ``tables`` changes its stamp.

    ``build`` must read only those tables (and settings fixed for the process): what else it
    read would be kept stale."""
    tokens = current(tables)
    if tokens is None:
        return build()
    full_key = (connection.alias, str(connection.settings_dict.get("NAME")), *key)
    with _lock:
        found = _kept.get(full_key)
        if found is not None and found[0] == tokens:
            _kept.move_to_end(full_key)
            return found[1]
    value = build()
    _freeze(value)
    with _lock:
        _kept[full_key] = (tokens, value)
        _kept.move_to_end(full_key)
        while len(_kept) > _KEPT_ENTRIES:
            _kept.popitem(last=False)
    return value


def _freeze(value: Any) -> None:
    """Make the arrays of a kept value read-only: one request changing them in place would
    change every later answer, so it fails loudly instead."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif isinstance(value, tuple | list):
        for item in value:
            _freeze(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for item in dataclasses.fields(value):
            _freeze(getattr(value, item.name))


def forget() -> None:
    """Drop everything kept (the bench measures cold runs with it)."""
    with _lock:
        _kept.clear()


caches.register("analytics.kept_reads", forget)
