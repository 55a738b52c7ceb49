"""Report periods: a calendar month (`2026-11`) or quarter (`2026-Q4`) in a time zone.

A period is a run of whole local calendar days: its bounds are the UTC instants of the local
midnights that start its first day and end its last day.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from domain.months import add_months, month_bounds, month_of

_PERIOD = re.compile(r"^(\d{4})-(?:(0[1-9]|1[0-2])|Q([1-4]))$")


@dataclass(frozen=True)
class Period:
    """`months` are (year, month) pairs in order; `start`/`end` are UTC instants (end
    exclusive) of the first and the day after the last local day in `tz`."""

    label: str
    kind: str  # month | quarter
    months: tuple[tuple[int, int], ...]
    tz: str
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        year, month = self.months[0]
        return date(year, month, 1)

    @property
    def last_day(self) -> date:
        year, month = self.months[-1]
        return add_months(date(year, month, 1), 1) - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def month_labels(self) -> list[str]:
        return [f"{y:04d}-{m:02d}" for y, m in self.months]

    def each_day(self) -> Iterator[date]:
        day = self.first_day
        while day <= self.last_day:
            yield day
            day += timedelta(days=1)


def parse_period(text: str, tz: str) -> Period:
    """`YYYY-MM` or `YYYY-Qn`; ValueError naming the expected forms otherwise."""
    found = _PERIOD.match(text)
    if found is None:
        raise ValueError("a month YYYY-MM or a quarter YYYY-Qn, e.g. 2026-11 or 2026-Q4")
    year = int(found.group(1))
    if found.group(2):
        months: tuple[tuple[int, int], ...] = ((year, int(found.group(2))),)
        kind = "month"
    else:
        first = 3 * (int(found.group(3)) - 1) + 1
        months = tuple((year, m) for m in range(first, first + 3))
        kind = "quarter"
    start = month_bounds(*months[0], tz)[0]
    end = month_bounds(*months[-1], tz)[1]
    return Period(text, kind, months, tz, start, end)


def month_period(instant: datetime, tz: str) -> Period:
    """The local calendar month `instant` falls in."""
    return parse_period(month_of(instant, tz), tz)


def previous_month(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def chosen_period(period: str | None, month: str | None, at: datetime, tz: str) -> Period:
    """`period`, else the older `month` (an alias), else the month `at` falls in. ValueError
    (naming `period` or `month`) when malformed, both given and different, or the year is out
    of 1900..8999."""
    if period is not None and month is not None and period != month:
        raise ValueError("period: give period or its alias month, not both")
    name = "period" if period is not None else "month"
    text = period if period is not None else month
    if text is None:
        return month_period(at, tz)
    try:
        found = parse_period(text, tz)
    except ValueError as exc:
        raise ValueError(f"{name}: {exc}") from None
    if not 1900 <= found.months[0][0] < 9000:
        raise ValueError(f"{name}: the year must lie between 1900 and 9000")
    if month is not None and period is None and found.kind != "month":
        raise ValueError("month: a month YYYY-MM (use period for a quarter)")
    return found
