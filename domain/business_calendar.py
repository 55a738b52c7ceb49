"""Business calendar values and the arithmetic of working time between aware instants.

Interval semantics:

* Working intervals are local wall-clock minutes ``(start, end)`` from local
  midnight, ``0 <= start < end <= 1440``, half-open ``[start, end)``; ``1440``
  means the following local midnight.
* Each endpoint is turned into an absolute instant with ``fold=0``: a local time
  that does not exist (spring-forward gap) is read with the offset in force
  before the gap, which lands it after the gap once normalised through UTC; an
  ambiguous one (fall-back) is its first occurrence.  The working time of an
  interval is therefore the real elapsed time between those instants, so an
  interval spanning a transition can be longer or shorter than its nominal size.
* The working time of a calendar is the union of all those absolute intervals,
  minus holidays (local dates).  An interval whose instants collapse or invert
  in a gap contributes nothing, and overlapping instants are counted once.
* Spans ``[start, end)`` are half-open; results are whole seconds, floored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

MINUTES_PER_DAY = 1440
WEEKDAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Twenty years bounds add_business_seconds so a calendar whose working time is
# entirely eaten by holidays fails loudly instead of looping forever.
_SEARCH_CAP = timedelta(days=366 * 20)
_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)

Interval = tuple[int, int]
Span = tuple[datetime, datetime]
Pause = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class WorkingHours:
    """Weekly working intervals: ``days[w]`` holds the intervals of weekday ``w`` (0 = Monday)."""

    days: tuple[tuple[Interval, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError(f"days must have 7 entries (Monday..Sunday), got {len(self.days)}")
        normalised = tuple(tuple((s, e) for s, e in day) for day in self.days)
        for weekday, intervals in enumerate(normalised):
            previous_end = 0
            for start, end in intervals:
                for value in (start, end):
                    if isinstance(value, bool) or not isinstance(value, int):
                        raise ValueError(f"days[{weekday}]: interval bounds must be int minutes")
                if not 0 <= start < end <= MINUTES_PER_DAY:
                    raise ValueError(
                        f"days[{weekday}]: interval ({start}, {end}) must satisfy "
                        "0 <= start < end <= 1440"
                    )
                # Sorted, disjoint input keeps the serialised form canonical.
                if start < previous_end:
                    raise ValueError(
                        f"days[{weekday}]: intervals must be sorted and must not overlap"
                    )
                previous_end = end
        object.__setattr__(self, "days", normalised)

    @classmethod
    def from_mapping(cls, mapping: Mapping[int, Sequence[Interval]]) -> WorkingHours:
        """Build from ``{weekday: [(start_minute, end_minute), ...]}``; absent days are closed."""
        unknown = set(mapping) - set(range(7))
        if unknown:
            raise ValueError(f"weekdays must be 0..6, got {sorted(unknown)}")
        return cls(tuple(tuple(mapping.get(weekday, ())) for weekday in range(7)))

    @classmethod
    def standard(cls) -> WorkingHours:
        """Monday to Friday, 09:00-18:00."""
        return cls.from_mapping({weekday: [(9 * 60, 18 * 60)] for weekday in range(5)})

    def for_weekday(self, weekday: int) -> tuple[Interval, ...]:
        return self.days[weekday]

    @property
    def is_empty(self) -> bool:
        return not any(self.days)


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours in an IANA time zone, with local-date holidays."""

    timezone: str
    hours: WorkingHours = field(default_factory=WorkingHours.standard)
    holidays: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        _load_zone(self.timezone, "timezone")
        holidays = frozenset(self.holidays)
        for holiday in holidays:
            # datetime subclasses date; accepting one would silently drop its time.
            if isinstance(holiday, datetime) or not isinstance(holiday, date):
                raise ValueError(f"holidays must contain dates, got {holiday!r}")
        object.__setattr__(self, "holidays", holidays)

    @classmethod
    def default(cls, timezone: str = "UTC") -> BusinessCalendar:
        return cls(timezone=timezone, hours=WorkingHours.standard())

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def to_dict(self) -> dict[str, object]:
        """JSON-safe primitives, the format :meth:`from_dict` reads.

        ``{"timezone": str, "hours": {"mon".."sun": [[start_minute, end_minute], ...]},
        "holidays": [sorted ISO dates]}``; every weekday name is present, closed days as ``[]``.
        """
        return {
            "timezone": self.timezone,
            "hours": {
                name: [[start, end] for start, end in self.hours.days[weekday]]
                for weekday, name in enumerate(WEEKDAY_NAMES)
            },
            "holidays": [holiday.isoformat() for holiday in sorted(self.holidays)],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> BusinessCalendar:
        """Inverse of :meth:`to_dict`; weekdays absent from ``hours`` do not work."""
        timezone = data.get("timezone")
        if not isinstance(timezone, str):
            raise ValueError("timezone must be a string")
        raw_hours = data.get("hours", {})
        if not isinstance(raw_hours, Mapping):
            raise ValueError("hours must be a mapping of weekday name to intervals")
        unknown = set(raw_hours) - set(WEEKDAY_NAMES)
        if unknown:
            raise ValueError(f"hours: unknown weekday names {sorted(map(str, unknown))}")
        days: list[tuple[Interval, ...]] = []
        for name in WEEKDAY_NAMES:
            raw_intervals = raw_hours.get(name, [])
            if not isinstance(raw_intervals, list):
                raise ValueError(f"hours.{name} must be a list of [start, end] pairs")
            days.append(tuple(_parse_interval(name, item) for item in raw_intervals))
        raw_holidays = data.get("holidays", [])
        if not isinstance(raw_holidays, list) or not all(isinstance(h, str) for h in raw_holidays):
            raise ValueError("holidays must be a list of ISO date strings")
        holidays = frozenset(date.fromisoformat(h) for h in raw_holidays)
        return cls(timezone=timezone, hours=WorkingHours(tuple(days)), holidays=holidays)


def business_seconds(calendar: BusinessCalendar, start: datetime, end: datetime) -> int:
    """Whole seconds of working time in ``[start, end)``; 0 when ``end <= start``."""
    return _floor_seconds(_business_time(calendar, _as_utc(start, "start"), _as_utc(end, "end")))


def business_seconds_excluding(
    calendar: BusinessCalendar, start: datetime, end: datetime, pauses: Iterable[Pause]
) -> int:
    """Working seconds in ``[start, end)`` outside every pause; an open pause runs to ``end``."""
    segments = _unpaused_segments(start, end, pauses)
    return _floor_seconds(sum((_business_time(calendar, s, e) for s, e in segments), timedelta()))


def wall_seconds_excluding(start: datetime, end: datetime, pauses: Iterable[Pause]) -> int:
    """Elapsed seconds in ``[start, end)`` outside every pause; an open pause runs to ``end``."""
    segments = _unpaused_segments(start, end, pauses)
    return _floor_seconds(sum((e - s for s, e in segments), timedelta()))


def add_business_seconds(calendar: BusinessCalendar, start: datetime, seconds: int) -> datetime:
    """Earliest UTC instant ``t >= start`` with ``business_seconds(calendar, start, t) == seconds``.

    ``seconds == 0`` gives ``start`` itself (expressed in UTC), even outside working hours.
    """
    origin = _as_utc(start, "start")
    if seconds < 0:
        raise ValueError(f"seconds must be >= 0, got {seconds}")
    if seconds == 0:
        return origin
    if calendar.hours.is_empty:
        raise ValueError("calendar has no working hours; business time can never accumulate")
    remaining = timedelta(seconds=seconds)
    horizon = origin + _SEARCH_CAP
    for span_start, span_end in _working_spans(calendar, origin, horizon):
        available = span_end - max(span_start, origin)
        if available <= timedelta():
            continue
        if available >= remaining:
            return max(span_start, origin) + remaining
        remaining -= available
    raise ValueError(f"no {seconds} business seconds within 20 years of {start.isoformat()}")


def _business_time(calendar: BusinessCalendar, start: datetime, end: datetime) -> timedelta:
    """Exact working time in ``[start, end)``; both bounds must already be in UTC."""
    total = timedelta()
    if end <= start:
        return total
    for span_start, span_end in _working_spans(calendar, start, end):
        overlap = min(span_end, end) - max(span_start, start)
        if overlap > timedelta():
            total += overlap
    return total


def _working_spans(calendar: BusinessCalendar, start: datetime, end: datetime) -> Iterator[Span]:
    """Sorted, disjoint UTC spans of working time covering at least UTC ``[start, end)``.

    Spans are produced lazily so add_business_seconds can stop early.  A local
    instant is within 24h of its naive reading as UTC (tzinfo offsets are
    bounded by a day), so scanning naive-UTC dates with two days of margin
    reaches every interval that can touch the span, and a buffered span ending
    before the naive-UTC midnight of the day just expanded can no longer grow.
    """
    day = max(start.date() - 2 * _ONE_DAY, date.min + 2 * _ONE_DAY)
    last_day = min(end.date() + 2 * _ONE_DAY, date.max - 2 * _ONE_DAY)
    pending: list[Span] = []
    while day <= last_day:
        pending.extend(_day_spans(calendar, day))
        pending = _merge(pending)
        settled = datetime.combine(day, time(), tzinfo=UTC)
        while pending and pending[0][1] < settled:
            yield pending.pop(0)
        day += _ONE_DAY
    yield from pending


@lru_cache(maxsize=1 << 16)
def _day_spans(calendar: BusinessCalendar, day: date) -> tuple[Span, ...]:
    """The working spans of one local date, in UTC. Pure, so cached: every measurement of a
    situation open for months walks the same days again (the reports' and alerts' hot path)."""
    if day in calendar.holidays:
        return ()
    zone = calendar.zone
    spans = []
    for first, last in calendar.hours.days[day.weekday()]:
        span = (_local_minute(day, first, zone), _local_minute(day, last, zone))
        if span[0] < span[1]:
            spans.append(span)
    return tuple(spans)


def _local_minute(day: date, minute: int, zone: ZoneInfo) -> datetime:
    naive = datetime.combine(day, time()) + timedelta(minutes=minute)
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _merge(spans: Iterable[Span]) -> list[Span]:
    merged: list[Span] = []
    for span_start, span_end in sorted(spans):
        if merged and span_start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], span_end))
        else:
            merged.append((span_start, span_end))
    return merged


