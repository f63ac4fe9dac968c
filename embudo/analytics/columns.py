"""A query's numeric columns as numpy arrays, read without a Python object per row.

Python's sqlite3 module hands rows over one at a time — a tuple and a number object per value,
about 1 µs a row —, which at the hundreds of thousands of rows a fresh report reads was most of
its time. On SQLite one aggregate over the query returns each column instead as a single
comma-separated text (``group_concat``, which steps every column's aggregate on the same row in
the same pass, so the columns stay aligned), and numpy parses the texts in C: the same values in
about half the time. Floats travel in ``quote()``'s 20 significant digits, so they come back
bit for bit. PostgreSQL, and a column longer than SQLite's longest text, are read a block of rows
at a time.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db import DataError, connection
from django.db.models import QuerySet

_FETCH_BLOCK = 100_000


def numeric_columns(query: QuerySet[Any], dtypes: Sequence[npt.DTypeLike]) -> list[np.ndarray]:
    """The columns of ``query`` (a ``values_list``, one dtype per column) as arrays, in the
    order the database gives the rows; integer columns hold the nearest whole number. Every
    value must be a number: a NULL fails loudly."""
    sql, params = query.query.sql_with_params()
    if connection.vendor == "sqlite":
        found = _concatenated(sql, params, dtypes)
        if found is not None:
            return found
    return _row_by_row(sql, params, dtypes)


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


def _row_by_row(
    sql: str, params: Sequence[Any], dtypes: Sequence[npt.DTypeLike]
) -> list[np.ndarray]:
    width = len(dtypes)
    blocks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(_FETCH_BLOCK):
            flat = np.fromiter(
                itertools.chain.from_iterable(rows), dtype=np.float64, count=len(rows) * width
            )
            blocks.append(flat.reshape(len(rows), width))
    table = np.concatenate(blocks) if blocks else np.zeros((0, width))
    if np.isnan(table).any():  # numpy reads a NULL as NaN
        raise ValueError(f"a column of this query has NULLs, which have no number: {sql}")
    return [_typed(table[:, i], dtype) for i, dtype in enumerate(dtypes)]


def _typed(values: npt.NDArray[np.float64], dtype: npt.DTypeLike) -> np.ndarray:
    """A column read as floats, in its dtype: whole numbers to the nearest (PostgreSQL gives a
    time's milliseconds with microseconds behind the point)."""
    if np.issubdtype(np.dtype(dtype), np.integer):
        return np.rint(values).astype(dtype)
    return values.astype(dtype)
