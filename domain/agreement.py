"""Agreements made with clients in contacts, and work assigned for them (with feedback)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import InvalidValueError
from domain.values import Meta


class Agreement(CrmAggregate):
    """Something promised in a contact, by a due date: fulfilled or broken, once."""

    class AgreementMade(CrmAggregate.Created):
        text: str
        due_at: datetime
        contact_id: UUID | None
        PERSONAL = ("text",)

        def apply(self, agg: Agreement) -> None:
            agg.client_id = self.client_id
            agg.status = "open"

    class AgreementFulfilled(CrmAggregate.Event):
        note: str | None
        PERSONAL = ("note",)

        def apply(self, agg: Agreement) -> None:
            agg.status = "fulfilled"

    class AgreementBroken(CrmAggregate.Event):
        reason: str | None
        PERSONAL = ("reason",)

        def apply(self, agg: Agreement) -> None:
            agg.status = "broken"

    if TYPE_CHECKING:
        status: str

    @classmethod
    def make(cls, *, id: UUID, client_id: UUID, meta: Meta, text: str,
             due_at: datetime, contact_id: UUID | None) -> Agreement:
        if not text.strip():
            raise InvalidValueError("must not be blank", field="text")
        return cls._start(cls.AgreementMade, id=id, client_id=client_id, meta=meta, text=text,
                          due_at=due_at, contact_id=contact_id)

    def fulfil(self, meta: Meta, note: str | None) -> None:
        self._require(self.status == "open", f"the agreement is already {self.status}")
        self._emit(self.AgreementFulfilled, meta, note=note)

    def break_(self, meta: Meta, reason: str | None) -> None:
        self._require(self.status == "open", f"the agreement is already {self.status}")
        self._emit(self.AgreementBroken, meta, reason=reason)


class Work(CrmAggregate):
    """Work done for a client by an assignee; completed once, then rated once by the client."""

    class WorkAssigned(CrmAggregate.Created):
        text: str
        due_at: datetime | None
        assignee: str
        PERSONAL = ("text",)

        def apply(self, agg: Work) -> None:
            agg.client_id = self.client_id
            agg.status = "assigned"
            agg.rated = False

    class WorkCompleted(CrmAggregate.Event):
        note: str | None
        PERSONAL = ("note",)

        def apply(self, agg: Work) -> None:
            agg.status = "completed"

    class FeedbackReceived(CrmAggregate.Event):
        rating: int
        text: str | None
        PERSONAL = ("text",)

        def apply(self, agg: Work) -> None:
            agg.rated = True

    if TYPE_CHECKING:
        status: str
        rated: bool

    @classmethod
    def assign(cls, *, id: UUID, client_id: UUID, meta: Meta, text: str,
               due_at: datetime | None, assignee: str) -> Work:
        if not text.strip():
            raise InvalidValueError("must not be blank", field="text")
        return cls._start(cls.WorkAssigned, id=id, client_id=client_id, meta=meta, text=text,
                          due_at=due_at, assignee=assignee)

    def complete(self, meta: Meta, note: str | None) -> None:
        self._require(self.status == "assigned", "the work is already completed")
        self._emit(self.WorkCompleted, meta, note=note)

    def receive_feedback(self, meta: Meta, rating: int, text: str | None) -> None:
        if not 1 <= rating <= 5:
            raise InvalidValueError("a rating from 1 to 5", field="rating")
        self._require(self.status == "completed", "feedback is taken on completed work only")
        self._require(not self.rated, "feedback was already received for this work")
        self._emit(self.FeedbackReceived, meta, rating=rating, text=text)
