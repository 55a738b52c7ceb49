from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.business_calendar import (
    BusinessCalendar,
    WorkingHours,
    add_business_seconds,
    business_seconds,
    business_seconds_excluding,
    wall_seconds_excluding,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
UTC_CALENDAR = BusinessCalendar.default()
EVERY_NIGHT_0000_0400 = WorkingHours.from_mapping({day: [(0, 240)] for day in range(7)})


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def berlin(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BERLIN)


def new_york(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=NEW_YORK)


FRIDAY_1730 = utc(2026, 3, 6, 17, 30)
MONDAY_0915 = utc(2026, 3, 9, 9, 15)
TUESDAY_0915 = utc(2026, 3, 10, 9, 15)


# --- the complaint scenario ----------------------------------------------------------


def test_friday_1730_to_monday_0915_is_45_business_minutes() -> None:
    assert business_seconds(UTC_CALENDAR, FRIDAY_1730, MONDAY_0915) == 45 * 60


def test_friday_1730_to_monday_0915_is_63h45m_of_wall_clock() -> None:
    assert wall_seconds_excluding(FRIDAY_1730, MONDAY_0915, []) == 229_500


def test_monday_holiday_pushes_the_answer_to_tuesday_and_still_45_minutes() -> None:
    calendar = BusinessCalendar("UTC", WorkingHours.standard(), frozenset({date(2026, 3, 9)}))
    assert business_seconds(calendar, FRIDAY_1730, TUESDAY_0915) == 45 * 60


def test_end_before_or_at_start_is_zero() -> None:
    assert business_seconds(UTC_CALENDAR, MONDAY_0915, FRIDAY_1730) == 0
    assert business_seconds(UTC_CALENDAR, MONDAY_0915, MONDAY_0915) == 0
    assert wall_seconds_excluding(MONDAY_0915, FRIDAY_1730, []) == 0


def test_inputs_in_other_offsets_measure_the_same_instants() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    start = FRIDAY_1730.astimezone(kolkata)
    end = MONDAY_0915.astimezone(kolkata)
    assert business_seconds(UTC_CALENDAR, start, end) == 45 * 60


def test_fractional_seconds_are_floored() -> None:
    end = utc(2026, 3, 9, 9, 0, 1) + timedelta(microseconds=999_999)
    assert business_seconds(UTC_CALENDAR, FRIDAY_1730, end) == 30 * 60 + 1


def test_lunch_break_is_not_working_time() -> None:
    hours = WorkingHours.from_mapping({0: [(9 * 60, 12 * 60), (13 * 60, 18 * 60)]})
    calendar = BusinessCalendar("UTC", hours)
    assert business_seconds(calendar, utc(2026, 3, 9, 11), utc(2026, 3, 9, 14)) == 2 * 3600


def test_two_years_of_standard_weeks_is_9h_per_weekday() -> None:
    start, end = utc(2025, 1, 1), utc(2027, 1, 1)
    weekdays = sum(
        1 for offset in range((end - start).days) if (start + timedelta(days=offset)).weekday() < 5
    )
    assert business_seconds(UTC_CALENDAR, start, end) == weekdays * 9 * 3600


# --- pauses --------------------------------------------------------------------------


MONDAY_1300 = utc(2026, 3, 9, 13)
MONDAY_PAUSE = (utc(2026, 3, 9, 10), utc(2026, 3, 9, 12))


def test_pause_monday_10_to_12_is_excluded_from_business_time() -> None:
    # Friday 17:30-18:00 plus Monday 09:00-13:00, less the two paused hours.
    result = business_seconds_excluding(UTC_CALENDAR, FRIDAY_1730, MONDAY_1300, [MONDAY_PAUSE])
    assert result == 30 * 60 + 2 * 3600


def test_pause_monday_10_to_12_is_excluded_from_wall_clock() -> None:
    result = wall_seconds_excluding(FRIDAY_1730, MONDAY_1300, [MONDAY_PAUSE])
    assert result == (67 * 3600 + 30 * 60) - 2 * 3600


def test_overlapping_pauses_are_not_subtracted_twice() -> None:
    pauses = [MONDAY_PAUSE, (utc(2026, 3, 9, 11), utc(2026, 3, 9, 12, 30))]
    # Merged pause 10:00-12:30 leaves Friday's 30 minutes and Monday 09:00-10:00, 12:30-13:00.
    assert business_seconds_excluding(UTC_CALENDAR, FRIDAY_1730, MONDAY_1300, pauses) == 2 * 3600
    assert wall_seconds_excluding(FRIDAY_1730, MONDAY_1300, pauses) == 243_000 - 9000


def test_open_pause_runs_until_the_end_of_the_span() -> None:
    pauses: list[tuple[datetime, datetime | None]] = [(utc(2026, 3, 9, 10), None)]
    assert business_seconds_excluding(UTC_CALENDAR, FRIDAY_1730, MONDAY_1300, pauses) == 90 * 60
    assert wall_seconds_excluding(FRIDAY_1730, MONDAY_1300, pauses) == 243_000 - 3 * 3600


def test_only_the_part_of_a_pause_inside_the_span_counts() -> None:
    pauses = [
        (utc(2026, 3, 6, 12), utc(2026, 3, 9, 9, 30)),
        (utc(2026, 3, 9, 14), utc(2026, 3, 9, 15)),
    ]
    assert business_seconds_excluding(UTC_CALENDAR, FRIDAY_1730, MONDAY_1300, pauses) == 210 * 60
    assert wall_seconds_excluding(FRIDAY_1730, MONDAY_1300, pauses) == 210 * 60


def test_pause_ending_before_it_starts_is_rejected() -> None:
    with pytest.raises(ValueError, match="pauses"):
        wall_seconds_excluding(FRIDAY_1730, MONDAY_1300, [(MONDAY_1300, FRIDAY_1730)])


# --- daylight saving time ------------------------------------------------------------


def test_berlin_spring_forward_night_0000_0400_lasts_3_real_hours() -> None:
    calendar = BusinessCalendar("Europe/Berlin", EVERY_NIGHT_0000_0400)
    assert business_seconds(calendar, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 3 * 3600


def test_berlin_fall_back_night_0000_0400_lasts_5_real_hours() -> None:
    calendar = BusinessCalendar("Europe/Berlin", EVERY_NIGHT_0000_0400)
    assert business_seconds(calendar, berlin(2026, 10, 25), berlin(2026, 10, 26)) == 5 * 3600


def test_new_york_transition_nights_last_3_and_5_real_hours() -> None:
    calendar = BusinessCalendar("America/New_York", EVERY_NIGHT_0000_0400)
    assert business_seconds(calendar, new_york(2026, 3, 8), new_york(2026, 3, 9)) == 3 * 3600
    assert business_seconds(calendar, new_york(2026, 11, 1), new_york(2026, 11, 2)) == 5 * 3600


@pytest.mark.parametrize("monday", [date(2026, 3, 23), date(2026, 10, 19)])
def test_berlin_standard_week_around_a_change_is_still_9h_per_weekday(monday: date) -> None:
    calendar = BusinessCalendar.default("Europe/Berlin")
    start = berlin(monday.year, monday.month, monday.day)
    end = start + timedelta(days=14)  # aware arithmetic is wall-clock: local midnight again
    assert business_seconds(calendar, start, end) == 10 * 9 * 3600
    next_monday = monday + timedelta(days=7)
    day_start = berlin(next_monday.year, next_monday.month, next_monday.day)
    assert business_seconds(calendar, day_start, day_start + timedelta(days=1)) == 9 * 3600


def test_berlin_span_across_spring_forward_weekend() -> None:
    calendar = BusinessCalendar.default("Europe/Berlin")
    friday_1700_cet, monday_1000_cest = berlin(2026, 3, 27, 17), berlin(2026, 3, 30, 10)
    assert business_seconds(calendar, friday_1700_cet, monday_1000_cest) == 2 * 3600
    # One local hour vanished: 65 wall-clock hours on the dial, 64 real ones.
    assert wall_seconds_excluding(friday_1700_cet, monday_1000_cest, []) == 64 * 3600
    assert add_business_seconds(calendar, friday_1700_cet, 2 * 3600) == monday_1000_cest


def test_berlin_span_across_fall_back_weekend() -> None:
    calendar = BusinessCalendar.default("Europe/Berlin")
    friday_1700_cest, monday_1000_cet = berlin(2026, 10, 23, 17), berlin(2026, 10, 26, 10)
    assert business_seconds(calendar, friday_1700_cest, monday_1000_cet) == 2 * 3600
    assert wall_seconds_excluding(friday_1700_cest, monday_1000_cet, []) == 66 * 3600


def test_interval_starting_in_the_spring_gap_starts_after_the_gap() -> None:
    # 02:30 does not exist on 2026-03-29; fold=0 reads it as 03:30 CEST.
    hours = WorkingHours.from_mapping({6: [(150, 240)]})
    calendar = BusinessCalendar("Europe/Berlin", hours)
    assert business_seconds(calendar, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 30 * 60


def test_interval_starting_in_the_repeated_hour_starts_at_its_first_occurrence() -> None:
    # 02:30 happens twice on 2026-10-25; the first (CEST) one starts the interval.
    hours = WorkingHours.from_mapping({6: [(150, 210)]})
    calendar = BusinessCalendar("Europe/Berlin", hours)
    assert business_seconds(calendar, berlin(2026, 10, 25), berlin(2026, 10, 26)) == 2 * 3600


def test_intervals_overlapping_after_the_spring_gap_count_each_instant_once() -> None:
    # 00:00-02:45 ends at 01:45 UTC while 03:00-04:00 starts at 01:00 UTC.
    hours = WorkingHours.from_mapping({6: [(0, 165), (180, 240)]})
    calendar = BusinessCalendar("Europe/Berlin", hours)
    assert business_seconds(calendar, berlin(2026, 3, 29), berlin(2026, 3, 30)) == 3 * 3600


def test_repeated_hour_inputs_are_told_apart_by_fold() -> None:
    calendar = BusinessCalendar("Europe/Berlin", EVERY_NIGHT_0000_0400)
    first_0230 = berlin(2026, 10, 25, 2).replace(minute=30)
    second_0230 = first_0230.replace(fold=1)
    assert business_seconds(calendar, first_0230, second_0230) == 3600
    assert wall_seconds_excluding(first_0230, second_0230, []) == 3600


# --- add_business_seconds ------------------------------------------------------------


def test_friday_1730_plus_45_business_minutes_is_monday_0915() -> None:
    result = add_business_seconds(UTC_CALENDAR, FRIDAY_1730, 45 * 60)
    assert result == MONDAY_0915
    assert result.tzinfo is UTC


def test_adding_zero_returns_the_start_instant() -> None:
    saturday = utc(2026, 3, 7, 12)
    assert add_business_seconds(UTC_CALENDAR, saturday, 0) == saturday


def test_adding_across_a_holiday_skips_it() -> None:
    calendar = BusinessCalendar("UTC", WorkingHours.standard(), frozenset({date(2026, 3, 9)}))
    assert add_business_seconds(calendar, FRIDAY_1730, 45 * 60) == TUESDAY_0915


def test_adding_exactly_the_rest_of_the_day_lands_on_closing_time() -> None:
    assert add_business_seconds(UTC_CALENDAR, utc(2026, 3, 6, 9), 9 * 3600) == utc(2026, 3, 6, 18)


def test_adding_from_outside_working_hours_starts_at_next_opening() -> None:
    assert add_business_seconds(UTC_CALENDAR, utc(2026, 3, 7, 12), 1) == utc(2026, 3, 9, 9, 0, 1)


def test_adding_negative_seconds_is_rejected() -> None:
    with pytest.raises(ValueError, match="seconds"):
        add_business_seconds(UTC_CALENDAR, FRIDAY_1730, -1)


def test_adding_to_a_calendar_without_working_hours_is_rejected() -> None:
    calendar = BusinessCalendar("UTC", WorkingHours.from_mapping({}))
    assert add_business_seconds(calendar, FRIDAY_1730, 0) == FRIDAY_1730
    with pytest.raises(ValueError, match="no working hours"):
        add_business_seconds(calendar, FRIDAY_1730, 1)


def test_adding_gives_up_after_20_years_of_holidays() -> None:
    first_monday = date(2026, 3, 9)
    holidays = frozenset(first_monday + timedelta(weeks=n) for n in range(52 * 21))
    calendar = BusinessCalendar("UTC", WorkingHours.from_mapping({0: [(540, 1080)]}), holidays)
    with pytest.raises(ValueError, match="20 years"):
        add_business_seconds(calendar, FRIDAY_1730, 1)


# --- properties ----------------------------------------------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
CALENDARS = st.builds(
    BusinessCalendar,
    timezone=st.sampled_from(ZONES),
    hours=st.sampled_from(
        [
            WorkingHours.standard(),
            WorkingHours.from_mapping({d: [(0, 240), (540, 720), (780, 1440)] for d in range(6)}),
            WorkingHours.from_mapping({5: [(90, 200)], 6: [(120, 180)]}),
        ]
    ),
    holidays=st.frozensets(st.dates(date(2024, 1, 1), date(2029, 12, 31)), max_size=40),
)
INSTANTS = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2028, 12, 31),
    timezones=st.sampled_from([ZoneInfo(z) for z in ZONES]),
)


@settings(max_examples=150, deadline=None)
@given(calendar=CALENDARS, start=INSTANTS, seconds=st.integers(0, 30 * 9 * 3600))
def test_adding_then_measuring_gives_back_the_seconds(
    calendar: BusinessCalendar, start: datetime, seconds: int
) -> None:
    end = add_business_seconds(calendar, start, seconds)
    assert end >= start
    assert business_seconds(calendar, start, end) == seconds
    if seconds > 0:
        # Earliest such instant: a microsecond sooner is not enough.
        assert business_seconds(calendar, start, end - timedelta(microseconds=1)) < seconds


@settings(max_examples=150, deadline=None)
@given(calendar=CALENDARS, instants=st.lists(INSTANTS, min_size=3, max_size=3))
def test_business_seconds_is_additive(calendar: BusinessCalendar, instants: list[datetime]) -> None:
    # Whole-second instants: flooring each part separately would otherwise drop a second.
    a, b, c = sorted(instant.replace(microsecond=0) for instant in instants)
    assert business_seconds(calendar, a, c) == business_seconds(calendar, a, b) + business_seconds(
        calendar, b, c
    )


@settings(max_examples=100, deadline=None)
@given(start=INSTANTS, end=INSTANTS, pauses=st.lists(st.tuples(INSTANTS, INSTANTS), max_size=4))
def test_excluding_pauses_never_exceeds_the_unpaused_measure(
    start: datetime, end: datetime, pauses: list[tuple[datetime, datetime]]
) -> None:
    ordered: list[tuple[datetime, datetime | None]] = [(min(p), max(p)) for p in pauses]
    assert (
        0 <= wall_seconds_excluding(start, end, ordered) <= wall_seconds_excluding(start, end, [])
    )
    paused = business_seconds_excluding(UTC_CALENDAR, start, end, ordered)
    assert 0 <= paused <= business_seconds(UTC_CALENDAR, start, end)


# --- validation and serialisation ----------------------------------------------------


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "Europe", "../etc/passwd", "utc"])
def test_unknown_time_zone_is_rejected_naming_the_field(name: str) -> None:
    with pytest.raises(ValueError, match="timezone"):
        BusinessCalendar(name)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2026, 3, 6, 17, 30)
    with pytest.raises(ValueError, match="start"):
        business_seconds(UTC_CALENDAR, naive, MONDAY_0915)
    with pytest.raises(ValueError, match="end"):
        business_seconds(UTC_CALENDAR, FRIDAY_1730, naive)
    with pytest.raises(ValueError, match="start"):
        add_business_seconds(UTC_CALENDAR, naive, 60)
    with pytest.raises(ValueError, match="pauses"):
        wall_seconds_excluding(FRIDAY_1730, MONDAY_0915, [(naive, None)])


