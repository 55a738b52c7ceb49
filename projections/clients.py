"""The client directory: profile facts per client (folded as of any moment) and a search index.

`client_facts` keeps every profile, contact-person, interest and assignment event of a client
with both times, so the card as of a past moment folds only what was recorded by then. The
index row holds the current profile for listing and text search (lower-cased name, tax id,
phones with and without punctuation, emails); `as_of` limits the list to the clients known by
then. Erasure scrubs personal data from both tables (crypto-shredding leaves nothing to show).

Data completeness checklist (score = share of items present, two decimals):
- person: name, phone_or_email, address, tax_id
- organisation: name, phone, email, address, tax_id, decision_maker (a contact person with
  that role), decision_maker_phone (some decision maker has a phone)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Integer,
    String,
    Table,
    Text,
    Uuid,
    select,
    update,
)

from domain.catalogue import event_data, jsonable
from domain.client import Client
from projections.base import Projection, UtcDateTime, metadata, upsert
from projections.facts import known, percent

client_facts = Table(
    "directory_client_facts", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("type", String(64), nullable=False),
    Column("data", JSON, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("position", BigInteger, nullable=False),
)

client_index = Table(
    "directory_clients", metadata,
    Column("client_id", Uuid, primary_key=True),
    # The registration's store position: the stable key the list is paginated by.
    Column("position", BigInteger, nullable=False, unique=True),
    Column("kind", String(20), nullable=False, index=True),
    Column("form", String(20), nullable=False),
    Column("name", String(200), nullable=False),
    Column("tax_id", String(40)),
    Column("specialist_id", Uuid, index=True),
    Column("search_text", Text, nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("erased", Boolean, nullable=False),
)

ERASED = "[erased]"
PERSON_CHECKLIST = ("name", "phone_or_email", "address", "tax_id")
ORGANISATION_CHECKLIST = ("name", "phone", "email", "address", "tax_id", "decision_maker",
                          "decision_maker_phone")
ROLE_ORDER = ("decision_maker", "contact", "influencer", "user")


def _search_text(name: str, tax_id: str | None, phones: list[str], emails: list[str]) -> str:
    parts = [name, tax_id or "", *phones, *[re.sub(r"\D", "", p) for p in phones], *emails]
    return "\n".join(p.lower() for p in parts if p)


def _scrub(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fact without personal data (after ClientErased)."""
    if kind == "ClientRegistered":
        return {**data, "name": ERASED, "tax_id": None, "phones": [], "emails": [],
                "address": None}
    if kind == "ContactPersonAdded":
        return {**data, "name": ERASED, "phones": [], "emails": [], "notes": None}
    if kind in ("ClientProfileUpdated", "ContactPersonUpdated"):
        # The whole change set is sealed with the client's key, so a replay after erasure
        # reads it as {}: drop it entirely (non-personal parts too) to give the same rows.
        return {**data, "changes": {}}
    if kind == "ClientInterestNoted":
        return {**data, "text": ERASED}
    return data


