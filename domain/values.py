"""Value types of the domain: enumerations, money, and the metadata every event carries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from domain.currencies import ACCEPTED as CURRENCIES
from domain.errors import InvalidValueError

# What the domain can hold (docs/decisions.md, "Validation at the door"). Read models keep amounts
# as Numeric(18, 4) and as integer ten-thousandths in a 64-bit column that SQL sums: 12 integer
# digits leave room for sums of some hundreds of the largest amounts on every backend.
AMOUNT_INTEGER_DIGITS = 12
AMOUNT_DECIMALS = 4
MAX_AMOUNT = Decimal("999999999999.9999")
AMOUNT_PATTERN = rf"^\d{{1,{AMOUNT_INTEGER_DIGITS}}}(\.\d{{1,{AMOUNT_DECIMALS}}})?$"
# Business instants and dates (as written, in their own offset): years 1900 to 2999. Reads
# (`at`, `as_of`) take the same range, so whatever was written can be asked about.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999


class ClientKind(StrEnum):
    CUSTOMER = "customer"
    EMPLOYEE = "employee"
    SUPPLIER = "supplier"
    PARTNER = "partner"
    PROSPECT = "prospect"


class ClientForm(StrEnum):
    PERSON = "person"
    ORGANISATION = "organisation"


class ContactRole(StrEnum):
    CONTACT = "contact"
    DECISION_MAKER = "decision_maker"
    INFLUENCER = "influencer"
    USER = "user"


class Channel(StrEnum):
    PHONE = "phone"
    MEETING = "meeting"
    EMAIL = "email"
    CHAT = "chat"
    VISIT = "visit"
    PORTAL = "portal"
    FAX = "fax"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class ContactPurpose(StrEnum):
    # planned
    REGULAR = "regular"
    FIRST_MEETING = "first_meeting"
    CONTRACT_RENEWAL = "contract_renewal"
    NEEDS_DISCOVERY = "needs_discovery"
    COMPETITOR_SWITCH = "competitor_switch"
    # problem
    PAYMENT_DELAY = "payment_delay"
    ACTS_NOT_RETURNED = "acts_not_returned"
    LOW_USAGE = "low_usage"
    # emergency
    CHURN_THREAT = "churn_threat"
    COMPETITOR_THREAT = "competitor_threat"
    COMPLAINT = "complaint"

    @property
    def category(self) -> str:
        if self in _EMERGENCY:
            return "emergency"
        if self in _PROBLEM:
            return "problem"
        return "planned"

    @property
    def is_emergency(self) -> bool:
        return self in _EMERGENCY


_PROBLEM = frozenset({"payment_delay", "acts_not_returned", "low_usage"})
_EMERGENCY = frozenset({"churn_threat", "competitor_threat", "complaint"})


class SituationKind(StrEnum):
    COMPLAINT = "complaint"
    SURVEY_DISSATISFACTION = "survey_dissatisfaction"
    CHURN_THREAT = "churn_threat"
    COMPETITOR_THREAT = "competitor_threat"
    PAYMENT_DELAY = "payment_delay"
    ACTS_NOT_RETURNED = "acts_not_returned"
    LOW_USAGE = "low_usage"
    OTHER = "other"


class SurveyOutcome(StrEnum):
    COMPLETED = "completed"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"


class Role(StrEnum):
    OPERATOR = "operator"
    MANAGER = "manager"
    AUDITOR = "auditor"
    ANALYST = "analyst"
    ADMIN = "admin"


_CURRENCY = re.compile(r"^[A-Z]{3}$")


def check_currency(code: str, *, field: str = "currency") -> str:
    """An ISO 4217 code in use (domain.currencies), upper case."""
    if not _CURRENCY.match(code):
        raise InvalidValueError("an ISO 4217 code such as EUR", field=field)
    if code not in CURRENCIES:
        raise InvalidValueError(f"{code} is not an ISO 4217 currency code in use", field=field)
    return code


def check_instant(value: datetime | date, *, field: str) -> None:
    """A business instant or date the domain can hold: year 1900..2999 as written."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise InvalidValueError(f"must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}",
                                field=field)


@dataclass(frozen=True)
class Money:
    """An exact amount in an ISO 4217 currency; never a float."""

    amount: Decimal
    currency: str

    @classmethod
    def parse(cls, amount: str | Decimal, currency: str, *, field: str = "amount",
              positive: bool = True) -> Money:
        try:
            value = Decimal(str(amount))
        except InvalidOperation:
            raise InvalidValueError("not a decimal number", field=field) from None
        if not value.is_finite():
            raise InvalidValueError("not a finite decimal number", field=field)
        if value < 0 or (positive and value == 0):
            raise InvalidValueError("must be greater than zero" if positive
                                    else "must not be negative", field=field)
        if value.as_tuple().exponent < -AMOUNT_DECIMALS:  # type: ignore[operator]
            raise InvalidValueError(f"at most {AMOUNT_DECIMALS} decimal places", field=field)
        if value > MAX_AMOUNT:
            raise InvalidValueError(f"must not exceed {MAX_AMOUNT}", field=field)
        check_currency(currency)
        # One notation for every amount stored ("1E+2" is kept as "100").
        return cls(Decimal(format(value, "f")), currency)


@dataclass(frozen=True)
class Meta:
    """Who did it and when: business time given by the caller, record time from the server."""

    occurred_at: datetime
    recorded_at: datetime
    actor: str
    actor_role: str

    def __post_init__(self) -> None:
        for name in ("occurred_at", "recorded_at"):
            value = getattr(self, name)
            if value.tzinfo is None or value.utcoffset() is None:
                raise InvalidValueError("a date-time with a UTC offset is required", field=name)
        check_instant(self.occurred_at, field="occurred_at")
