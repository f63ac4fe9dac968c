"""Business-time arithmetic: a deadline so many working minutes after a moment, in a working
week with its time zone and holidays. Pure functions, no database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from embudo.errors import EmbudoError

UTC = dt.UTC

# A deadline further than this is a configuration mistake (a week with no working day left).
MAX_DAYS = 3 * 366


class BusinessTimeError(EmbudoError, ValueError):
    """A working week that cannot tell time (no working day, closing before opening…)."""


@dataclass(frozen=True)
class WorkingWeek:
    time_zone: str
    weekdays: frozenset[int]  # Monday=0 … Sunday=6
    opens_at: dt.time
    closes_at: dt.time
    holidays: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        zone(self.time_zone)
        if not self.weekdays or not set(self.weekdays) <= set(range(7)):
            raise BusinessTimeError("a working week needs at least one working day (0 to 6)")
        if self.closes_at <= self.opens_at:
            raise BusinessTimeError(
                f"business hours close ({self.closes_at:%H:%M}) before they open "
                f"({self.opens_at:%H:%M})"
            )

    @classmethod
    def of(
        cls,
        time_zone: str,
        weekdays: Iterable[int],
        opens_at: dt.time,
        closes_at: dt.time,
        holidays: Iterable[dt.date] = (),
    ) -> WorkingWeek:
        return cls(time_zone, frozenset(weekdays), opens_at, closes_at, frozenset(holidays))

    def _window(self, day: dt.date) -> tuple[dt.datetime, dt.datetime] | None:
        """The day's opening hours in UTC, or None on a day off."""
        if day.weekday() not in self.weekdays or day in self.holidays:
            return None
        tz = zone(self.time_zone)
        opens = dt.datetime.combine(day, self.opens_at, tzinfo=tz).astimezone(UTC)
        closes = dt.datetime.combine(day, self.closes_at, tzinfo=tz).astimezone(UTC)
        return opens, closes


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BusinessTimeError(
            f"{name!r} is not a time zone (use a name like Europe/Madrid)"
        ) from None


def add_business_minutes(start: dt.datetime, minutes: int, week: WorkingWeek) -> dt.datetime:
    """The moment ``minutes`` of working time after ``start`` (aware), in UTC.

    Time before opening, after closing, on days off and on holidays does not count; a deadline
    that falls exactly at closing time stays there rather than moving to the next opening.
    """
    if start.tzinfo is None:
        raise BusinessTimeError("the start of a business-time span needs a time zone")
    if minutes < 0:
        raise BusinessTimeError("a business-time span cannot be negative")
    cursor = start.astimezone(UTC)
    remaining = dt.timedelta(minutes=minutes)
    day = cursor.astimezone(zone(week.time_zone)).date()
    for _ in range(MAX_DAYS):
        window = week._window(day)
        day += dt.timedelta(days=1)
        if window is None:
            continue
        opens, closes = window
        begin = max(cursor, opens)
        if begin >= closes:
            continue
        if remaining <= closes - begin:
            return begin + remaining
        remaining -= closes - begin
        cursor = closes
    raise BusinessTimeError(f"no deadline within {MAX_DAYS} days: the week has no working time")


def business_minutes_between(start: dt.datetime, end: dt.datetime, week: WorkingWeek) -> int:
    """Working minutes from ``start`` to ``end`` (0 when ``end`` is not after ``start``)."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    if end <= start:
        return 0
    total = dt.timedelta()
    day = start.astimezone(zone(week.time_zone)).date()
    last = end.astimezone(zone(week.time_zone)).date()
    while day <= last:
        window = week._window(day)
        day += dt.timedelta(days=1)
        if window is None:
            continue
        begin, finish = max(start, window[0]), min(end, window[1])
        if finish > begin:
            total += finish - begin
    return int(total.total_seconds() // 60)


def is_working(moment: dt.datetime, week: WorkingWeek) -> bool:
    """Whether ``moment`` falls inside the working hours."""
    local_day = moment.astimezone(zone(week.time_zone)).date()
    window = week._window(local_day)
    return window is not None and window[0] <= moment.astimezone(UTC) < window[1]
