"""The laid-out working-time arithmetic (domain.business_index) must answer exactly as the
day-by-day walk of domain.business_calendar, for any calendar, zone, holidays and instants."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import business_calendar as walk
from domain import business_index as index
from domain.business_calendar import BusinessCalendar, WorkingHours

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu")
BASE = datetime(2025, 1, 1, tzinfo=UTC)

# A day's intervals: sorted distinct minute marks taken in pairs (start, end).
intervals = st.sets(st.integers(0, 1440), max_size=6).map(sorted).map(
    lambda marks: [(marks[i], marks[i + 1]) for i in range(0, len(marks) - 1, 2)])
calendars = st.builds(
    lambda zone, week, holidays: BusinessCalendar(
        zone, WorkingHours.from_mapping(dict(enumerate(week))),
        frozenset(date(2025, 1, 1) + timedelta(days=d) for d in holidays)),
    st.sampled_from(ZONES), st.lists(intervals, min_size=7, max_size=7),
    st.lists(st.integers(0, 900), max_size=20))
# Instants to the microsecond over ~2.5 years, DST changes of every zone included.
instants = st.integers(0, 900 * 86_400 * 10**6).map(lambda us: BASE + timedelta(microseconds=us))


@settings(max_examples=300, deadline=None)
@given(calendars, instants, instants)
def test_business_seconds_equal_the_day_by_day_walk(calendar: BusinessCalendar,
                                                    a: datetime, b: datetime) -> None:
    assert index.business_seconds(calendar, a, b) == walk.business_seconds(calendar, a, b)


@settings(max_examples=200, deadline=None)
@given(calendars, instants, instants,
       st.lists(st.tuples(instants, st.none() | st.integers(0, 30 * 86_400)), max_size=4))
def test_business_seconds_excluding_pauses_equal_the_walk(
        calendar: BusinessCalendar, a: datetime, b: datetime,
        raw: list[tuple[datetime, int | None]]) -> None:
    pauses = [(s, None if d is None else s + timedelta(seconds=d)) for s, d in raw]
    assert (index.business_seconds_excluding(calendar, a, b, pauses)
            == walk.business_seconds_excluding(calendar, a, b, pauses))


@settings(max_examples=200, deadline=None)
@given(calendars, instants, st.integers(0, 400 * 3600))
def test_add_business_seconds_equals_the_walk(calendar: BusinessCalendar, start: datetime,
                                             seconds: int) -> None:
    def outcome(add: object) -> object:
        try:
            return add(calendar, start, seconds)  # type: ignore[operator]
        except ValueError as error:  # no working hours: both must refuse alike
            return str(error)

    assert outcome(index.add_business_seconds) == outcome(walk.add_business_seconds)


def test_a_clock_open_for_years_is_measured_like_the_walk() -> None:
    calendar = BusinessCalendar.default("Europe/Berlin")
    start = datetime(2024, 3, 1, 8, 59, 59, 500_000, tzinfo=UTC)
    for end in (start + timedelta(days=700, microseconds=7), datetime(2026, 11, 1, tzinfo=UTC)):
        assert (index.business_seconds(calendar, start, end)
                == walk.business_seconds(calendar, start, end) > 0)


def test_instants_far_apart_are_left_to_the_walk() -> None:
    calendar = BusinessCalendar.default()
    start, end = datetime(1950, 1, 1, tzinfo=UTC), datetime(2010, 1, 1, tzinfo=UTC)
    assert index.business_time(calendar, start, end) is None  # wider than MAX_SPAN
    assert index.business_seconds(calendar, start, end) == walk.business_seconds(
        calendar, start, end)