class ClientDirectory(Projection):
    """Profile facts of every client, and the current-profile index for list and search."""

    name = "client_directory"
    tables = (client_facts, client_index)
    FACTS = frozenset({"ClientRegistered", "ClientProfileUpdated", "ClientReassigned",
                       "ClientInterestNoted", "ContactPersonAdded", "ContactPersonUpdated",
                       "ContactPersonRemoved", "ClientErased"})

    def apply(self, conn: Connection, event: Any, position: int) -> None:
        kind = type(event).__name__
        if kind not in self.FACTS or not isinstance(event, Client.Event):
            return
        # The erasure's reason is free text: only the fact that it happened is kept.
        data = {} if kind == "ClientErased" else jsonable(event_data(event))
        upsert(conn, client_facts, {
            "client_id": event.originator_id, "version": event.originator_version, "type": kind,
            "data": data, "occurred_at": event.occurred_at, "recorded_at": event.timestamp,
            "position": position}, ["client_id", "version"])
        if isinstance(event, Client.ClientRegistered):
            upsert(conn, client_index, {
                "client_id": event.originator_id, "position": position, "kind": event.kind,
                "form": event.form, "name": event.name, "tax_id": event.tax_id,
                "specialist_id": event.specialist_id, "registered_at": event.occurred_at,
                "recorded_at": event.timestamp, "erased": False,
                "search_text": _search_text(event.name, event.tax_id, event.phones,
                                            event.emails)}, ["client_id"])
        elif isinstance(event, Client.ClientReassigned):
            conn.execute(update(client_index)
                         .where(client_index.c.client_id == event.originator_id)
                         .values(specialist_id=event.specialist_id))
        elif kind == "ClientProfileUpdated":
            self._reindex(conn, event.originator_id)
        elif kind == "ClientErased":
            self._erase(conn, event.originator_id)

    def _reindex(self, conn: Connection, client_id: UUID) -> None:
        state = fold(client_id, conn.execute(select(client_facts).where(
            client_facts.c.client_id == client_id).order_by(client_facts.c.version)))
        if state is not None:
            conn.execute(update(client_index).where(client_index.c.client_id == client_id)
                         .values(kind=state.kind, form=state.form, name=state.name,
                                 tax_id=state.tax_id, search_text=_search_text(
                                     state.name, state.tax_id, state.phones, state.emails)))

    def _erase(self, conn: Connection, client_id: UUID) -> None:
        for row in conn.execute(select(client_facts).where(
                client_facts.c.client_id == client_id)).all():
            scrubbed = _scrub(row.type, row.data)
            if scrubbed != row.data:
                conn.execute(update(client_facts).where(
                    client_facts.c.client_id == client_id,
                    client_facts.c.version == row.version).values(data=scrubbed))
        state = fold(client_id, conn.execute(select(client_facts).where(
            client_facts.c.client_id == client_id).order_by(client_facts.c.version)))
        if state is not None:
            conn.execute(update(client_index).where(client_index.c.client_id == client_id)
                         .values(kind=state.kind, form=state.form, name=ERASED, tax_id=None,
                                 search_text="", erased=True))


@dataclass
class ClientState:
    """A client's profile as folded from its facts."""

    client_id: UUID
    kind: str
    form: str
    name: str
    tax_id: str | None
    phones: list[str]
    emails: list[str]
    address: str | None
    tags: list[str]
    specialist_id: UUID | None
    registered_at: datetime
    position: int
    interests: list[str] = field(default_factory=list)
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    erased: bool = False

    def profile(self) -> dict[str, Any]:
        return {"kind": self.kind, "form": self.form, "name": self.name, "tax_id": self.tax_id,
                "phones": self.phones, "emails": self.emails, "address": self.address,
                "tags": self.tags}

    def persons_by_role(self) -> dict[str, list[dict[str, Any]]]:
        by_role: dict[str, list[dict[str, Any]]] = {r: [] for r in ROLE_ORDER}
        for person in sorted(self.persons.values(), key=lambda p: (p["name"], p["person_id"])):
            by_role.setdefault(person["role"], []).append(person)
        return by_role

    def decision_makers(self) -> list[dict[str, Any]]:
        return self.persons_by_role()["decision_maker"]


