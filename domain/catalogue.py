"""The event catalogue: every event type of the contract by its name (§3)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from domain.activity import Contact, PlannedContact
from domain.agreement import Agreement, Work
from domain.base import CrmAggregate
from domain.client import Client
from domain.money import Invoice, Payment
from domain.reference import Calendar, SlaTarget, Specialist
from domain.service import Complaint, Wish, WorkOrder
from domain.situation import Situation
from domain.survey import Survey, SurveyTemplate

AGGREGATES: tuple[type[CrmAggregate], ...] = (
    Client, Contact, PlannedContact, Agreement, Work, WorkOrder, Complaint, Wish,
    SurveyTemplate, Survey, Situation, Invoice, Payment, Specialist, Calendar, SlaTarget,
)


def _events() -> dict[str, type[CrmAggregate.Event]]:
    found: dict[str, type[CrmAggregate.Event]] = {}
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if (isinstance(value, type) and issubclass(value, CrmAggregate.Event)
                    and name not in ("Event", "Created")):
                if name in found:
                    raise RuntimeError(f"event type {name} is defined twice")
                found[name] = value
    return found


EVENT_TYPES: dict[str, type[CrmAggregate.Event]] = _events()


def event_type(event: object) -> str:
    """The contract name of an event (its class name), e.g. 'ContactLogged'."""
    return type(event).__name__


META_FIELDS = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic",
                         "client_id", "occurred_at", "actor", "actor_role"})


def event_data(event: object) -> dict[str, object]:
    """The event's own fields (without the envelope every event shares)."""
    return {k: v for k, v in vars(event).items() if k not in META_FIELDS}


def jsonable(value: Any) -> Any:
    """Plain JSON values: money stays an exact decimal string, times RFC 3339, ids strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value
