"""The client directory: profile facts per client (folded as of any moment) and a search index.

`client_facts` keeps every profile, contact-person, interest and assignment event of a client
with both times, so the card as of a past moment folds only what was recorded by then. The
index row holds the current profile for listing; `as_of` limits the list to the clients known
by then. Personal values stay sealed in both tables (projections.personal); reads reveal them.

Text search is a blind index (`directory_search`): keyed hashes of the normalised words of the
current name, tax id, phones and e-mails, so the index holds no personal text. A query matches
a client when every word of the query is a word of the client or the start of one
(case-insensitive; "ann" finds "Ann Lee", "mail.example" finds "ann@mail.example"); a query of
digits and phone punctuation only ("+49 (30) 777") is one number, matching the start or the
end (3 digits or more) of a phone's digits. Erasure deletes the client's index entries and
scrubs its facts.

Data completeness checklist (score = share of items present, two decimals):
- person: name, phone_or_email, address, tax_id
- organisation: name, phone, email, address, tax_id, decision_maker (a contact person with
  that role), decision_maker_phone (some decision maker has a phone)
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    LargeBinary,
    String,
    Table,
    Uuid,
    bindparam,
    select,
)

from domain.catalogue import event_data, jsonable
from domain.client import Client
from projections.base import UtcDateTime, metadata
from projections.facts import FAR_FUTURE, known, percent
from projections.fold import FoldProjection, Need, Rows
from projections.personal import ERASED, Personal, erased_like, is_sealed, kept, kept_changes

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
    Column("name", JSON, nullable=False),  # sealed (or the erased placeholder)
    Column("tax_id", JSON),  # sealed
    Column("specialist_id", Uuid, index=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("erased", Boolean, nullable=False),
    # Card completeness of the current profile ({"score", "missing"}), and when the client's
    # latest profile fact was recorded: for an `as_of` at or after it the stored figure is the
    # one a fold would give (incomplete_clients).
    Column("completeness", JSON, nullable=False),
    Column("facts_recorded_at", UtcDateTime, nullable=False),
)

# The blind search index: one row per (word token, client).
client_search = Table(
    "directory_search", metadata,
    Column("token", LargeBinary(16), primary_key=True),
    Column("client_id", Uuid, primary_key=True, index=True),
)

PERSON_CHECKLIST = ("name", "phone_or_email", "address", "tax_id")
ORGANISATION_CHECKLIST = ("name", "phone", "email", "address", "tax_id", "decision_maker",
                          "decision_maker_phone")
ROLE_ORDER = ("decision_maker", "contact", "influencer", "user")


WORD_MAX = 24  # longer words are indexed and searched by their first 24 characters
_WORD = re.compile(r"[^\W_]+")
_PHONE_QUERY = re.compile(r"[\d\s()+./-]+")


def _prefixes(word: str, shortest: int = 1) -> list[str]:
    word = word[:WORD_MAX]
    return [word[:n] for n in range(shortest, len(word) + 1)]


def index_words(name: Any, tax_id: Any, phones: Iterable[Any], emails: Iterable[Any]) -> set[str]:
    """The search words of a client's (revealed) profile: every start of every word of the
    name, tax id and e-mails; every start and end of each phone's digits."""
    words: set[str] = set()
    for text in (name, tax_id, *emails):
        if isinstance(text, str) and text != ERASED:
            for word in _WORD.findall(text.casefold()):
                words.update(_prefixes(word))
    for phone in phones:
        digits = re.sub(r"\D", "", phone) if isinstance(phone, str) else ""
        words.update(_prefixes(digits, 2))
        words.update(digits[-n:] for n in range(3, len(digits) + 1))
    return words


def query_words(q: str) -> list[str]:
    """The words a search must all find (see the module docstring)."""
    text = q.strip()
    digits = re.sub(r"\D", "", text)
    if _PHONE_QUERY.fullmatch(text) and len(digits) >= 2:
        return [digits[:WORD_MAX]]
    return sorted({w[:WORD_MAX] for w in _WORD.findall(text.casefold())})