@pytest.mark.parametrize(
    "intervals",
    [
        [(540, 540)],
        [(600, 540)],
        [(-1, 60)],
        [(0, 1441)],
        [(540, 720), (700, 800)],
        [(600, 700), (0, 60)],
    ],
)
def test_invalid_working_intervals_are_rejected(intervals: list[tuple[int, int]]) -> None:
    with pytest.raises(ValueError, match="interval"):
        WorkingHours.from_mapping({0: intervals})


def test_working_hours_need_seven_weekdays() -> None:
    with pytest.raises(ValueError, match="7"):
        WorkingHours(((),) * 6)
    with pytest.raises(ValueError, match="weekdays"):
        WorkingHours.from_mapping({7: [(0, 60)]})


def test_interval_may_run_until_midnight() -> None:
    calendar = BusinessCalendar("UTC", WorkingHours.from_mapping({4: [(1380, 1440)]}))
    assert business_seconds(calendar, utc(2026, 3, 6), utc(2026, 3, 7)) == 3600


def test_datetime_holidays_are_rejected() -> None:
    with pytest.raises(ValueError, match="holidays"):
        BusinessCalendar("UTC", holidays=frozenset({datetime(2026, 3, 9)}))


def test_calendar_round_trips_through_json() -> None:
    hours = WorkingHours.from_mapping({0: [(540, 720), (780, 1080)], 5: [(600, 840)]})
    holidays = frozenset({date(2026, 12, 25), date(2026, 1, 1)})
    calendar = BusinessCalendar("Europe/Berlin", hours, holidays)
    data = calendar.to_dict()
    assert data == {
        "timezone": "Europe/Berlin",
        "hours": {
            "mon": [[540, 720], [780, 1080]],
            "tue": [],
            "wed": [],
            "thu": [],
            "fri": [],
            "sat": [[600, 840]],
            "sun": [],
        },
        "holidays": ["2026-01-01", "2026-12-25"],
    }
    assert BusinessCalendar.from_dict(json.loads(json.dumps(data))) == calendar


def test_from_dict_treats_missing_weekdays_as_closed() -> None:
    calendar = BusinessCalendar.from_dict({"timezone": "UTC", "hours": {"fri": [[540, 1080]]}})
    assert calendar.hours == WorkingHours.from_mapping({4: [(540, 1080)]})
    assert calendar.holidays == frozenset()


@pytest.mark.parametrize(
    "data",
    [
        {"timezone": "UTC", "hours": {"funday": []}},
        {"timezone": "UTC", "hours": {"mon": [[540]]}},
        {"timezone": "UTC", "hours": {"mon": [[True, 1080]]}},
        {"timezone": "UTC", "holidays": ["not-a-date"]},
        {"timezone": 3},
        {"timezone": "Nowhere/Land"},
    ],
)
def test_from_dict_rejects_malformed_input(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        BusinessCalendar.from_dict(data)
