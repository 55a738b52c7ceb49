"""Query parameters every read shares: `at`, `as_of`, and the calendar zone, with defaults.

`at` and `as_of` take an instant with offset or a date (§4): a date means the end of that day
(its last microsecond) in the zone of the read (`tz` where the read has one, else
CRM_TIMEZONE), so "as at 2026-06-01" includes everything of that day.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Query, Request
from pydantic import BeforeValidator, TypeAdapter, ValidationError, WithJsonSchema

from commands.fields import Day, Instant
from domain.errors import InvalidValueError
from domain.values import EARLIEST_YEAR, LATEST_YEAR

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)
_DAY: TypeAdapter[date] = TypeAdapter(Day)


def _moment(value: Any) -> Any:
    """A date for `YYYY-MM-DD`, else an instant with offset (commands.fields.Instant's rules);
    one message naming what is accepted when neither."""
    adapter: TypeAdapter[Any] = _DAY if isinstance(value, str) and _DATE.fullmatch(value) \
        else _INSTANT
    try:
        return adapter.validate_python(value)
    except ValidationError as error:
        reason = error.errors()[0]["msg"]
        raise ValueError(f"an RFC 3339 instant with offset (2026-06-01T12:00:00+02:00) or a "
                         f"date (2026-06-01), years {EARLIEST_YEAR} to {LATEST_YEAR}: "
                         f"{reason}") from None


# Reads take the instants writes take (years 1900 to 2999 as written), so whatever was recorded
# can be asked about, and month and day arithmetic has room either side; or a date.
Moment = Annotated[datetime | date, BeforeValidator(_moment), WithJsonSchema({
    "anyOf": [{"type": "string", "format": "date-time", "pattern": r"^(19|2\d)\d\d-"},
              {"type": "string", "format": "date", "pattern": r"^(19|2\d)\d\d-"}]})]
At = Annotated[Moment | None, Query(
    description="The business moment described: RFC 3339 with offset, or a date (the end of "
                f"that day in the read's zone); years {EARLIEST_YEAR} to {LATEST_YEAR}; "
                "default now.")]
AsOf = Annotated[Moment | None, Query(
    description="Knowledge cut-off: only events recorded at or before it (RFC 3339 with "
                "offset, or a date: the end of that day in the read's zone; years "
                f"{EARLIEST_YEAR} to {LATEST_YEAR}); default everything recorded so far.")]


def _settings_zone(request: Request) -> str:
    container = getattr(request.app.state, "container", None)
    return container.settings.timezone if container is not None else "UTC"


def end_of_day(day: date, zone: str) -> datetime:
    """The last microsecond of `day` in `zone` (a day may be 23 or 25 hours long)."""
    # In the zone's wall time, so the year stays the one written (checked by the reads).
    return datetime.combine(day + timedelta(days=1), time(), tzinfo=ZoneInfo(zone)) \
        - timedelta(microseconds=1)


def resolve(request: Request, value: datetime | date | None,
            tz: str | None = None) -> datetime | None:
    """An instant for `value`: itself, or for a date the end of that day in `tz` (default
    CRM_TIMEZONE)."""
    if value is None or isinstance(value, datetime):
        return value
    return end_of_day(value, tz or _settings_zone(request))


def moments(request: Request, at: datetime | date | None, as_of: datetime | date | None,
            tz: str | None = None) -> tuple[datetime, datetime | None]:
    """`at` defaulting to this app's clock (a test's manual clock included); `as_of` None
    means no cut-off: everything recorded so far. Dates are the end of that day in `tz`."""
    at, as_of = resolve(request, at, tz), resolve(request, as_of, tz)
    for name, value in (("at", at), ("as_of", as_of)):
        if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise InvalidValueError(f"must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}",
                                    field=f"query.{name}")
    container = getattr(request.app.state, "container", None)
    now = container.clock() if container is not None else datetime.now(UTC)
    return at or now, as_of


def zone(request: Request, tz: str | None) -> str:
    """The calendar zone asked for, else the server's CRM_TIMEZONE (UTC when not set)."""
    container = getattr(request.app.state, "container", None)
    name = tz or (container.settings.timezone if container is not None else "UTC")
    try:
        ZoneInfo(name)
    except (KeyError, ValueError, OSError):
        raise InvalidValueError(f"unknown IANA time zone {name!r}", field="query.tz") from None
    return name
