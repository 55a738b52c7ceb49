from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.months import (
    Segment,
    add_months,
    days_in_month,
    forecast_month_end,
    month_bounds,
    month_of,
    segment_at,
)

# --- add_months ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), -1, date(2026, 2, 28)),
        (date(2028, 3, 31), -1, date(2028, 2, 29)),
        (date(2026, 8, 31), -6, date(2026, 2, 28)),
        (date(2028, 8, 31), -6, date(2028, 2, 29)),
        (date(2026, 5, 31), 1, date(2026, 6, 30)),
        (date(2026, 11, 15), 2, date(2027, 1, 15)),
        (date(2026, 1, 15), -1, date(2025, 12, 15)),
        (date(2026, 3, 31), -25, date(2024, 2, 29)),
        (date(2026, 3, 31), 0, date(2026, 3, 31)),
    ],
)
def test_add_months_clamps_to_the_last_day_of_the_target_month(
    start: date, months: int, expected: date
) -> None:
    assert add_months(start, months) == expected


def test_add_months_outside_supported_years_is_rejected() -> None:
    with pytest.raises(ValueError):
        add_months(date(9999, 12, 1), 1)
    with pytest.raises(ValueError):
        add_months(date(1, 1, 1), -1)


@given(d=st.dates(date(1900, 1, 1), date(2200, 12, 31)), n=st.integers(-1200, 1200))
def test_add_months_lands_n_months_away_without_overshooting_the_day(d: date, n: int) -> None:
    result = add_months(d, n)
    assert (result.year * 12 + result.month) - (d.year * 12 + d.month) == n
    assert result.day == min(d.day, days_in_month(result.year, result.month))
    if d.day <= 28:
        assert add_months(result, -n) == d


# --- segments ------------------------------------------------------------------------

# (D, D-6 months, D-12 months, D-13 months), written out by hand to keep the
# expectations independent of add_months.
BOUNDARIES = [
    (date(2026, 8, 31), date(2026, 2, 28), date(2025, 8, 31), date(2025, 7, 31)),
    (date(2028, 2, 29), date(2027, 8, 29), date(2027, 2, 28), date(2027, 1, 29)),
    (date(2026, 3, 31), date(2025, 9, 30), date(2025, 3, 31), date(2025, 2, 28)),
]
ONE_DAY = timedelta(days=1)


@pytest.mark.parametrize(("at", "six", "twelve", "thirteen"), BOUNDARIES)
def test_activity_exactly_six_months_ago_is_active_and_a_day_earlier_low_active(
    at: date, six: date, twelve: date, thirteen: date
) -> None:
    assert segment_at(six, at) is Segment.ACTIVE
    assert segment_at(six - ONE_DAY, at) is Segment.LOW_ACTIVE


@pytest.mark.parametrize(("at", "six", "twelve", "thirteen"), BOUNDARIES)
def test_activity_exactly_twelve_months_ago_is_low_active_and_a_day_earlier_at_risk(
    at: date, six: date, twelve: date, thirteen: date
) -> None:
    assert segment_at(twelve, at) is Segment.LOW_ACTIVE
    assert segment_at(twelve - ONE_DAY, at) is Segment.AT_RISK


@pytest.mark.parametrize(("at", "six", "twelve", "thirteen"), BOUNDARIES)
def test_activity_exactly_thirteen_months_ago_is_at_risk_and_a_day_earlier_lost(
    at: date, six: date, twelve: date, thirteen: date
) -> None:
    assert segment_at(thirteen, at) is Segment.AT_RISK
    assert segment_at(thirteen - ONE_DAY, at) is Segment.LOST


@pytest.mark.parametrize("at", [row[0] for row in BOUNDARIES])
def test_no_activity_is_never_and_recent_or_future_activity_is_active(at: date) -> None:
    assert segment_at(None, at) is Segment.NEVER
    assert segment_at(at, at) is Segment.ACTIVE
    assert segment_at(at + ONE_DAY, at) is Segment.ACTIVE
    assert segment_at(date(2000, 1, 1), at) is Segment.LOST


