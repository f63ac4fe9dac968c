"""SLA deadlines in business time: nights, weekends, holidays, time zones and DST."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from embudo.handoff.business_time import (
    BusinessTimeError,
    WorkingWeek,
    add_business_minutes,
    business_minutes_between,
    is_working,
)

MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
OFFICE = WorkingWeek.of("Europe/Madrid", range(5), dt.time(9), dt.time(18))


def madrid(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MADRID)


def test_a_deadline_inside_the_day_is_plain_addition() -> None:
    assert add_business_minutes(madrid(2026, 3, 3, 10, 0), 90, OFFICE) == madrid(2026, 3, 3, 11, 30)


def test_the_night_does_not_count() -> None:
    # Tuesday 17:30 + 60 min: 30 min that evening, 30 min on Wednesday morning.
    assert add_business_minutes(madrid(2026, 3, 3, 17, 30), 60, OFFICE) == madrid(2026, 3, 4, 9, 30)


def test_a_deadline_falling_on_closing_time_stays_there() -> None:
    assert add_business_minutes(madrid(2026, 3, 3, 17, 0), 60, OFFICE) == madrid(2026, 3, 3, 18, 0)


def test_before_opening_the_clock_starts_at_opening() -> None:
    assert add_business_minutes(madrid(2026, 3, 3, 6, 45), 30, OFFICE) == madrid(2026, 3, 3, 9, 30)


def test_the_weekend_does_not_count() -> None:
    # Friday 17:00 + 2 h: one hour on Friday, one on Monday.
    assert add_business_minutes(madrid(2026, 3, 6, 17, 0), 120, OFFICE) == madrid(2026, 3, 9, 10)
    # A lead arriving on Saturday waits for Monday morning.
    assert add_business_minutes(madrid(2026, 3, 7, 12, 0), 45, OFFICE) == madrid(2026, 3, 9, 9, 45)


def test_holidays_do_not_count() -> None:
    with_holiday = WorkingWeek.of(
        "Europe/Madrid", range(5), dt.time(9), dt.time(18), [dt.date(2026, 3, 9)]
    )
    assert add_business_minutes(madrid(2026, 3, 6, 17, 0), 120, with_holiday) == madrid(
        2026, 3, 10, 10, 0
    )


def test_several_working_days_across_nights() -> None:
    # 20 working hours from Monday 9:00: Monday 9 h, Tuesday 9 h, Wednesday 2 h.
    assert add_business_minutes(madrid(2026, 3, 2, 9, 0), 20 * 60, OFFICE) == madrid(
        2026, 3, 4, 11, 0
    )


def test_the_week_time_zone_decides_not_the_start_time_zone() -> None:
    new_york = WorkingWeek.of("America/New_York", range(5), dt.time(9), dt.time(17))
    # 15:00 UTC on a Tuesday is 10:00 in New York: two hours later is noon there.
    start = dt.datetime(2026, 3, 3, 15, 0, tzinfo=dt.UTC)
    assert add_business_minutes(start, 120, new_york) == dt.datetime(
        2026, 3, 3, 12, 0, tzinfo=NEW_YORK
    )
    # 23:00 UTC is 18:00 in New York, after closing: the deadline is next morning there.
    late = dt.datetime(2026, 3, 3, 23, 0, tzinfo=dt.UTC)
    assert add_business_minutes(late, 30, new_york) == dt.datetime(
        2026, 3, 4, 9, 30, tzinfo=NEW_YORK
    )


def test_a_daylight_saving_change_over_the_weekend_keeps_local_opening_hours() -> None:
    # Spain moves to summer time on Sunday 29 March 2026: Monday opens at 07:00 UTC, not 08:00.
    deadline = add_business_minutes(madrid(2026, 3, 27, 17, 0), 120, OFFICE)
    assert deadline == madrid(2026, 3, 30, 10, 0)
    assert deadline.astimezone(dt.UTC).hour == 8


def test_business_minutes_between_counts_only_working_time() -> None:
    assert (
        business_minutes_between(madrid(2026, 3, 6, 17, 0), madrid(2026, 3, 9, 10, 0), OFFICE)
        == 120
    )
    assert business_minutes_between(madrid(2026, 3, 9, 10), madrid(2026, 3, 6, 17), OFFICE) == 0


def test_is_working() -> None:
    assert is_working(madrid(2026, 3, 3, 12, 0), OFFICE)
    assert not is_working(madrid(2026, 3, 3, 20, 0), OFFICE)
    assert not is_working(madrid(2026, 3, 7, 12, 0), OFFICE)


@freeze_time("2026-03-06 16:30:00")  # Friday 17:30 in Madrid
def test_a_deadline_from_now_on_a_friday_evening_lands_on_monday() -> None:
    now = dt.datetime.now(dt.UTC)
    assert add_business_minutes(now, 60, OFFICE) == madrid(2026, 3, 9, 9, 30)


@pytest.mark.parametrize(
    ("weekdays", "opens", "closes", "zone", "message"),
    [
        ((), dt.time(9), dt.time(18), "Europe/Madrid", "at least one working day"),
        ((0,), dt.time(18), dt.time(9), "Europe/Madrid", r"close \(09:00\) before they open"),
        ((0,), dt.time(9), dt.time(18), "Mars/Olympus", "is not a time zone"),
    ],
)
def test_a_week_that_cannot_tell_time_is_refused_with_a_reason(
    weekdays: tuple[int, ...], opens: dt.time, closes: dt.time, zone: str, message: str
) -> None:
    with pytest.raises(BusinessTimeError, match=message):
        WorkingWeek.of(zone, weekdays, opens, closes)


def test_holidays_for_years_push_the_deadline_and_a_week_without_time_is_an_error() -> None:
    mondays = [dt.date(2026, 3, 2) + dt.timedelta(weeks=w) for w in range(200)]
    only_monday = WorkingWeek.of("UTC", [0], dt.time(9), dt.time(10), mondays[:100])
    deadline = add_business_minutes(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 30, only_monday)
    assert deadline == dt.datetime.combine(
        dt.date(2026, 3, 2) + dt.timedelta(weeks=100), dt.time(9, 30), tzinfo=dt.UTC
    )
    never = WorkingWeek.of("UTC", [0], dt.time(9), dt.time(10), mondays)
    with pytest.raises(BusinessTimeError, match="no working time"):
        add_business_minutes(dt.datetime(2026, 3, 1, tzinfo=dt.UTC), 30, never)
    with pytest.raises(BusinessTimeError, match="needs a time zone"):
        add_business_minutes(dt.datetime(2026, 3, 1), 30, only_monday)
