"""Client commands: register, update, reassign, interests, contact persons, erase."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import Field, model_validator

from commands.base import Command, NoteText, Outcome, ShortText, Text, UnitOfWork, handles
from commands.errors import NotFoundError
from domain.client import Client
from domain.errors import InvalidValueError
from domain.reference import Specialist
from domain.values import ClientForm, ClientKind, ContactRole, Meta

Phone = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[0-9+()\-. ]+$")]
# `\s` differs between regex dialects: JSON Schema's (ECMA 262) has U+FEFF and not U+0085, the
# validator's (Rust) the other way round; naming both keeps the stated rule the enforced one.
_NOT_AT_OR_SPACE = r"[^@\s\x85\uFEFF]"
Email = Annotated[str, Field(max_length=254, pattern=(
    rf"^{_NOT_AT_OR_SPACE}+@{_NOT_AT_OR_SPACE}+\.{_NOT_AT_OR_SPACE}+$"))]
Tag = Annotated[str, Field(min_length=1, max_length=50)]


class RegisterClient(Command):
    NAME = "register_client"
    id: UUID | None = Field(default=None, description="Caller-chosen id (imports); default new.")
    kind: ClientKind
    form: ClientForm
    name: ShortText
    tax_id: Annotated[str, Field(max_length=40)] | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] = []
    emails: Annotated[list[Email], Field(max_length=20)] = []
    address: Annotated[str, Field(max_length=500)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []
    specialist_id: UUID | None = None


class UpdateClient(Command):
    """Partial update: only the fields given change. `specialist_id` reassigns the client."""

    NAME = "update_client"
    # The API's schema states it: the body must set a field other than occurred_at.
    AT_LEAST_ONE_CHANGE: ClassVar[bool] = True
    client_id: UUID
    kind: ClientKind | None = None
    form: ClientForm | None = None
    name: ShortText | None = None
    tax_id: Annotated[str, Field(max_length=40)] | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] | None = None
    emails: Annotated[list[Email], Field(max_length=20)] | None = None
    address: Annotated[str, Field(max_length=500)] | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] | None = None
    specialist_id: UUID | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateClient:
        if not self.model_fields_set - {"client_id", "occurred_at"}:
            raise ValueError("give at least one field to change")
        return self


class NoteInterest(Command):
    NAME = "note_interest"
    client_id: UUID
    text: Text


class AddContactPerson(Command):
    NAME = "add_contact_person"
    client_id: UUID
    id: UUID | None = None
    name: ShortText
    role: ContactRole
    phones: Annotated[list[Phone], Field(max_length=20)] = []
    emails: Annotated[list[Email], Field(max_length=20)] = []
    notes: NoteText | None = None


class UpdateContactPerson(Command):
    NAME = "update_contact_person"
    AT_LEAST_ONE_CHANGE: ClassVar[bool] = True
    client_id: UUID
    person_id: UUID
    name: ShortText | None = None
    role: ContactRole | None = None
    phones: Annotated[list[Phone], Field(max_length=20)] | None = None
    emails: Annotated[list[Email], Field(max_length=20)] | None = None
    notes: NoteText | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UpdateContactPerson:
        if not self.model_fields_set - {"client_id", "person_id", "occurred_at"}:
            raise ValueError("give at least one field to change")
        return self


class RemoveContactPerson(Command):
    NAME = "remove_contact_person"
    client_id: UUID
    person_id: UUID


class EraseClient(Command):
    NAME = "erase_client"
    client_id: UUID
    reason: ShortText


def _changes(cmd: Command, fields: tuple[str, ...]) -> dict[str, Any]:
    given = cmd.model_dump(mode="json", include=set(fields) & cmd.model_fields_set)
    return dict(given)


@handles(RegisterClient)
def register_client(cmd: RegisterClient, uow: UnitOfWork, meta: Meta) -> Outcome:
    client_id = uow.claim(Client, cmd.id, kind="client")
    if cmd.specialist_id is not None:
        uow.get(Specialist, cmd.specialist_id, kind="specialist", field="specialist_id")
    client = Client.register(
        id=client_id, meta=meta, kind=cmd.kind, form=cmd.form, name=cmd.name, tax_id=cmd.tax_id,
        phones=cmd.phones, emails=cmd.emails, address=cmd.address, tags=cmd.tags,
        specialist_id=cmd.specialist_id)
    return Outcome(uow.add(client))


@handles(UpdateClient)
def update_client(cmd: UpdateClient, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    changes = _changes(cmd, ("kind", "form", "name", "tax_id", "phones", "emails", "address",
                             "tags"))
    for name in ("kind", "form", "name"):
        if name in changes and changes[name] is None:
            raise InvalidValueError("cannot be removed", field=name)
    if changes:
        client.update_profile(meta, changes)
    if "specialist_id" in cmd.model_fields_set:
        if cmd.specialist_id is not None:
            uow.get(Specialist, cmd.specialist_id, kind="specialist", field="specialist_id")
        client.reassign(meta, cmd.specialist_id)
    return Outcome(client)


@handles(NoteInterest)
def note_interest(cmd: NoteInterest, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    client.note_interest(meta, cmd.text)
    return Outcome(client)


@handles(AddContactPerson)
def add_contact_person(cmd: AddContactPerson, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    person_id = cmd.id or uow.new_id()
    client.add_person(meta, person_id=person_id, name=cmd.name, role=cmd.role,
                      phones=cmd.phones, emails=cmd.emails, notes=cmd.notes)
    return Outcome(client, ids={"person_id": person_id})


def _person(client: Client, person_id: UUID) -> None:
    """The contact person a command acts on is looked up like any aggregate: unknown is 404."""
    if person_id not in client.persons:
        raise NotFoundError("contact person", person_id, field="person_id")


@handles(UpdateContactPerson)
def update_contact_person(cmd: UpdateContactPerson, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    _person(client, cmd.person_id)
    changes = _changes(cmd, ("name", "role", "phones", "emails", "notes"))
    for name in ("name", "role"):
        if name in changes and changes[name] is None:
            raise InvalidValueError("cannot be removed", field=name)
    client.update_person(meta, cmd.person_id, changes)
    return Outcome(client)


@handles(RemoveContactPerson)
def remove_contact_person(cmd: RemoveContactPerson, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    _person(client, cmd.person_id)
    client.remove_person(meta, cmd.person_id)
    return Outcome(client)


@handles(EraseClient)
def erase_client(cmd: EraseClient, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.target(Client, cmd.client_id, kind="client")
    client.erase(meta, cmd.reason)
    return Outcome(client)
