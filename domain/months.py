"""Calendar-month arithmetic for client segmentation and month-end forecasts."""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

_CENT = Decimal("0.01")


class Segment(StrEnum):
    ACTIVE = "active"
    LOW_ACTIVE = "low_active"
    AT_RISK = "at_risk"
    LOST = "lost"
    NEVER = "never"


def days_in_month(year: int, month: int) -> int:
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1..12, got {month}")
    return calendar.monthrange(year, month)[1]


def add_months(d: date, n: int) -> date:
    """Shift by ``n`` calendar months, clamping the day to the target month's last day."""
    year, month_index = divmod(d.year * 12 + (d.month - 1) + n, 12)
    if not 1 <= year <= 9999:
        raise ValueError(f"{d.isoformat()} shifted by {n} months is outside the supported years")
    month = month_index + 1
    return date(year, month, min(d.day, days_in_month(year, month)))


def segment_at(last_activity: date | None, at: date) -> Segment:
    """Classify by the age of the last activity on ``at``; a boundary day is the newer segment."""
    if last_activity is None:
        return Segment.NEVER
    # Comparing against clamped month shifts of ``at`` (rather than shifting the
    # activity forward) keeps month-end boundaries stable: for at = Aug 31 the
    # six-month boundary is Feb 28/29, not a non-existent Feb 31.
    if last_activity >= add_months(at, -6):
        return Segment.ACTIVE
    if last_activity >= add_months(at, -12):
        return Segment.LOW_ACTIVE
    if last_activity >= add_months(at, -13):
        return Segment.AT_RISK
    return Segment.LOST


def month_bounds(year: int, month: int, tz: str) -> tuple[datetime, datetime]:
    """UTC instants of local midnight starting the month and the next one in zone ``tz``.

    A midnight that does not exist locally (a DST gap at 00:00) is read with
    ``fold=0``, i.e. the first instant after the gap.
    """
    zone = _load_zone(tz)
    first = date(year, month, 1)
    following = add_months(first, 1)
    return _local_midnight_utc(first, zone), _local_midnight_utc(following, zone)


def month_of(instant: datetime, tz: str) -> str:
    """``YYYY-MM`` of the local date of ``instant`` in zone ``tz``."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"instant must be a timezone-aware datetime, got {instant!r}")
    local = instant.astimezone(_load_zone(tz))
    return f"{local.year:04d}-{local.month:02d}"


def forecast_month_end(collected: Decimal, day_of_month: int, days_in_month: int) -> Decimal:
    """Linear projection ``collected / day_of_month * days_in_month``, half-even to cents."""
    if not collected.is_finite():
        raise ValueError(f"collected must be finite, got {collected}")
    if not 28 <= days_in_month <= 31:
        raise ValueError(f"days_in_month must be 28..31, got {days_in_month}")
    if not 1 <= day_of_month <= days_in_month:
        raise ValueError(f"day_of_month must be 1..{days_in_month}, got {day_of_month}")
    # Multiplying first is exact, so the only inexact step is one division;
    # dividing first could round a repeating quotient and shift a cent.
    projected = collected * days_in_month / day_of_month
    return projected.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _local_midnight_utc(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _load_zone(tz: str) -> ZoneInfo:
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"tz: unknown IANA time zone {tz!r}") from exc
