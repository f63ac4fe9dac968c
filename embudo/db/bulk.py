"""Bulk SQL the ORM does not offer at the speed bulk work needs: multi-row INSERTs (returning the
new ids, or ending in an ON CONFLICT clause), UPDATEs of many rows by id, and INSERT … SELECT.

Django's bulk_create spends most of its time compiling each value, and bulk_update writes one
CASE per field: on 100,000 contacts the two took minutes. :func:`insert_rows` and
:func:`update_rows` send the same rows as multi-row INSERTs and a prepared UPDATE run with
executemany, preparing values with Django's own adapters only where a type needs one (date-times,
JSON). :class:`Dialect` goes further for the ingest hot path: values written in the database's
own forms and statements handed to the SQLite driver directly.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any

from django.db import connection, models
from django.db.models import Model, QuerySet

from embudo.db.columns import query_sql

Row = tuple[Any, ...]
# Parameters per statement: SQLite's default limit is 32,766, PostgreSQL's 65,535.
MAX_PARAMS = 30_000
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def insert_batches(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    suffix: str = "",
    max_params: int = MAX_PARAMS,
    max_rows: int | None = None,
) -> Iterator[tuple[str, Sequence[Sequence[Any]]]]:
    """``rows`` cut into batches, each with its multi-row ``INSERT INTO table (columns) VALUES …``
    ending in ``suffix`` (a RETURNING or ON CONFLICT clause): as many rows per statement as
    ``max_params`` parameters (and ``max_rows``) allow. ``table`` and ``columns`` come quoted."""
    names = ", ".join(columns)
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    per_statement = max(1, max_params // len(columns))
    if max_rows is not None:
        per_statement = max(1, min(max_rows, per_statement))
    for start in range(0, len(rows), per_statement):
        batch = rows[start : start + per_statement]
        yield f"INSERT INTO {table} ({names}) VALUES {', '.join([one] * len(batch))}{suffix}", batch


# -- through Django's cursor, values adapted by field -------------------------------------------


def _preparers(model: type[Model], columns: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    preparers: list[Callable[[Any], Any] | None] = []
    for name in columns:
        model_field = model._meta.get_field(name)
        if isinstance(model_field, models.DateTimeField):
            adapt = connection.ops.adapt_datetimefield_value
            cache: dict[Any, Any] = {}

            def prepare(value: Any, adapt: Any = adapt, cache: dict[Any, Any] = cache) -> Any:
                if value not in cache:
                    cache[value] = adapt(value)
                return cache[value]

            preparers.append(prepare)
        elif isinstance(model_field, models.JSONField):
            preparers.append(partial(_adapt_json, encoder=model_field.encoder))
        else:
            preparers.append(None)
    return preparers


def _adapt_json(value: Any, encoder: Any) -> Any:
    # What JSONField.get_db_prep_save ends in, without its layers.
    return None if value is None else connection.ops.adapt_json_value(value, encoder)


def _column(model: type[Model], name: str) -> str:
    """The quoted database column of a field (``owner_id`` for ``owner``)."""
    model_field = model._meta.pk if name == "pk" else model._meta.get_field(name)
    return connection.ops.quote_name(str(getattr(model_field, "column", name)))


def _prepared(row: Sequence[Any], preparers: list[Callable[[Any], Any] | None]) -> list[Any]:
    return [v if p is None else p(v) for v, p in zip(row, preparers, strict=True)]


def insert_rows(
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    returning: bool = True,
) -> list[int]:
    """Insert ``rows`` (values in ``columns`` order, by field name); the new ids, in row order,
    when ``returning``."""
    if not rows:
        return []
    preparers = _preparers(model, columns)
    table = connection.ops.quote_name(model._meta.db_table)
    names = [_column(model, c) for c in columns]
    ids: list[int] = []
    with connection.cursor() as cursor:
        if returning and not connection.features.can_return_rows_from_bulk_insert:
            # An SQLite older than 3.35: one row per statement, its id from lastrowid.
            for sql, batch in insert_batches(table, names, rows, max_rows=1):
                cursor.execute(sql, _prepared(batch[0], preparers))
                ids.append(cursor.lastrowid)
            return ids
        suffix = f" RETURNING {_column(model, 'pk')}" if returning else ""
        for sql, batch in insert_batches(table, names, rows, suffix=suffix):
            cursor.execute(sql, [value for row in batch for value in _prepared(row, preparers)])
            if returning:
                ids.extend(row[0] for row in cursor.fetchall())
    return ids


def update_rows(
    model: type[Model], columns: Sequence[str], rows: Sequence[tuple[int, Sequence[Any]]]
) -> None:
    """Set ``columns`` of each row given as (id, values in ``columns`` order)."""
    if not rows:
        return
    preparers = _preparers(model, columns)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{_column(model, c)} = %s" for c in columns)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} SET {assignments} WHERE {_column(model, 'pk')} = %s"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, [[*_prepared(values, preparers), pk] for pk, values in rows])


def insert_select(model: type[Model], columns: Sequence[str], query: QuerySet[Any]) -> int:
    """Insert the rows ``query`` selects (a ``values_list`` in ``columns`` order) in one
    statement; how many it inserted.

    The ORM has no INSERT … SELECT; the SELECT (conditions and all) is the ORM's own, with its
    parameters, so only the table and column names are written here."""
    built = query_sql(query)
    if built is None:
        return 0
    select, params = built
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(_column(model, c) for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({names}) {select}", params)
        return max(cursor.rowcount, 0)


# -- straight to the driver, values in the database's own forms ---------------------------------


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
        """Multi-row INSERTs of ``rows`` (as many per statement as the driver allows, up to
        1,000), each ending in ``suffix`` (an ON CONFLICT or RETURNING clause); the rows they
        return."""
        returned: list[Row] = []
        for sql, batch in insert_batches(
            self.quote(table),
            [self.quote(c) for c in columns],
            rows,
            suffix=suffix,
            max_params=self.max_params,
            max_rows=1000,
        ):
            returned.extend(self.execute(sql, [value for row in batch for value in row]))
        return returned
