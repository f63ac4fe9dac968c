"""Database functions for date-time arithmetic the ORM lacks: a date-time as a number (seconds or
milliseconds since 1970, SQLite's Julian milliseconds) and the days between two date-times.

Reports and scoring read many times at once; numbers computed by the database travel faster
than Python datetimes and need no conversion per row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from django.db.models import FloatField, Func, IntegerField


class EpochSeconds(Func):
    """A date-time as seconds since 1970 (a float).

    SQLite's julianday() keeps milliseconds, so there the value is exact to the millisecond.
    PostgreSQL keeps microseconds; with ``to_millisecond`` they are rounded away, so both
    databases give the same float for the same stored time (the funnel compares times so).
    """

    output_field = FloatField()
    arity = 1

    def __init__(self, expression: Any, *, to_millisecond: bool = False) -> None:
        super().__init__(expression)
        self.to_millisecond = to_millisecond

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # The same stored time always gives the same float, and whole seconds are exact.
        template = "((julianday(%(expressions)s) - 2440587.5) * 86400.0)"
        return self.as_sql(compiler, connection, template=template, **extra)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        template = (
            "ROUND(EXTRACT(EPOCH FROM %(expressions)s)::numeric, 3)::double precision"
            if self.to_millisecond
            else "EXTRACT(EPOCH FROM %(expressions)s)::double precision"
        )
        return self.as_sql(compiler, connection, template=template, **extra)


class EpochMillis(Func):
    """A date-time as milliseconds since 1970 (a float), on SQLite and PostgreSQL.

    SQLite's date functions keep milliseconds, so times are compared to the millisecond; there
    the value is whole milliseconds (an integer, which travels from the database as fewer digits).
    """

    output_field = FloatField()
    arity = 1

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template=(
                "CAST(round((julianday(%(expressions)s) - 2440587.5) * 86400000.0) AS INTEGER)"
            ),
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM %(expressions)s) * 1000.0)::double precision",
            **extra,
        )


class JulianMillis(Func):
    """SQLite's own exact form of a date-time: whole milliseconds of the Julian day (its
    julianday() is this ÷ 86,400,000). As an integer a time travels from the database as a few
    digits, and :func:`epoch_of_julian_ms` turns it into :class:`EpochSeconds`' seconds with the
    very arithmetic SQLite would have done, so the seconds are the same to the last bit."""

    output_field = IntegerField()
    arity = 1
    template = "CAST(round(julianday(%(expressions)s) * 86400000.0) AS INTEGER)"


def epoch_of_julian_ms(julian_ms: np.ndarray) -> np.ndarray:
    return (julian_ms / 86400000.0 - 2440587.5) * 86400.0


class DaysBetween(Func):
    """Fractional days from ``start`` to ``end`` (two date-time columns), on SQLite and
    PostgreSQL."""

    output_field = FloatField()
    arity = 2

    def __init__(self, start: Any, end: Any) -> None:
        # Both templates below compute "first expression minus second".
        super().__init__(end, start)

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(julianday(%(expressions)s))",
            arg_joiner=") - julianday(",
            **extra,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler,
            connection,
            template="(EXTRACT(EPOCH FROM (%(expressions)s)) / 86400.0)",
            arg_joiner=" - ",
            **extra,
        )
