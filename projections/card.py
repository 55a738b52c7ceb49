"""The client card: profile, contact persons by role, specialist, last contact.

Personal values are stored sealed (projections.personal); reads reveal them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    String,
    Table,
    Uuid,
    select,
)

from domain.activity import Contact
from domain.client import Client
from projections.base import UtcDateTime, metadata
from projections.fold import FoldProjection, Need, Rows
from projections.personal import kept, kept_changes, kept_or_legacy

client_cards = Table(
    "client_cards", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("form", String(20), nullable=False),
    Column("name", JSON, nullable=False),
    Column("tax_id", JSON),
    Column("phones", JSON, nullable=False),
    Column("emails", JSON, nullable=False),
    Column("address", JSON),
    Column("tags", JSON, nullable=False),
    Column("interests", JSON, nullable=False),
    Column("specialist_id", Uuid),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("erased", Boolean, nullable=False),
    Column("last_contact_at", UtcDateTime),
    Column("last_contact_topic", JSON),  # sealed; clear if stored before v2 (legacy)
    Column("last_contact_channel", String(20)),
    Column("position", BigInteger, nullable=False),
)

contact_persons = Table(
    "client_contact_persons", metadata,
    Column("person_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("name", JSON, nullable=False),
    Column("role", String(20), nullable=False),
    Column("phones", JSON, nullable=False),
    Column("emails", JSON, nullable=False),
    Column("notes", JSON),
)

_CARD_COLUMNS = frozenset(client_cards.c.keys())
_PERSON_COLUMNS = frozenset(contact_persons.c.keys())
_BY_CLIENT = ("ClientProfileUpdated", "ClientReassigned", "ClientInterestNoted",
              "ContactLogged")
_BY_PERSON = ("ContactPersonUpdated", "ContactPersonRemoved")


class ClientCard(FoldProjection):
    """One row per client plus its contact persons."""

    name = "client_card"
    tables = (client_cards, contact_persons)
    keeps = (client_cards, contact_persons)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        kind = type(event).__name__
        if kind in _BY_CLIENT:
            yield Need(client_cards, "client_id", event.client_id)
        elif kind in _BY_PERSON:
            yield Need(contact_persons, "person_id", event.person_id)
        elif kind == "ClientErased":
            yield Need(client_cards, "client_id", event.client_id)
            yield Need(contact_persons, "client_id", event.client_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(rows, event, position)

    def _ClientRegistered(self, rows: Rows, e: Client.ClientRegistered, pos: int) -> None:
        # The client's first event: no card of it exists yet, so it has no last contact.
        rows.put(client_cards, {
            "client_id": e.originator_id, "kind": e.kind, "form": e.form,
            "name": kept(e, "name"), "tax_id": kept(e, "tax_id"), "phones": kept(e, "phones"),
            "emails": kept(e, "emails"), "address": kept(e, "address"),
            "tags": e.tags, "interests": [], "specialist_id": e.specialist_id,
            "registered_at": e.occurred_at, "erased": False, "last_contact_at": None,
            "last_contact_topic": None, "last_contact_channel": None, "position": pos})

    def _ClientProfileUpdated(self, rows: Rows, e: Client.ClientProfileUpdated,
                              pos: int) -> None:
        changes = {k: v for k, v in kept_changes(e).items() if k in _CARD_COLUMNS}
        rows.update(client_cards, e.client_id, **changes, position=pos)

    def _ClientReassigned(self, rows: Rows, e: Client.ClientReassigned, pos: int) -> None:
        rows.update(client_cards, e.client_id, specialist_id=e.specialist_id, position=pos)

    def _ClientInterestNoted(self, rows: Rows, e: Client.ClientInterestNoted,
                             pos: int) -> None:
        row = rows.get(client_cards, e.client_id)
        if row is not None:
            rows.update(client_cards, e.client_id,
                        interests=[*row["interests"], kept(e, "text")], position=pos)

    def _ClientErased(self, rows: Rows, e: Client.ClientErased, pos: int) -> None:
        rows.update(client_cards, e.client_id, erased=True, name="[erased]", tax_id=None,
                    phones=[], emails=[], address=None, interests=[], position=pos)
        rows.update_where(contact_persons, "client_id", e.client_id, name="[erased]",
                          phones=[], emails=[], notes=None)

    def _ContactPersonAdded(self, rows: Rows, e: Client.ContactPersonAdded,
                            pos: int) -> None:
        rows.put(contact_persons, {
            "person_id": e.person_id, "client_id": e.client_id, "name": kept(e, "name"),
            "role": e.role, "phones": kept(e, "phones"), "emails": kept(e, "emails"),
            "notes": kept(e, "notes")})

    def _ContactPersonUpdated(self, rows: Rows, e: Client.ContactPersonUpdated,
                              pos: int) -> None:
        changes = kept_changes(e)
        unknown = set(changes) - _PERSON_COLUMNS
        if unknown:  # as the UPDATE did: an unknown column fails the event
            raise ValueError(f"{contact_persons.name} has no column {sorted(unknown)[0]!r}")
        rows.update(contact_persons, e.person_id, **changes)

    def _ContactPersonRemoved(self, rows: Rows, e: Client.ContactPersonRemoved,
                              pos: int) -> None:
        rows.delete(contact_persons, e.person_id)

    def _ContactLogged(self, rows: Rows, e: Contact.ContactLogged, pos: int) -> None:
        # The latest by business time wins: a late-entered older call does not replace it;
        # an unknown client has no card to change.
        row = rows.get(client_cards, e.client_id)
        if row is None:
            return
        last = row["last_contact_at"]
        if last is None or last <= e.occurred_at:
            rows.update(client_cards, e.client_id, last_contact_at=e.occurred_at,
                        last_contact_topic=kept_or_legacy(e, "topic"),
                        last_contact_channel=e.channel, position=pos)


ROLE_ORDER = ("decision_maker", "contact", "influencer", "user")


def card(conn: Connection, client_id: UUID) -> dict[str, Any] | None:
    row = conn.execute(select(client_cards).where(client_cards.c.client_id == client_id)).first()
    if row is None:
        return None
    persons = [dict(p._mapping) for p in conn.execute(
        select(contact_persons).where(contact_persons.c.client_id == client_id)
        .order_by(contact_persons.c.person_id))]
    by_role: dict[str, list[dict[str, Any]]] = {r: [] for r in ROLE_ORDER}
    for person in persons:
        by_role.setdefault(person["role"], []).append(person)
    data = dict(row._mapping)
    return {
        "client_id": data["client_id"],
        "profile": {k: data[k] for k in ("kind", "form", "name", "tax_id", "phones", "emails",
                                        "address", "tags")},
        "interests": data["interests"],
        "specialist_id": data["specialist_id"],
        "registered_at": data["registered_at"],
        "erased": data["erased"],
        "contact_persons": by_role,
        "last_contact": None if data["last_contact_at"] is None else {
            "at": data["last_contact_at"], "topic": data["last_contact_topic"],
            "channel": data["last_contact_channel"]},
        "position": data["position"],
    }