def _unpaused_segments(start: datetime, end: datetime, pauses: Iterable[Pause]) -> list[Span]:
    start, end = _as_utc(start, "start"), _as_utc(end, "end")
    if end <= start:
        return []
    clipped: list[Span] = []
    for index, (raw_start, raw_end) in enumerate(pauses):
        pause_start = _as_utc(raw_start, f"pauses[{index}] start")
        pause_end = None if raw_end is None else _as_utc(raw_end, f"pauses[{index}] end")
        if pause_end is not None and pause_end < pause_start:
            raise ValueError(f"pauses[{index}] ends before it starts")
        lower = max(pause_start, start)
        upper = end if pause_end is None else min(pause_end, end)
        if lower < upper:
            clipped.append((lower, upper))
    segments: list[Span] = []
    cursor = start
    for pause_start, pause_end in _merge(clipped):
        if cursor < pause_start:
            segments.append((cursor, pause_start))
        cursor = max(cursor, pause_end)
    if cursor < end:
        segments.append((cursor, end))
    return segments


def _parse_interval(name: str, item: object) -> Interval:
    if (
        not isinstance(item, (list, tuple))
        or len(item) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
    ):
        raise ValueError(
            f"hours.{name}: each interval must be [start_minute, end_minute], got {item!r}"
        )
    return (int(item[0]), int(item[1]))


def _load_zone(name: str, field_name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"{field_name}: unknown IANA time zone {name!r}") from exc


def _as_utc(value: datetime, name: str) -> datetime:
    # Python compares and subtracts datetimes sharing a tzinfo by wall clock,
    # ignoring DST offsets and fold, so every instant is converted to UTC first.
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value.astimezone(UTC)


def _floor_seconds(duration: timedelta) -> int:
    return duration // _ONE_SECOND