def _scrub(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """The fact without personal data (after ClientErased)."""
    if kind == "ClientRegistered":
        return {**data, "name": ERASED, "tax_id": None, "phones": [], "emails": [],
                "address": None}
    if kind == "ContactPersonAdded":
        return {**data, "name": ERASED, "phones": [], "emails": [], "notes": None}
    if kind in ("ClientProfileUpdated", "ContactPersonUpdated"):
        personal = getattr(Client, kind).PERSONAL_KEYS["changes"]
        return {**data, "changes": {k: erased_like(v) if k in personal else v
                                    for k, v in data["changes"].items()}}
    if kind == "ClientInterestNoted":
        return {**data, "text": ERASED}
    return data


class ClientDirectory(FoldProjection):
    """Profile facts of every client, and the current-profile index for list and search."""

    name = "client_directory"
    tables = (client_facts, client_index, client_search)
    keeps = (client_facts, client_index)  # read back by later events (projections.fold)
    FACTS = frozenset({"ClientRegistered", "ClientProfileUpdated", "ClientReassigned",
                       "ClientInterestNoted", "ContactPersonAdded", "ContactPersonUpdated",
                       "ContactPersonRemoved", "ClientErased"})

    def __init__(self, personal: Personal) -> None:
        self.personal = personal
        # Clients whose values the events of the coming page reveal (for the search words):
        # gathered while the runner collects a page's needs, fetched at the page's first fold.
        self._reveals: set[UUID] = set()

    def begin_page(self, page: Sequence[tuple[int, Any]]) -> None:
        self.personal.preload({e.originator_id for _p, e in page
                               if type(e).__name__ in _REVEALS})

    def needs(self, event: Any) -> Iterator[Need]:
        kind = type(event).__name__
        if kind not in self.FACTS or not isinstance(event, Client.Event):
            return
        client_id = event.originator_id
        if kind in _REVEALS:
            self._reveals.add(client_id)
        if kind == "ClientRegistered":  # writes whole rows only
            return
        yield Need(client_index, "client_id", client_id)
        if kind in ("ClientReassigned", "ClientInterestNoted"):
            return
        yield Need(client_facts, "client_id", client_id)
        if kind in ("ClientProfileUpdated", "ClientErased"):
            yield Need(client_search, "client_id", client_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if self._reveals:  # the page's keys in one round (what begin_page did)
            self.personal.preload(self._reveals)
            self._reveals = set()
        kind = type(event).__name__
        if kind not in self.FACTS or not isinstance(event, Client.Event):
            return
        client_id = event.originator_id
        # The erasure's reason is free text: only the fact that it happened is kept.
        data = {} if kind == "ClientErased" else jsonable(event_data(event))
        for name in type(event).PERSONAL:
            data[name] = kept(event, name)
        for name in type(event).PERSONAL_KEYS:
            data[name] = jsonable(kept_changes(event, name))
        rows.put(client_facts, {
            "client_id": client_id, "version": event.originator_version, "type": kind,
            "data": data, "occurred_at": event.occurred_at, "recorded_at": event.timestamp,
            "position": position})
        # `fold` below is the module's fold of a client's facts (ClientState), not this method.
        if isinstance(event, Client.ClientRegistered):  # a registration reads nothing back
            state = fold(client_id, [_Fact(kind, data, event.occurred_at, position,
                                           event.timestamp)])
            assert state is not None
            score = completeness(state)
            rows.put(client_index, {
                "client_id": client_id, "position": position, "kind": event.kind,
                "form": event.form, "name": data["name"], "tax_id": data["tax_id"],
                "specialist_id": event.specialist_id, "registered_at": event.occurred_at,
                "recorded_at": event.timestamp, "erased": False,
                "completeness": {"score": score["score"], "missing": score["missing"]},
                "facts_recorded_at": event.timestamp})
            self._index_words(rows, client_id, data["name"], data["tax_id"],
                              data["phones"], data["emails"], fresh=True)
            return
        if isinstance(event, Client.ClientReassigned):
            _touch(rows, client_id, event.timestamp, specialist_id=event.specialist_id)
            return
        if kind == "ClientInterestNoted":  # completeness does not look at interests
            _touch(rows, client_id, event.timestamp)
            return
        if kind == "ClientErased":
            self._erase(rows, client_id)
        self._refresh(rows, client_id, profile=kind == "ClientProfileUpdated")

    def _refresh(self, rows: Rows, client_id: UUID, *, profile: bool = False) -> None:
        """From the client's facts, folded once: the stored completeness and the facts' latest
        record time; after a profile change (`profile`) also the listed profile and the search
        words."""
        facts = _facts(rows, client_id)
        state = fold(client_id, facts)
        if state is None:
            return
        if profile:
            rows.update(client_index, client_id, kind=state.kind, form=state.form,
                        name=state.name, tax_id=state.tax_id)
            self._index_words(rows, client_id, state.name, state.tax_id, state.phones,
                              state.emails)
        score = completeness(state)
        rows.update(client_index, client_id,
                    completeness={"score": score["score"], "missing": score["missing"]},
                    facts_recorded_at=max(f.recorded_at for f in facts))

    def _index_words(self, rows: Rows, client_id: UUID, name: Any, tax_id: Any,
                     phones: list[Any], emails: list[Any], *, fresh: bool = False) -> None:
        """Replace the client's blind-index entries (the words are revealed in memory only;
        a `fresh` client has none yet)."""
        shown = self.personal.reveal([name, tax_id, phones, emails])
        tokens = self.personal.blind(sorted(index_words(shown[0], shown[1], shown[2],
                                                        shown[3])))
        if not fresh:
            rows.delete_where(client_search, "client_id", client_id)
        for token in tokens:  # a token row offered again is the same row
            rows.put(client_search, {"token": token, "client_id": client_id})

    def _erase(self, rows: Rows, client_id: UUID) -> None:
        """Scrub the personal values of the client's facts and index row (its kind and form,
        not personal, are already current), and drop its search words."""
        for row in rows.where(client_facts, "client_id", client_id):
            scrubbed = _scrub(row["type"], row["data"])
            if scrubbed != row["data"]:
                rows.update(client_facts, (client_id, row["version"]), data=scrubbed)
        rows.update(client_index, client_id, name=ERASED, tax_id=None, erased=True)
        rows.delete_where(client_search, "client_id", client_id)


def _touch(rows: Rows, client_id: UUID, recorded_at: datetime, **changes: Any) -> None:
    """Change the index row (if any) and move its facts' record time to `recorded_at` if
    that is later."""
    row = rows.get(client_index, client_id)
    if row is None:
        return
    stored = row["facts_recorded_at"]
    rows.update(client_index, client_id, **changes,
                facts_recorded_at=recorded_at if stored < recorded_at else stored)


@dataclass(frozen=True)
class _Fact:
    """A fact row's shape, for folding facts held in memory (`fold` reads attributes)."""

    type: str
    data: dict[str, Any]
    occurred_at: datetime
    position: int
    recorded_at: datetime


def _facts(rows: Rows, client_id: UUID) -> list[_Fact]:
    """The client's facts in version order."""
    return [_Fact(r["type"], r["data"], r["occurred_at"], r["position"], r["recorded_at"])
            for r in rows.where(client_facts, "client_id", client_id)]


_REVEALS = frozenset({"ClientRegistered", "ClientProfileUpdated"})  # for the search words


@dataclass
class ClientState:
    """A client's profile as folded from its facts; personal values sealed (or placeholders)."""

    client_id: UUID
    kind: str
    form: str
    name: Any
    tax_id: Any
    phones: Any
    emails: Any
    address: Any
    tags: list[str]
    specialist_id: UUID | None
    registered_at: datetime
    position: int
    interests: list[Any] = field(default_factory=list)
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)
    erased: bool = False

    def profile(self) -> dict[str, Any]:
        return {"kind": self.kind, "form": self.form, "name": self.name, "tax_id": self.tax_id,
                "phones": self.phones, "emails": self.emails, "address": self.address,
                "tags": self.tags}

    def persons_by_role(self) -> dict[str, list[dict[str, Any]]]:
        by_role: dict[str, list[dict[str, Any]]] = {r: [] for r in ROLE_ORDER}
        for person in self.persons.values():  # in the order they were added
            by_role.setdefault(person["role"], []).append(person)
        return by_role

    def decision_makers(self) -> list[dict[str, Any]]:
        return self.persons_by_role()["decision_maker"]


def _many(value: Any) -> Any:
    """A list field as stored: a sealed value as it is, otherwise a list (maybe empty)."""
    return value if is_sealed(value) else list(value or [])


def fold(client_id: UUID, rows: Any) -> ClientState | None:
    """Fold a client's facts, in stream order, into its profile state."""
    state: ClientState | None = None
    for row in rows:
        data = row.data
        if row.type == "ClientRegistered":
            spec = data.get("specialist_id")
            state = ClientState(
                client_id, data["kind"], data["form"], data["name"], data.get("tax_id"),
                _many(data.get("phones")), _many(data.get("emails")),
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
    return fold(client_id, conn.execute(_CLIENT_FACTS, {
        "b_client": client_id, "b_as_of": as_of or FAR_FUTURE}))


# Built once (the card reads it on every request); as_of None is bound as the far future.
_CLIENT_FACTS = (select(client_facts)
                 .where(client_facts.c.client_id == bindparam("b_client"),
                        client_facts.c.recorded_at <= bindparam("b_as_of"))
                 .order_by(client_facts.c.version))


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


def incomplete_clients(conn: Connection, as_of: datetime | None) -> list[dict[str, Any]]:
    """Clients known by `as_of`, not erased then, whose card misses checklist items — in
    registration order, with form, score and missing items. Exactly what folding every
    client's facts gives (`all_states` + `completeness`), but read from the stored figures
    for every client whose profile facts were all recorded by `as_of`; only the others
    (changed after `as_of`) are folded."""
    t = client_index
    query = (select(t.c.client_id, t.c.form, t.c.erased, t.c.completeness,
                    t.c.facts_recorded_at)
             .where(known(t.c.recorded_at, as_of)).order_by(t.c.position))
    out = []
    for row in conn.execute(query):
        if as_of is None or row.facts_recorded_at <= as_of:
            if row.erased or not row.completeness["missing"]:
                continue
            out.append({"client_id": row.client_id, "form": row.form,
                        "score": row.completeness["score"],
                        "missing": list(row.completeness["missing"])})
            continue
        state = client_state(conn, row.client_id, as_of)
        if state is None or state.erased:
            continue
        score = completeness(state)
        if score["missing"]:
            out.append({"client_id": state.client_id, "form": state.form,
                        "score": score["score"], "missing": score["missing"]})
    return out


ONLY_CHUNK = 5_000


def list_clients(conn: Connection, *, kind: str | None = None, specialist_id: UUID | None = None,
                 q: str | None = None, blind: Callable[[Iterable[str]], list[bytes]] | None = None,
                 after: int = 0, limit: int = 50, as_of: datetime | None = None,
                 only: set[UUID] | None = None) -> tuple[list[dict[str, Any]], int | None]:
    """A page of clients in registration order after the cursor; and the next cursor. Names
    and tax ids come sealed: the caller reveals them. A text query `q` needs `blind`."""
    t = client_index
    query = select(t).where(t.c.position > after, known(t.c.recorded_at, as_of))
    if kind is not None:
        query = query.where(t.c.kind == kind)
    if specialist_id is not None:
        query = query.where(t.c.specialist_id == specialist_id)
    if q:
        if blind is None:
            raise ValueError("a text search needs the blind-index keys")
        words = query_words(q)
        if not words:
            return [], None
        for token in blind(words):
            query = query.where(t.c.client_id.in_(
                select(client_search.c.client_id).where(client_search.c.token == token)))
    query = query.order_by(t.c.position).limit(limit + 1)
    if only is None:
        rows = list(conn.execute(query))
    else:
        # A segment may hold tens of thousands of ids: bind them in chunks (PostgreSQL takes at
        # most 65,535 parameters, SQLite 32,766) and keep the first page of the merged runs.
        ids = sorted(only)
        found: list[Any] = []
        for start in range(0, len(ids), ONLY_CHUNK):
            found += conn.execute(query.where(
                t.c.client_id.in_(ids[start:start + ONLY_CHUNK]))).all()
        rows = sorted(found, key=lambda r: r.position)[:limit + 1]
    items = [{"client_id": r.client_id, "kind": r.kind, "form": r.form, "name": r.name,
              "tax_id": r.tax_id, "specialist_id": r.specialist_id,
              "registered_at": r.registered_at, "erased": r.erased} for r in rows[:limit]]
    return items, rows[limit - 1].position if len(rows) > limit else None
