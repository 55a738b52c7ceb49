"""Query parameters every read shares: `at`, `as_of`, and the calendar zone, with defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import HTTPException, Query, Request
from pydantic import AwareDatetime

At = Annotated[AwareDatetime | None, Query(
    description="The business moment described (RFC 3339 with offset); default now.")]
AsOf = Annotated[AwareDatetime | None, Query(
    description="Knowledge cut-off: only events recorded at or before it (RFC 3339 with "
                "offset); default everything recorded so far.")]

# Month and day arithmetic needs room on either side of every instant.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


def moments(request: Request, at: datetime | None,
            as_of: datetime | None) -> tuple[datetime, datetime | None]:
    """`at` defaulting to this app's clock (a test's manual clock included); `as_of` None
    means no cut-off: everything recorded so far."""
    for name, value in (("at", at), ("as_of", as_of)):
        if value is not None and not EARLIEST <= value < LATEST:
            raise HTTPException(422, f"{name}: must lie between the years 1900 and 9000")
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
        raise HTTPException(422, f"tz: unknown IANA time zone {name!r}") from None
    return name
