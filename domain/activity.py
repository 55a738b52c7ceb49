"""Contacts with clients (calls, meetings, mails...) and the contacts planned ahead."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import CrmAggregate, sealed_since
from domain.values import Channel, ContactPurpose, Direction, Meta


class Contact(CrmAggregate):
    """One logged contact. Immutable once logged: corrections are new contacts."""

    class ContactLogged(CrmAggregate.Created):
        channel: str
        direction: str
        purpose: str | None
        topic: str
        summary: str | None
        contact_person_id: UUID | None
        specialist_id: UUID | None
        situation_id: UUID | None
        planned_contact_id: UUID | None
        # The topic is free text typed at the desk (it can name the person or their affairs).
        # v2 (issue 15.4): the topic is sealed with the client's key; v1 rows hold it in
        # clear and read as they are (domain.base.sealed_since, docs/decisions.md).
        PERSONAL = ("topic", "summary")
        class_version = 2
        upcast_v1_v2 = staticmethod(sealed_since)

        def apply(self, agg: Contact) -> None:
            agg.client_id = self.client_id
            agg.purpose = self.purpose

    if TYPE_CHECKING:
        purpose: str | None

    @classmethod
    def log(cls, *, id: UUID, client_id: UUID, meta: Meta, channel: Channel,
            direction: Direction, purpose: ContactPurpose | None, topic: str,
            summary: str | None, contact_person_id: UUID | None, specialist_id: UUID | None,
            situation_id: UUID | None, planned_contact_id: UUID | None) -> Contact:
        return cls._start(
            cls.ContactLogged, id=id, client_id=client_id, meta=meta, channel=str(channel),
            direction=str(direction), purpose=str(purpose) if purpose else None, topic=topic,
            summary=summary, contact_person_id=contact_person_id, specialist_id=specialist_id,
            situation_id=situation_id, planned_contact_id=planned_contact_id,
        )


class PlannedContact(CrmAggregate):
    """A contact planned for a due date: done by a logged contact naming it, or cancelled."""

    class ContactPlanned(CrmAggregate.Created):
        purpose: str
        due_at: datetime
        specialist_id: UUID | None
        note: str | None
        PERSONAL = ("note",)

        def apply(self, agg: PlannedContact) -> None:
            agg.client_id = self.client_id
            agg.status = "planned"
            agg.due_at = self.due_at

    class PlannedContactCompleted(CrmAggregate.Event):
        contact_id: UUID

        def apply(self, agg: PlannedContact) -> None:
            agg.status = "done"

    class PlannedContactCancelled(CrmAggregate.Event):
        reason: str | None
        # v2 (issue 15.4): the free-text reason is sealed with the client's key; v1 rows hold it in
        # clear and read as they are (domain.base.sealed_since, docs/decisions.md).
        PERSONAL = ("reason",)
        class_version = 2
        upcast_v1_v2 = staticmethod(sealed_since)

        def apply(self, agg: PlannedContact) -> None:
            agg.status = "cancelled"

    if TYPE_CHECKING:
        status: str
        due_at: datetime

    @classmethod
    def plan(cls, *, id: UUID, client_id: UUID, meta: Meta, purpose: ContactPurpose,
             due_at: datetime, specialist_id: UUID | None, note: str | None) -> PlannedContact:
        return cls._start(cls.ContactPlanned, id=id, client_id=client_id, meta=meta,
                          purpose=str(purpose), due_at=due_at, specialist_id=specialist_id,
                          note=note)

    def complete(self, meta: Meta, contact_id: UUID) -> None:
        self._require(self.status == "planned", f"the planned contact is {self.status}")
        self._emit(self.PlannedContactCompleted, meta, contact_id=contact_id)

    def cancel(self, meta: Meta, reason: str | None) -> None:
        self._require(self.status == "planned", f"the planned contact is {self.status}")
        self._emit(self.PlannedContactCancelled, meta, reason=reason)
