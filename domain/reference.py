"""Reference data with streams of their own: specialists (with plans), calendars, SLA targets."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import InvalidValueError
from domain.values import Meta, Money

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


class Specialist(CrmAggregate):
    """An employee who serves clients, with a collection plan per calendar month."""

    class SpecialistRegistered(CrmAggregate.Created):
        name: str
        email: str | None
        user_id: str | None

        def apply(self, agg: Specialist) -> None:
            agg.client_id = None
            agg.plans = {}

    class PaymentPlanSet(CrmAggregate.Event):
        month: str
        amount: Decimal
        currency: str

        def apply(self, agg: Specialist) -> None:
            agg.plans[self.month] = (self.amount, self.currency)

    if TYPE_CHECKING:
        plans: dict[str, tuple[Decimal, str]]

    @classmethod
    def register(cls, *, id: UUID, meta: Meta, name: str, email: str | None,
                 user_id: str | None) -> Specialist:
        if not name.strip():
            raise InvalidValueError("must not be blank", field="name")
        return cls._start(cls.SpecialistRegistered, id=id, client_id=None, meta=meta, name=name,
                          email=email, user_id=user_id)

    def set_plan(self, meta: Meta, month: str, amount: Money) -> None:
        if not _MONTH.match(month):
            raise InvalidValueError("a month as YYYY-MM", field="month")
        self._emit(self.PaymentPlanSet, meta, month=month, amount=amount.amount,
                   currency=amount.currency)


class Calendar(CrmAggregate):
    """A business calendar (time zone, weekly hours, holidays). Each change is a new version,
    so a past figure can be shown as measured then or under today's calendar."""

    class CalendarDefined(CrmAggregate.Created):
        calendar: dict[str, Any]

        def apply(self, agg: Calendar) -> None:
            agg.client_id = None
            agg.calendar = self.calendar

    class CalendarChanged(CrmAggregate.Event):
        calendar: dict[str, Any]

        def apply(self, agg: Calendar) -> None:
            agg.calendar = self.calendar

    if TYPE_CHECKING:
        calendar: dict[str, Any]

    @classmethod
    def define(cls, *, id: UUID, meta: Meta, calendar: dict[str, Any]) -> Calendar:
        return cls._start(cls.CalendarDefined, id=id, client_id=None, meta=meta,
                          calendar=calendar)

    def change(self, meta: Meta, calendar: dict[str, Any]) -> None:
        self._emit(self.CalendarChanged, meta, calendar=calendar)


class SlaTarget(CrmAggregate):
    """Reaction and resolution targets for one situation kind; versioned like calendars."""

    class SlaTargetDefined(CrmAggregate.Created):
        situation_kind: str
        first_reaction_seconds: int
        resolution_seconds: int
        business_hours: bool
        warn_ratio: float
        calendar_id: UUID | None

        def apply(self, agg: SlaTarget) -> None:
            agg.client_id = None

    class SlaTargetChanged(CrmAggregate.Event):
        situation_kind: str
        first_reaction_seconds: int
        resolution_seconds: int
        business_hours: bool
        warn_ratio: float
        calendar_id: UUID | None

    @staticmethod
    def _check(first_reaction_seconds: int, resolution_seconds: int, warn_ratio: float) -> None:
        if first_reaction_seconds <= 0:
            raise InvalidValueError("must be positive", field="first_reaction_seconds")
        if resolution_seconds < first_reaction_seconds:
            raise InvalidValueError("must not be shorter than the first reaction target",
                                    field="resolution_seconds")
        if not 0 < warn_ratio < 1:
            raise InvalidValueError("a share between 0 and 1", field="warn_ratio")

    @classmethod
    def define(cls, *, id: UUID, meta: Meta, **target: Any) -> SlaTarget:
        cls._check(target["first_reaction_seconds"], target["resolution_seconds"],
                   target["warn_ratio"])
        return cls._start(cls.SlaTargetDefined, id=id, client_id=None, meta=meta, **target)

    def change(self, meta: Meta, **target: Any) -> None:
        self._check(target["first_reaction_seconds"], target["resolution_seconds"],
                    target["warn_ratio"])
        self._emit(self.SlaTargetChanged, meta, **target)
