"""The client card: profile, contact persons by role, specialist, last contact.

Personal values are stored sealed (projections.personal); reads reveal them."""

from __future__ import annotations

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
    bindparam,
    delete,
    or_,
    select,
    update,
)

from domain.activity import Contact
from domain.client import Client
from projections.base import Projection, UtcDateTime, metadata, upsert
from projections.personal import kept, kept_changes

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
    Column("last_contact_topic", String(200)),
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

# One statement, built once (see _ContactLogged): the card's last contact moves only forward in
# business time; an unknown client matches no row.
_LAST_CONTACT = (
    update(client_cards)
    .where(client_cards.c.client_id == bindparam("b_client"),
           or_(client_cards.c.last_contact_at.is_(None),
               client_cards.c.last_contact_at <= bindparam("b_at")))
    .values(last_contact_at=bindparam("b_at"), last_contact_topic=bindparam("b_topic"),
            last_contact_channel=bindparam("b_channel"), position=bindparam("b_pos")))


class ClientCard(Projection):
    """One row per client plus its contact persons."""

    name = "client_card"
    tables = (client_cards, contact_persons)

    def apply(self, conn: Connection, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(conn, event, position)

    def _ClientRegistered(self, conn: Connection, e: Client.ClientRegistered, pos: int) -> None:
        upsert(conn, client_cards, {
            "client_id": e.originator_id, "kind": e.kind, "form": e.form,
            "name": kept(e, "name"), "tax_id": kept(e, "tax_id"), "phones": kept(e, "phones"),
            "emails": kept(e, "emails"), "address": kept(e, "address"),
            "tags": e.tags, "interests": [], "specialist_id": e.specialist_id,
            "registered_at": e.occurred_at, "erased": False, "position": pos}, ["client_id"])

    def _ClientProfileUpdated(self, conn: Connection, e: Client.ClientProfileUpdated,
                              pos: int) -> None:
        changes = {k: v for k, v in kept_changes(e).items() if k in client_cards.c}
        conn.execute(update(client_cards).where(client_cards.c.client_id == e.client_id)
                     .values(**changes, position=pos))

    def _ClientReassigned(self, conn: Connection, e: Client.ClientReassigned, pos: int) -> None:
        conn.execute(update(client_cards).where(client_cards.c.client_id == e.client_id)
                     .values(specialist_id=e.specialist_id, position=pos))

    def _ClientInterestNoted(self, conn: Connection, e: Client.ClientInterestNoted,
                             pos: int) -> None:
        row = conn.execute(select(client_cards.c.interests)
                           .where(client_cards.c.client_id == e.client_id)).first()
        if row is not None:
            conn.execute(update(client_cards).where(client_cards.c.client_id == e.client_id)
                         .values(interests=[*row.interests, kept(e, "text")],
                                 position=pos))

    def _ClientErased(self, conn: Connection, e: Client.ClientErased, pos: int) -> None:
        conn.execute(update(client_cards).where(client_cards.c.client_id == e.client_id).values(
            erased=True, name="[erased]", tax_id=None, phones=[], emails=[], address=None,
            interests=[], position=pos))
        conn.execute(update(contact_persons).where(contact_persons.c.client_id == e.client_id)
                     .values(name="[erased]", phones=[], emails=[], notes=None))

    def _ContactPersonAdded(self, conn: Connection, e: Client.ContactPersonAdded,
                            pos: int) -> None:
        upsert(conn, contact_persons, {
            "person_id": e.person_id, "client_id": e.client_id, "name": kept(e, "name"),
            "role": e.role, "phones": kept(e, "phones"), "emails": kept(e, "emails"),
            "notes": kept(e, "notes")}, ["person_id"])

    def _ContactPersonUpdated(self, conn: Connection, e: Client.ContactPersonUpdated,
                              pos: int) -> None:
        conn.execute(update(contact_persons).where(contact_persons.c.person_id == e.person_id)
                     .values(**kept_changes(e)))

    def _ContactPersonRemoved(self, conn: Connection, e: Client.ContactPersonRemoved,
                              pos: int) -> None:
        conn.execute(delete(contact_persons).where(contact_persons.c.person_id == e.person_id))

    def _ContactLogged(self, conn: Connection, e: Contact.ContactLogged, pos: int) -> None:
        # The latest by business time wins: a late-entered older call does not replace it.
        conn.execute(_LAST_CONTACT, {"b_client": e.client_id, "b_at": e.occurred_at,
                                     "b_topic": e.topic, "b_channel": e.channel, "b_pos": pos})


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
