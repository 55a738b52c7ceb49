"""Query parameters every read shares: `at`, `as_of`, and the calendar zone, with defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Query, Request

from commands.fields import Instant
from domain.errors import InvalidValueError
from domain.values import EARLIEST_YEAR, LATEST_YEAR

# Reads take the instants writes take (commands.base.Instant: years 1900 to 2999 as written), so
# whatever was recorded can be asked about, and month and day arithmetic has room either side.
At = Annotated[Instant | None, Query(
    description="The business moment described (RFC 3339 with offset, years "
                f"{EARLIEST_YEAR} to {LATEST_YEAR}); default now.")]
AsOf = Annotated[Instant | None, Query(
    description="Knowledge cut-off: only events recorded at or before it (RFC 3339 with "
                f"offset, years {EARLIEST_YEAR} to {LATEST_YEAR}); default everything "
                "recorded so far.")]


def moments(request: Request, at: datetime | None,
            as_of: datetime | None) -> tuple[datetime, datetime | None]:
    """`at` defaulting to this app's clock (a test's manual clock included); `as_of` None
    means no cut-off: everything recorded so far."""
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
