"""Report helpers: local calendar days in a report's time zone, and exact percentages."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def zone_of(tz: str) -> ZoneInfo:
    """The IANA zone named `tz`; ValueError naming it when unknown."""
    try:
        return ZoneInfo(tz)
    except (KeyError, ValueError, OSError, TypeError) as exc:
        raise ValueError(f"unknown IANA time zone {tz!r}") from exc


def local_date(instant: datetime, zone: ZoneInfo) -> date:
    """The calendar day `instant` falls on in `zone`."""
    return instant.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant of local midnight starting `day` (a midnight in a DST gap reads fold=0)."""
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def day_end(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant of local midnight ending `day` (exclusive upper bound)."""
    return day_start(day + timedelta(days=1), zone)


def percent(part: int, whole: int) -> str | None:
    """`part / whole` as a percentage with one decimal, rounded half up from the exact ratio.

    Integer arithmetic only, so no float or decimal-context rounding ever shifts a tenth;
    None when there is nothing to divide by."""
    if whole == 0:
        return None
    tenths = (2000 * part + whole) // (2 * whole)
    return f"{tenths // 10}.{tenths % 10}"
