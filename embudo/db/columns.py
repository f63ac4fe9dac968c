"""A query's rows read straight from the database cursor: numeric columns as numpy arrays, and
plain tuples, without Django's per-row model or converter work.

Python's sqlite3 module hands rows over one at a time — a tuple and a number object per value,
about 1 µs a row —, which at the hundreds of thousands of rows a fresh report reads was most of
its time. On SQLite one aggregate over the query returns each column instead as a single
comma-separated text (``group_concat``, which steps every column's aggregate on the same row in
the same pass, so the columns stay aligned), and numpy parses the texts in C: the same values in
about half the time. Floats travel in ``quote()``'s 20 significant digits, so they come back
bit for bit. PostgreSQL, and a column longer than SQLite's longest text, are read a block of rows
at a time.

A queryset that can match nothing (``pk__in=[]``) has no SQL at all — Django raises
``EmptyResultSet`` rather than render it —, so every reader here answers "no rows" for it
without asking the database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from django.core.exceptions import EmptyResultSet
from django.db import DataError, connection
from django.db.models import QuerySet

# Rows fetched per round trip when reading a block at a time.
FETCH_ROWS = 100_000

# A query as a QuerySet, or as ready SQL and parameters.
Query = QuerySet[Any] | tuple[str, Sequence[Any]]


def query_sql(query: Query) -> tuple[str, Sequence[Any]] | None:
    """The SQL and parameters of ``query``, or None when it can match no row."""
    if isinstance(query, tuple):
        return query
    try:
        return query.query.sql_with_params()
    except EmptyResultSet:
        return None


def plain_rows(query: QuerySet[Any]) -> list[tuple[Any, ...]]:
    """The rows of ``query`` (a ``values_list``) as the driver gives them."""
    built = query_sql(query)
    if built is None:
        return []
    with connection.cursor() as cursor:
        cursor.execute(*built)
        return cursor.fetchall()


def row_blocks(query: Query, width: int, *, scan: str | None = None) -> Iterator[np.ndarray]:
    """The rows of ``query`` (``width`` numbers each) as float arrays, :data:`FETCH_ROWS` rows at
    a time, so that millions of rows never sit in memory as Python objects; a NULL reads as NaN.

    ``scan`` names a table SQLite should read straight through rather than through an index:
    reading most of a table by an index costs a random page read per row, measured 5 to 10 times
    slower than a plain scan (PostgreSQL's planner makes that call itself)."""
    built = query_sql(query)
    if built is None:
        return
    sql, params = built
    if scan and connection.vendor == "sqlite":
        table = connection.ops.quote_name(scan)
        sql = sql.replace(f"FROM {table}", f"FROM {table} NOT INDEXED", 1)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            flat = np.fromiter(
                itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
            )
            yield flat.reshape(len(rows), width)


def row_matrix(query: Query, width: int, *, scan: str | None = None) -> np.ndarray:
    """Every row of ``query`` as one float array of ``width`` columns (see :func:`row_blocks`)."""
    blocks = list(row_blocks(query, width, scan=scan))
    return np.concatenate(blocks) if blocks else np.zeros((0, width))


def numeric_columns(query: QuerySet[Any], dtypes: Sequence[npt.DTypeLike]) -> list[np.ndarray]:
    """The columns of ``query`` (a ``values_list``, one dtype per column) as arrays, in the
    order the database gives the rows; integer columns hold the nearest whole number. Every
    value must be a number: a NULL fails loudly."""
    built = query_sql(query)
    if built is None:
        return [np.zeros(0, dtype=dtype) for dtype in dtypes]
    sql, params = built
    if connection.vendor == "sqlite":
        found = _concatenated(sql, params, dtypes)
        if found is not None:
            return found
    table = row_matrix(built, len(dtypes))
    if np.isnan(table).any():
        raise ValueError(f"a column of this query has NULLs, which have no number: {sql}")
    return [_typed(table[:, i], dtype) for i, dtype in enumerate(dtypes)]


def _concatenated(
    sql: str, params: Sequence[Any], dtypes: Sequence[npt.DTypeLike]
) -> list[np.ndarray] | None:
    names = [f"c{i}" for i in range(len(dtypes))]
    texts = [
        f"group_concat(quote({name}))"
        if np.issubdtype(np.dtype(dtype), np.floating)
        else f"group_concat({name})"
        for name, dtype in zip(names, dtypes, strict=True)
    ]
    wrapped = f"WITH q({', '.join(names)}) AS ({sql}) SELECT count(*), {', '.join(texts)} FROM q"
    with connection.cursor() as cursor:
        try:
            cursor.execute(wrapped, params)
        except DataError:
            # A column's text over SQLite's limit (a billion bytes): read it row by row.
            return None
        count, *columns = cursor.fetchone()
    arrays = [
        np.fromstring(text or "", dtype=dtype, sep=",")
        for text, dtype in zip(columns, dtypes, strict=True)
    ]
    # group_concat skips NULLs, which would shift a column against the others.
    if any(array.size != count for array in arrays):
        raise ValueError(f"a column of this query has NULLs, which have no number: {sql}")
    return arrays


def _typed(values: npt.NDArray[np.float64], dtype: npt.DTypeLike) -> np.ndarray:
    """A column read as floats, in its dtype: whole numbers to the nearest (PostgreSQL gives a
    time's milliseconds with microseconds behind the point)."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        return np.rint(values).astype(dtype)
    return values.astype(dtype)