def fold(client_id: UUID, rows: Any) -> ClientState | None:
    """Fold a client's facts, in stream order, into its profile state."""
    state: ClientState | None = None
    for row in rows:
        data = row.data
        if row.type == "ClientRegistered":
            spec = data.get("specialist_id")
            state = ClientState(
                client_id, data["kind"], data["form"], data["name"], data.get("tax_id"),
                list(data.get("phones") or []), list(data.get("emails") or []),
                data.get("address"), list(data.get("tags") or []),
                UUID(spec) if spec else None, row.occurred_at, row.position)
            continue
        if state is None:
            continue
        state.position = max(state.position, row.position)
        if row.type == "ClientProfileUpdated":
            for key, value in data["changes"].items():
                setattr(state, key, list(value) if isinstance(value, list) else value)
        elif row.type == "ClientReassigned":
            spec = data.get("specialist_id")
            state.specialist_id = UUID(spec) if spec else None
        elif row.type == "ClientInterestNoted":
            state.interests.append(data["text"])
        elif row.type == "ContactPersonAdded":
            state.persons[data["person_id"]] = {k: data.get(k) for k in (
                "person_id", "name", "role", "phones", "emails", "notes")}
        elif row.type == "ContactPersonUpdated" and data["person_id"] in state.persons:
            state.persons[data["person_id"]].update(data["changes"])
        elif row.type == "ContactPersonRemoved":
            state.persons.pop(data["person_id"], None)
        elif row.type == "ClientErased":
            state.erased = True
            state.name, state.tax_id, state.phones, state.emails = ERASED, None, [], []
            state.address, state.interests = None, []
    return state


def client_state(conn: Connection, client_id: UUID,
                 as_of: datetime | None) -> ClientState | None:
    t = client_facts
    return fold(client_id, conn.execute(select(t).where(
        t.c.client_id == client_id, known(t.c.recorded_at, as_of)).order_by(t.c.version)))


def all_states(conn: Connection, as_of: datetime | None) -> list[ClientState]:
    """Every client known by `as_of`, folded (the controls' completeness check)."""
    t = client_facts
    rows = conn.execute(select(t).where(known(t.c.recorded_at, as_of))
                        .order_by(t.c.client_id, t.c.version))
    grouped: dict[UUID, list[Any]] = {}
    for row in rows:
        grouped.setdefault(row.client_id, []).append(row)
    # Registration order: the first fact of each client is its ClientRegistered.
    ordered = sorted(grouped.items(), key=lambda kv: kv[1][0].position)
    return [s for s in (fold(cid, facts) for cid, facts in ordered) if s is not None]


def completeness(state: ClientState) -> dict[str, Any]:
    """Score and missing fields by the checklist in the module docstring."""
    makers = state.decision_makers()
    present = {
        "name": bool(state.name and state.name != ERASED),
        "phone_or_email": bool(state.phones or state.emails),
        "phone": bool(state.phones),
        "email": bool(state.emails),
        "address": bool(state.address),
        "tax_id": bool(state.tax_id),
        "decision_maker": bool(makers),
        "decision_maker_phone": any(p.get("phones") for p in makers),
    }
    checklist = ORGANISATION_CHECKLIST if state.form == "organisation" else PERSON_CHECKLIST
    missing = [item for item in checklist if not present[item]]
    return {"score": percent(len(checklist) - len(missing), len(checklist)),
            "missing": missing, "checklist": list(checklist)}


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_clients(conn: Connection, *, kind: str | None = None, specialist_id: UUID | None = None,
                 q: str | None = None, after: int = 0, limit: int = 50,
                 as_of: datetime | None = None,
                 only: set[UUID] | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """A page of clients in registration order after the cursor; and the next cursor."""
    t = client_index
    query = select(t).where(t.c.position > after, known(t.c.recorded_at, as_of))
    if kind is not None:
        query = query.where(t.c.kind == kind)
    if specialist_id is not None:
        query = query.where(t.c.specialist_id == specialist_id)
    if q:
        query = query.where(t.c.search_text.like(_like(q.strip()), escape="\\"))
    if only is not None:
        query = query.where(t.c.client_id.in_(list(only)))
    rows = list(conn.execute(query.order_by(t.c.position).limit(limit + 1)))
    items = [{"client_id": r.client_id, "kind": r.kind, "form": r.form, "name": r.name,
              "tax_id": r.tax_id, "specialist_id": r.specialist_id,
              "registered_at": r.registered_at, "erased": r.erased} for r in rows[:limit]]
    return items, rows[limit - 1].position if len(rows) > limit else None
