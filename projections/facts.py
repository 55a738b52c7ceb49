"""Helpers for fact tables: `at`/`as_of` predicates, exact money units, decimal and % strings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, true

_CENT = Decimal("0.01")
_UNIT = 4  # decimal places of the stored amounts (commands accept at most 4)


# Bound for "no knowledge cut-off" in statements built once: recorded <= this is every row.
FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def client_params(client_id: UUID, at: datetime | None,
                  as_of: datetime | None) -> dict[str, Any]:
    """Parameters of the card's prebuilt per-client statements (b_client, b_at, b_as_of)."""
    return {"b_client": client_id, "b_at": at, "b_as_of": as_of or FAR_FUTURE}


def known(recorded: Any, as_of: datetime | None) -> ColumnElement[bool]:
    """Recorded at or before the knowledge cut-off (no cut-off: everything stored)."""
    return true() if as_of is None else recorded <= as_of


def happened(occurred: Any, recorded: Any, at: datetime,
             as_of: datetime | None) -> ColumnElement[bool]:
    """A change that had happened by `at` and was known by `as_of` (NULL: never happened)."""
    return and_(occurred.is_not(None), occurred <= at, known(recorded, as_of))


def units(amount: Decimal) -> int:
    """An amount as an exact integer count of ten-thousandths: SQL sums of these are exact on
    every backend (SQLite sums NUMERIC as floats)."""
    return int(amount.scaleb(_UNIT).to_integral_exact())


def from_units(value: int | Decimal) -> Decimal:
    return Decimal(int(value)).scaleb(-_UNIT)


def money(value: Decimal) -> str:
    """An exact decimal string: cents when that is exact, otherwise the 4 stored places."""
    exact = value.quantize(Decimal("0.0001"))
    return str(exact.quantize(_CENT) if exact == exact.quantize(_CENT) else exact)


def percent(part: Decimal | int, whole: Decimal | int) -> str | None:
    """part / whole as a percentage with two decimals (half-even); None when whole is zero."""
    if not whole:
        return None
    return str((Decimal(part) * 100 / Decimal(whole)).quantize(_CENT, ROUND_HALF_EVEN))
