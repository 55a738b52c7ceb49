"""Working-time arithmetic in O(log n): a calendar's working spans laid out once with running
totals, so the working time between two instants is a difference of two lookups.

`business_seconds`, `business_seconds_excluding` and `add_business_seconds` here give exactly the
results of their namesakes in domain.business_calendar (which walk the calendar day by day on
every call): the spans are the same union of working intervals, totals are kept in integer
microseconds, and the whole-second floor is taken once, at the end, as there. A clock open for
months is then measured without walking its months again. Calls outside the laid-out range (more
than `MAX_SPAN` wide, or an error case) go to the day-by-day functions themselves.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from domain import business_calendar as exact
from domain.business_calendar import BusinessCalendar, Pause

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
_SECOND = 1_000_000
_MARGIN = timedelta(days=62)  # laid out beyond what was asked, so neighbours hit the same index
MAX_SPAN = timedelta(days=366 * 40)  # wider than this: the day-by-day functions answer
_CACHED = 32  # calendars kept laid out


def _micros(instant: datetime) -> int:
    return (instant - _EPOCH) // _US


@dataclass(frozen=True)
class _Layout:
    """Working spans of one calendar covering [low, high] (µs since the epoch), with totals."""

    low: int
    high: int
    starts: list[int]
    ends: list[int]
    before: list[int]  # working time before span i
    through: list[int]  # working time up to the end of span i

    @classmethod
    def build(cls, calendar: BusinessCalendar, low: datetime, high: datetime) -> _Layout:
        starts: list[int] = []
        ends: list[int] = []
        before: list[int] = []
        through: list[int] = []
        total = 0
        # The private walker is the single definition of the spans: the same union, merged.
        for start, end in exact._working_spans(calendar, low, high):
            s, e = _micros(start), _micros(end)
            starts.append(s)
            ends.append(e)
            before.append(total)
            total += e - s
            through.append(total)
        return cls(_micros(low), _micros(high), starts, ends, before, through)

    def covers(self, *instants: int) -> bool:
        return all(self.low <= t <= self.high for t in instants)

    def worked(self, t: int) -> int:
        """Working time from the first span to `t` (µs)."""
        i = bisect.bisect_right(self.starts, t) - 1
        if i < 0:
            return 0
        return self.before[i] + min(t, self.ends[i]) - self.starts[i]

    def reach(self, origin: int, amount: int) -> int | None:
        """The earliest instant with `amount` µs of working time after `origin`, if laid out."""
        goal = self.worked(origin) + amount
        i = bisect.bisect_left(self.through, goal)
        if i == len(self.through):
            return None
        found = max(self.starts[i] + goal - self.before[i], origin)
        return found if found <= self.high else None


class _Layouts:
    """Per calendar, the latest layout; widened (rebuilt wider) when a call falls outside it."""

    def __init__(self) -> None:
        self._by_calendar: dict[BusinessCalendar, _Layout] = {}
        self._lock = threading.Lock()

    def get(self, calendar: BusinessCalendar, low: datetime, high: datetime) -> _Layout | None:
        layout = self._by_calendar.get(calendar)
        if layout is not None and layout.covers(_micros(low), _micros(high)):
            return layout
        if layout is not None:
            low = min(low, _EPOCH + layout.low * _US)
            high = max(high, _EPOCH + layout.high * _US)
        low, high = low - _MARGIN, high + _MARGIN
        if high - low > MAX_SPAN:
            return None
        try:
            layout = _Layout.build(calendar, low, high)
        except (OverflowError, ValueError):  # near the ends of the datetime range
            return None
        with self._lock:
            if len(self._by_calendar) >= _CACHED and calendar not in self._by_calendar:
                self._by_calendar.pop(next(iter(self._by_calendar)))
            self._by_calendar[calendar] = layout
        return layout


_LAYOUTS = _Layouts()


def business_time(calendar: BusinessCalendar, start: datetime, end: datetime) -> int | None:
    """Exact working time in [start, end) in µs (UTC instants); None when not laid out."""
    if end <= start:
        return 0
    layout = _LAYOUTS.get(calendar, start, end)
    if layout is None:
        return None
    return layout.worked(_micros(end)) - layout.worked(_micros(start))


def business_seconds(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """As domain.business_calendar.business_seconds."""
    total = business_time(calendar, start.astimezone(UTC), end.astimezone(UTC)) if (
        _aware(start) and _aware(end)) else None
    if total is None:
        return exact.business_seconds(calendar, start, end)
    return total // _SECOND


def business_seconds_excluding(calendar: BusinessCalendar, start: datetime, end: datetime,
                               pauses: Iterable[Pause]) -> int:
    """As domain.business_calendar.business_seconds_excluding."""
    pauses = list(pauses)
    total = 0
    for lower, upper in exact._unpaused_segments(start, end, pauses):
        part = business_time(calendar, lower, upper)
        if part is None:
            return exact.business_seconds_excluding(calendar, start, end, pauses)
        total += part
    return total // _SECOND


def add_business_seconds(calendar: BusinessCalendar, start: datetime, seconds: int) -> datetime:
    """As domain.business_calendar.add_business_seconds."""
    if seconds <= 0 or not _aware(start) or calendar.hours.is_empty:
        return exact.add_business_seconds(calendar, start, seconds)  # its edge cases and errors
    origin = start.astimezone(UTC)
    # A guess at the reach (a week of calendar time per 40 working hours, and then some);
    # a layout too short answers None and the day-by-day walk decides.
    guess = origin + timedelta(seconds=seconds * 5) + timedelta(days=14)
    layout = _LAYOUTS.get(calendar, origin, min(guess, origin + timedelta(days=366 * 2)))
    found = None if layout is None else layout.reach(_micros(origin), seconds * _SECOND)
    if found is None:
        return exact.add_business_seconds(calendar, start, seconds)
    return _EPOCH + found * _US


def _aware(instant: datetime) -> bool:
    return instant.tzinfo is not None and instant.utcoffset() is not None
