"""Validated field types of the commands: what the domain and every backend can hold.

The limits are data in domain.values and domain.currencies; here they become pydantic types whose
JSON schema states each rule (pattern, enum, range in the description), so the API, the batch
and the Kafka ingest (all running the command models) refuse the same input.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, Field

from domain.currencies import ACCEPTED as CURRENCIES
from domain.errors import InvalidValueError
from domain.values import (
    AMOUNT_DECIMALS,
    AMOUNT_INTEGER_DIGITS,
    AMOUNT_PATTERN,
    EARLIEST_YEAR,
    LATEST_YEAR,
    MAX_AMOUNT,
    check_currency,
    check_instant,
)


def _decimal_string(value: str) -> str:
    """The amount rule of domain.values, with a message for each way to break it."""
    if value.startswith("-"):
        raise ValueError("must not be negative")
    if re.fullmatch(AMOUNT_PATTERN, value) is None:
        whole, _point, decimals = value.partition(".")
        if whole.isdigit() and (not decimals or decimals.isdigit()):
            if len(whole) > AMOUNT_INTEGER_DIGITS:
                raise ValueError(f"must not exceed {MAX_AMOUNT}")
            if len(decimals) > AMOUNT_DECIMALS:
                raise ValueError(f"at most {AMOUNT_DECIMALS} decimal places")
        raise ValueError(f"must be a plain decimal string such as \"120.50\": up to "
                         f"{AMOUNT_INTEGER_DIGITS} digits, optionally a point and up to "
                         f"{AMOUNT_DECIMALS} decimals (no sign, exponent or spaces)")
    return value


def _currency(value: str) -> str:
    try:
        return check_currency(value)
    except InvalidValueError as error:
        raise ValueError(error.message) from None


_NUMBER = r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*"


def _not_a_number(value: Any) -> Any:
    """pydantic would read a JSON number as Unix seconds or milliseconds, guessing which: an
    instant is written as RFC 3339, as documented."""
    if isinstance(value, (int, float)) or (
            isinstance(value, str) and re.fullmatch(_NUMBER, value)):
        raise ValueError("an RFC 3339 date-time string with an offset, not a number")
    return value


def _instant(value: datetime) -> datetime:
    try:
        check_instant(value, field="")
    except InvalidValueError as error:
        raise ValueError(error.message) from None
    return value


# Money travels as a decimal string, never a JSON number (floats lose cents). The schema states
# the rule (pattern, length); the validator enforces it with a message per case.
Amount = Annotated[str, Field(
    examples=["120.50"], json_schema_extra={
        "pattern": AMOUNT_PATTERN, "maxLength": AMOUNT_INTEGER_DIGITS + 1 + AMOUNT_DECIMALS},
    description=f"A decimal string, 0 to {MAX_AMOUNT}, at most {AMOUNT_DECIMALS} decimals."),
    AfterValidator(_decimal_string)]
Currency = Annotated[str, Field(
    pattern=r"^[A-Z]{3}$", examples=["EUR"], json_schema_extra={"enum": sorted(CURRENCIES)},
    description="An ISO 4217 code in use (or withdrawn since 2023)."),
    AfterValidator(_currency)]
RANGE = f"years {EARLIEST_YEAR} to {LATEST_YEAR}"
# A business instant: RFC 3339 with an offset, its year (as written) within the domain's range.
Instant = Annotated[AwareDatetime, Field(
    json_schema_extra={"pattern": r"^(19|2\d)\d\d-",
                       "formatMinimum": f"{EARLIEST_YEAR}-01-01T00:00:00Z",
                       "formatMaximum": f"{LATEST_YEAR}-12-31T23:59:59Z"},
    description=f"RFC 3339 with an offset; {RANGE}."),
    BeforeValidator(_not_a_number), AfterValidator(_instant)]


def storable(value: Any) -> Any:
    """Text every backend can hold: PostgreSQL refuses the NUL character in text columns, so an
    event holding one would be accepted and then fail in the read models."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain the NUL character (U+0000)")
    elif isinstance(value, (list, tuple)):
        for item in value:
            storable(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            storable(key)
            storable(item)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            storable(item)
    return value


def _date(value: date) -> date:
    try:
        check_instant(value, field="")
    except InvalidValueError as error:
        raise ValueError(error.message) from None
    return value


Day = Annotated[date, AfterValidator(_date), Field(
    json_schema_extra={"pattern": r"^(19|2\d)\d\d-"}, description=f"A date; {RANGE}.")]
