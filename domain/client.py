"""The client: a person or organisation the company exchanges value with; its contact persons."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import ClientErasedError, InvalidTransitionError, InvalidValueError
from domain.values import ClientForm, ClientKind, ContactRole, Meta

PROFILE_FIELDS = ("kind", "form", "name", "tax_id", "phones", "emails", "address", "tags")
PERSON_FIELDS = ("name", "role", "phones", "emails", "notes")


class Client(CrmAggregate):
    """A client's identity, profile, assignment and contact persons. Erasure is terminal."""

    # Registration records when the CRM learned of the client; history from before it (an
    # import, a visit entered after the walk-in was registered) is legitimate, and the
    # registration cannot be re-dated, so its time bounds nothing (docs/decisions.md).
    ORDERED_FROM_START = False

    class ClientRegistered(CrmAggregate.Created):
        kind: str
        form: str
        name: str
        tax_id: str | None
        phones: list[str]
        emails: list[str]
        address: str | None
        tags: list[str]
        specialist_id: UUID | None
        PERSONAL = ("name", "tax_id", "phones", "emails", "address")

        def apply(self, agg: Client) -> None:
            agg.client_id = self.originator_id
            agg.profile = {f: getattr(self, f) for f in PROFILE_FIELDS}
            agg.specialist_id = self.specialist_id
            agg.persons = {}
            agg.interests = []
            agg.erased = False

    class ClientProfileUpdated(CrmAggregate.Event):
        changes: dict[str, Any]
        PERSONAL_KEYS = {"changes": ("name", "tax_id", "phones", "emails", "address")}

        def apply(self, agg: Client) -> None:
            agg.profile.update(self.changes)

    class ClientReassigned(CrmAggregate.Event):
        specialist_id: UUID | None
        previous_specialist_id: UUID | None

        def apply(self, agg: Client) -> None:
            agg.specialist_id = self.specialist_id

    class ClientInterestNoted(CrmAggregate.Event):
        text: str
        PERSONAL = ("text",)

        def apply(self, agg: Client) -> None:
            agg.interests.append(self.text)

    class ContactPersonAdded(CrmAggregate.Event):
        person_id: UUID
        name: str
        role: str
        phones: list[str]
        emails: list[str]
        notes: str | None
        PERSONAL = ("name", "phones", "emails", "notes")

        def apply(self, agg: Client) -> None:
            agg.persons[self.person_id] = {f: getattr(self, f) for f in PERSON_FIELDS}

    class ContactPersonUpdated(CrmAggregate.Event):
        person_id: UUID
        changes: dict[str, Any]
        PERSONAL_KEYS = {"changes": ("name", "phones", "emails", "notes")}

        def apply(self, agg: Client) -> None:
            agg.persons[self.person_id].update(self.changes)

    class ContactPersonRemoved(CrmAggregate.Event):
        person_id: UUID

        def apply(self, agg: Client) -> None:
            del agg.persons[self.person_id]

    class ClientErased(CrmAggregate.Event):
        reason: str

        def apply(self, agg: Client) -> None:
            agg.erased = True

    # -- rules --------------------------------------------------------------------------------

    if TYPE_CHECKING:  # state assigned by apply(); not dataclass fields of the aggregate
        profile: dict[str, Any]
        specialist_id: UUID | None
        persons: dict[UUID, dict[str, Any]]
        interests: list[str]
        erased: bool

    @classmethod
    def register(cls, *, id: UUID, meta: Meta, kind: ClientKind, form: ClientForm,
                 name: str, tax_id: str | None = None, phones: list[str] | None = None,
                 emails: list[str] | None = None, address: str | None = None,
                 tags: list[str] | None = None, specialist_id: UUID | None = None) -> Client:
        if not name.strip():
            raise InvalidValueError("must not be blank", field="name")
        return cls._start(
            cls.ClientRegistered, id=id, client_id=id, meta=meta, kind=str(kind), form=str(form),
            name=name, tax_id=tax_id, phones=list(phones or []), emails=list(emails or []),
            address=address, tags=list(tags or []), specialist_id=specialist_id,
        )

    def _live(self) -> None:
        if self.erased:
            raise ClientErasedError("the client was erased")

    def update_profile(self, meta: Meta, changes: dict[str, Any]) -> None:
        self._live()
        unknown = set(changes) - set(PROFILE_FIELDS)
        if unknown:
            raise InvalidValueError("not a profile field", field=sorted(unknown)[0])
        if "name" in changes and not str(changes["name"]).strip():
            raise InvalidValueError("must not be blank", field="name")
        effective = {k: v for k, v in changes.items() if self.profile.get(k) != v}
        if not effective:
            raise InvalidTransitionError("the profile already has these values")
        self._emit(self.ClientProfileUpdated, meta, changes=effective)

    def reassign(self, meta: Meta, specialist_id: UUID | None) -> None:
        self._live()
        self._require(specialist_id != self.specialist_id, "already assigned to this specialist")
        self._emit(self.ClientReassigned, meta, specialist_id=specialist_id,
                   previous_specialist_id=self.specialist_id)

    def note_interest(self, meta: Meta, text: str) -> None:
        self._live()
        if not text.strip():
            raise InvalidValueError("must not be blank", field="text")
        self._emit(self.ClientInterestNoted, meta, text=text)

    def add_person(self, meta: Meta, *, person_id: UUID, name: str, role: ContactRole,
                   phones: list[str], emails: list[str], notes: str | None) -> None:
        self._live()
        self._require(person_id not in self.persons, "this contact person exists already")
        if not name.strip():
            raise InvalidValueError("must not be blank", field="name")
        self._emit(self.ContactPersonAdded, meta, person_id=person_id, name=name, role=str(role),
                   phones=list(phones), emails=list(emails), notes=notes)

    def update_person(self, meta: Meta, person_id: UUID, changes: dict[str, Any]) -> None:
        self._live()
        self.require_person(person_id)
        unknown = set(changes) - set(PERSON_FIELDS)
        if unknown:
            raise InvalidValueError("not a contact person field", field=sorted(unknown)[0])
        self._emit(self.ContactPersonUpdated, meta, person_id=person_id, changes=dict(changes))

    def remove_person(self, meta: Meta, person_id: UUID) -> None:
        self._live()
        self.require_person(person_id)
        self._emit(self.ContactPersonRemoved, meta, person_id=person_id)

    def require_person(self, person_id: UUID, field: str = "person_id") -> None:
        if person_id not in self.persons:
            raise InvalidValueError("no such contact person for this client", field=field)

    def erase(self, meta: Meta, reason: str) -> None:
        self._live()
        self._emit(self.ClientErased, meta, reason=reason)

    def ensure_live(self) -> None:
        """Other aggregates' commands call this: nothing is recorded for an erased client."""
        self._live()
