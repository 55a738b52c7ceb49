"""Value types of the domain: enumerations, money, and the metadata every event carries."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from domain.errors import InvalidValueError


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
        if value.as_tuple().exponent < -4:  # type: ignore[operator]
            raise InvalidValueError("at most 4 decimal places", field=field)
        if not _CURRENCY.match(currency):
            raise InvalidValueError("an ISO 4217 code such as EUR", field="currency")
        return cls(value, currency)


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
