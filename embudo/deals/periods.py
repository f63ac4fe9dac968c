"""Calendar periods for goals and reports: a month (2026-05), a quarter (2026-Q2), a year (2026)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from django.utils import timezone

from embudo.errors import EmbudoError

_MONTH = re.compile(r"^(\d{4})-(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})-?[Qq]([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


class PeriodError(EmbudoError, ValueError):
    """A period that cannot be read; the message shows the accepted forms."""


@dataclass(frozen=True)
class Period:
    kind: str  # month, quarter or year
    start: dt.date  # first day
    end: dt.date  # first day of the next period (exclusive)

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return f"{self.start.year}"

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.kind]

    def start_datetime(self) -> dt.datetime:
        return _midnight(self.start)

    def end_datetime(self) -> dt.datetime:
        return _midnight(self.end)

    def elapsed_fraction(self, now: dt.datetime) -> float:
        """How much of the period has gone by at ``now``: 0 before it starts, 1 after it ends."""
        start, end = self.start_datetime(), self.end_datetime()
        if now <= start:
            return 0.0
        if now >= end:
            return 1.0
        return (now - start) / (end - start)


def _midnight(day: dt.date) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time()))


def add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month(year: int, month_: int) -> Period:
    start = dt.date(year, month_, 1)
    return Period("month", start, add_months(start, 1))


def period_of(kind: str, day: dt.date) -> Period:
    """The month, quarter or year that contains ``day``."""
    if kind == "month":
        return month(day.year, day.month)
    if kind == "quarter":
        start = dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
        return Period("quarter", start, add_months(start, 3))
    if kind == "year":
        return Period("year", dt.date(day.year, 1, 1), dt.date(day.year + 1, 1, 1))
    raise PeriodError(f"{kind!r} is not a period kind; use month, quarter or year")


def parse_period(text: str) -> Period:
    raw = text.strip()
    if match := _MONTH.match(raw):
        year, month_ = int(match[1]), int(match[2])
        if not 1 <= month_ <= 12:
            raise PeriodError(f"{text!r}: month {month_} does not exist")
        return month(year, month_)
    if match := _QUARTER.match(raw):
        return period_of("quarter", dt.date(int(match[1]), (int(match[2]) - 1) * 3 + 1, 1))
    if match := _YEAR.match(raw):
        return period_of("year", dt.date(int(match[1]), 1, 1))
    raise PeriodError(
        f"{text!r} is not a period; use YYYY-MM (a month), YYYY-Qn (a quarter) or YYYY (a year)"
    )


def current(kind: str = "month") -> Period:
    return period_of(kind, timezone.localdate())