def test_segments_are_string_values() -> None:
    assert [s.value for s in Segment] == ["active", "low_active", "at_risk", "lost", "never"]
    assert Segment("at_risk") is Segment.AT_RISK
    assert f"{Segment.LOW_ACTIVE}" == "low_active"


# --- month lengths and bounds --------------------------------------------------------


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [(2026, 2, 28), (2028, 2, 29), (2000, 2, 29), (2100, 2, 28), (2026, 4, 30), (2026, 12, 31)],
)
def test_days_in_month(year: int, month: int, expected: int) -> None:
    assert days_in_month(year, month) == expected


def test_days_in_month_rejects_month_13() -> None:
    with pytest.raises(ValueError, match="month"):
        days_in_month(2026, 13)


def test_berlin_march_bounds_span_the_spring_change() -> None:
    start, end = month_bounds(2026, 3, "Europe/Berlin")
    assert start == datetime(2026, 2, 28, 23, tzinfo=UTC)
    assert end == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC
    assert end - start == timedelta(days=31) - timedelta(hours=1)


def test_december_bounds_roll_into_next_year() -> None:
    assert month_bounds(2026, 12, "America/New_York") == (
        datetime(2026, 12, 1, 5, tzinfo=UTC),
        datetime(2027, 1, 1, 5, tzinfo=UTC),
    )


def test_month_bounds_rejects_unknown_zone() -> None:
    with pytest.raises(ValueError, match="tz"):
        month_bounds(2026, 3, "Mars/Olympus")


# --- month_of ------------------------------------------------------------------------


def test_2330_utc_on_the_31st_is_next_month_in_berlin() -> None:
    assert month_of(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2026-04"
    assert month_of(datetime(2026, 1, 31, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2026-02"
    assert month_of(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "Europe/Berlin") == "2027-01"


def test_same_instant_is_still_the_31st_in_utc_and_new_york() -> None:
    instant = datetime(2026, 3, 31, 23, 30, tzinfo=UTC)
    assert month_of(instant, "UTC") == "2026-03"
    assert month_of(datetime(2026, 4, 1, 2, tzinfo=UTC), "America/New_York") == "2026-03"


def test_month_of_rejects_naive_datetimes_and_unknown_zones() -> None:
    with pytest.raises(ValueError, match="aware"):
        month_of(datetime(2026, 3, 31, 23, 30), "Europe/Berlin")
    with pytest.raises(ValueError, match="tz"):
        month_of(datetime(2026, 3, 31, 23, 30, tzinfo=UTC), "Nowhere/Land")


# --- forecast ------------------------------------------------------------------------


def test_1000_collected_by_day_10_of_31_forecasts_3100() -> None:
    assert forecast_month_end(Decimal("1000.00"), 10, 31) == Decimal("3100.00")


def test_forecast_on_the_last_day_is_what_was_collected() -> None:
    assert forecast_month_end(Decimal("1234.56"), 28, 28) == Decimal("1234.56")


def test_forecast_of_a_repeating_quotient_rounds_to_cents() -> None:
    assert forecast_month_end(Decimal("100"), 3, 31) == Decimal("1033.33")
    assert forecast_month_end(Decimal("100"), 7, 30) == Decimal("428.57")


def test_forecast_ties_round_half_even() -> None:
    assert forecast_month_end(Decimal("0.0325"), 15, 30) == Decimal("0.06")
    assert forecast_month_end(Decimal("0.0375"), 15, 30) == Decimal("0.08")


@pytest.mark.parametrize(("day", "days"), [(0, 31), (32, 31), (10, 27), (10, 32)])
def test_forecast_rejects_impossible_days(day: int, days: int) -> None:
    with pytest.raises(ValueError):
        forecast_month_end(Decimal("1000.00"), day, days)


def test_forecast_rejects_non_finite_amounts() -> None:
    with pytest.raises(ValueError, match="finite"):
        forecast_month_end(Decimal("NaN"), 10, 31)
