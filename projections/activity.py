"""Activity facts: contacts, planned contacts, agreements, works with feedback.

One row per entity, with the business time, recorded time and actor of its creation and of
each later change (an entity changes state once: done/cancelled, fulfilled/broken, completed,
rated), so "open at `at` as known at `as_of`" is a WHERE clause, and the data-entry delay of
every activity event (recorded - occurred) is read from the same rows: one write per event.
Queries live beside the tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    Column,
    ColumnElement,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    func,
    select,
)

from domain.activity import Contact, PlannedContact
from domain.agreement import Agreement, Work
from domain.client import Client
from projections.base import UtcDateTime, metadata
from projections.facts import client_params, happened, known
from projections.fold import FoldProjection, Need, Rows
from projections.personal import kept, kept_or_legacy

contacts = Table(
    "activity_contacts", metadata,
    Column("contact_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("channel", String(20), nullable=False),
    Column("direction", String(20), nullable=False),
    Column("purpose", String(40)),
    Column("topic", JSON, nullable=False),  # sealed; clear if stored before v2 (legacy)
    Column("contact_person_id", Uuid),
    Column("specialist_id", Uuid),
    Column("situation_id", Uuid),
    Column("planned_contact_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Index("ix_activity_contacts_client", "client_id", "occurred_at"),
)

planned_contacts = Table(
    "activity_planned_contacts", metadata,
    Column("planned_contact_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("purpose", String(40), nullable=False),
    Column("due_at", UtcDateTime, nullable=False, index=True),
    Column("specialist_id", Uuid),
    Column("note", JSON),  # sealed (projections.personal)
    Column("planned_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("closed_as", String(20)),  # done | cancelled
    Column("closed_at", UtcDateTime),
    Column("closed_recorded_at", UtcDateTime),
    Column("closed_actor", String(200)),
    Column("contact_id", Uuid),
    # The controls count the planned contacts open at `at` as known at `as_of` from these
    # alone (not closed; closed after `at`; closing recorded after `as_of`): issue 16.
    Index("ix_activity_planned_open", "closed_at", "due_at", "planned_at", "recorded_at",
          "specialist_id"),
    Index("ix_activity_planned_closing_known", "closed_recorded_at", "closed_at", "due_at",
          "planned_at", "recorded_at", "specialist_id"),
)

agreements = Table(
    "activity_agreements", metadata,
    Column("agreement_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("text", JSON),  # sealed
    Column("due_at", UtcDateTime, nullable=False, index=True),
    Column("contact_id", Uuid),
    Column("made_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("outcome", String(20)),  # fulfilled | broken
    Column("outcome_at", UtcDateTime),
    Column("outcome_recorded_at", UtcDateTime),
    Column("outcome_actor", String(200)),
    # The controls' overdue agreements, counted from these alone (as planned contacts above).
    Index("ix_activity_agreements_open", "outcome_at", "due_at", "made_at", "recorded_at",
          "client_id"),
    Index("ix_activity_agreements_outcome_known", "outcome_recorded_at", "outcome_at",
          "due_at", "made_at", "recorded_at", "client_id"),
)

works = Table(
    "activity_works", metadata,
    Column("work_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("text", JSON),  # sealed
    Column("due_at", UtcDateTime),
    Column("assignee", String(200)),
    Column("assigned_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("actor", String(200), nullable=False),
    Column("completed_at", UtcDateTime),
    Column("completed_recorded_at", UtcDateTime),
    Column("completed_actor", String(200)),
    Column("rating", Integer),
    Column("feedback_at", UtcDateTime),
    Column("feedback_recorded_at", UtcDateTime),
    Column("feedback_actor", String(200)),
    # The controls' work without feedback, counted from these alone (as planned contacts above).
    Index("ix_activity_works_unrated", "feedback_at", "completed_at", "completed_recorded_at",
          "recorded_at", "client_id"),
    Index("ix_activity_works_feedback_known", "feedback_recorded_at", "feedback_at",
          "completed_at", "completed_recorded_at", "recorded_at", "client_id"),
)

class Activity(FoldProjection):
    """Contacts, planned contacts, agreements and works of every client; entry delays.

    Each entity's creation event writes its whole row (the columns of later changes empty: a
    creation event is its aggregate's first, so no row exists before it); each later change
    updates the row by its key, and an erasure blanks the client's free text."""

    name = "activity"
    tables = (contacts, planned_contacts, agreements, works)
    keeps = (planned_contacts, agreements, works)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        kind = type(event).__name__
        if kind in ("PlannedContactCompleted", "PlannedContactCancelled"):
            yield Need(planned_contacts, "planned_contact_id", event.originator_id)
        elif kind in ("AgreementFulfilled", "AgreementBroken"):
            yield Need(agreements, "agreement_id", event.originator_id)
        elif kind in ("WorkCompleted", "FeedbackReceived"):
            yield Need(works, "work_id", event.originator_id)
        elif kind == "ClientErased":
            for table in (agreements, works, planned_contacts):
                yield Need(table, "client_id", event.client_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(rows, event)

    def _ContactLogged(self, rows: Rows, e: Contact.ContactLogged) -> None:
        rows.put(contacts, {
            "contact_id": e.originator_id, "client_id": e.client_id, "channel": e.channel,
            "direction": e.direction, "purpose": e.purpose,
            "topic": kept_or_legacy(e, "topic"),
            "contact_person_id": e.contact_person_id, "specialist_id": e.specialist_id,
            "situation_id": e.situation_id, "planned_contact_id": e.planned_contact_id,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp, "actor": e.actor})

    def _ContactPlanned(self, rows: Rows, e: PlannedContact.ContactPlanned) -> None:
        rows.put(planned_contacts, {
            "planned_contact_id": e.originator_id, "client_id": e.client_id,
            "purpose": e.purpose, "due_at": e.due_at, "specialist_id": e.specialist_id,
            "note": kept(e, "note"), "planned_at": e.occurred_at, "recorded_at": e.timestamp,
            "actor": e.actor, "closed_as": None, "closed_at": None,
            "closed_recorded_at": None, "closed_actor": None, "contact_id": None})

    def _close_planned(self, rows: Rows, e: Any, how: str, contact: UUID | None) -> None:
        rows.update(planned_contacts, e.originator_id, closed_as=how, closed_at=e.occurred_at,
                    closed_recorded_at=e.timestamp, closed_actor=e.actor, contact_id=contact)

    def _PlannedContactCompleted(self, rows: Rows,
                                 e: PlannedContact.PlannedContactCompleted) -> None:
        self._close_planned(rows, e, "done", e.contact_id)

    def _PlannedContactCancelled(self, rows: Rows,
                                 e: PlannedContact.PlannedContactCancelled) -> None:
        self._close_planned(rows, e, "cancelled", None)

    def _AgreementMade(self, rows: Rows, e: Agreement.AgreementMade) -> None:
        rows.put(agreements, {
            "agreement_id": e.originator_id, "client_id": e.client_id, "text": kept(e, "text"),
            "due_at": e.due_at, "contact_id": e.contact_id, "made_at": e.occurred_at,
            "recorded_at": e.timestamp, "actor": e.actor, "outcome": None,
            "outcome_at": None, "outcome_recorded_at": None, "outcome_actor": None})

    def _agreement_closed(self, rows: Rows, e: Any, outcome: str) -> None:
        rows.update(agreements, e.originator_id, outcome=outcome, outcome_at=e.occurred_at,
                    outcome_recorded_at=e.timestamp, outcome_actor=e.actor)

    def _AgreementFulfilled(self, rows: Rows, e: Agreement.AgreementFulfilled) -> None:
        self._agreement_closed(rows, e, "fulfilled")

    def _AgreementBroken(self, rows: Rows, e: Agreement.AgreementBroken) -> None:
        self._agreement_closed(rows, e, "broken")

    def _WorkAssigned(self, rows: Rows, e: Work.WorkAssigned) -> None:
        rows.put(works, {
            "work_id": e.originator_id, "client_id": e.client_id, "text": kept(e, "text"),
            "due_at": e.due_at, "assignee": e.assignee, "assigned_at": e.occurred_at,
            "recorded_at": e.timestamp, "actor": e.actor, "completed_at": None,
            "completed_recorded_at": None, "completed_actor": None, "rating": None,
            "feedback_at": None, "feedback_recorded_at": None, "feedback_actor": None})

    def _WorkCompleted(self, rows: Rows, e: Work.WorkCompleted) -> None:
        rows.update(works, e.originator_id, completed_at=e.occurred_at,
                    completed_recorded_at=e.timestamp, completed_actor=e.actor)

    def _FeedbackReceived(self, rows: Rows, e: Work.FeedbackReceived) -> None:
        rows.update(works, e.originator_id, rating=e.rating, feedback_at=e.occurred_at,
                    feedback_recorded_at=e.timestamp, feedback_actor=e.actor)

    def _ClientErased(self, rows: Rows, e: Client.ClientErased) -> None:
        # Free text about the client goes; the facts (dates, outcomes) stay for the controls.
        cid = e.client_id
        rows.update_where(agreements, "client_id", cid, text=None)
        rows.update_where(works, "client_id", cid, text=None)
        rows.update_where(planned_contacts, "client_id", cid, note=None)


# -- queries ------------------------------------------------------------------------------------

def _planned_open(at: datetime, as_of: datetime | None) -> ColumnElement[bool]:
    t = planned_contacts
    return (t.c.planned_at <= at) & known(t.c.recorded_at, as_of) & ~happened(
        t.c.closed_at, t.c.closed_recorded_at, at, as_of)


def open_planned_contacts(conn: Connection, at: datetime, as_of: datetime | None, *,
                          client_id: UUID | None = None, purpose: str | None = None,
                          due_before: datetime | None = None) -> list[Any]:
    """Planned contacts made by `at` and neither done nor cancelled by then, earliest due first."""
    t = planned_contacts
    if client_id is not None and purpose is None and due_before is None:  # the card's case
        return list(conn.execute(_CLIENT_PLANNED, client_params(client_id, at, as_of)))
    query = select(t).where(_planned_open(at, as_of))
    if client_id is not None:
        query = query.where(t.c.client_id == client_id)
    if purpose is not None:
        query = query.where(t.c.purpose == purpose)
    if due_before is not None:
        query = query.where(t.c.due_at < due_before)
    return list(conn.execute(query.order_by(t.c.due_at, t.c.planned_contact_id)))


def overdue_planned_contacts(conn: Connection, at: datetime, as_of: datetime | None, *,
                             specialist_id: UUID | None = None,
                             limit: int) -> tuple[int, list[Any]]:
    """Planned contacts open at `at` and due before it (of one specialist, if given): how many,
    and the first `limit` earliest due (ids, purpose, due and specialist only; no note)."""
    t = planned_contacts
    where = _planned_open(at, as_of) & (t.c.due_at < at)
    if specialist_id is not None:
        where = where & (t.c.specialist_id == specialist_id)
    count = conn.execute(select(func.count()).select_from(t).where(where)).scalar_one()
    rows = conn.execute(select(t.c.planned_contact_id, t.c.client_id, t.c.purpose, t.c.due_at,
                               t.c.specialist_id).where(where)
                        .order_by(t.c.due_at, t.c.planned_contact_id).limit(limit)).all()
    return int(count), list(rows)


def open_agreements(conn: Connection, at: datetime, as_of: datetime | None, *,
                    client_id: UUID | None = None,
                    due_before: datetime | None = None) -> list[Any]:
    """Agreements made by `at`, neither fulfilled nor broken by then, earliest due first."""
    t = agreements
    if client_id is not None and due_before is None:  # the card's case
        return list(conn.execute(_CLIENT_AGREEMENTS, client_params(client_id, at, as_of)))
    query = select(t).where(t.c.made_at <= at, known(t.c.recorded_at, as_of),
                            ~happened(t.c.outcome_at, t.c.outcome_recorded_at, at, as_of))
    if client_id is not None:
        query = query.where(t.c.client_id == client_id)
    if due_before is not None:
        query = query.where(t.c.due_at < due_before)
    return list(conn.execute(query.order_by(t.c.due_at, t.c.agreement_id)))


def client_contacts(conn: Connection, client_id: UUID, at: datetime, as_of: datetime | None,
                    *, since: datetime | None = None, channel: str | None = None,
                    limit: int | None = None) -> list[Any]:
    """The client's contacts that occurred by `at` (and since `since`), latest first."""
    t = contacts
    if since is None and limit == 1:  # the card's last contact (or meeting)
        return list(conn.execute(_LAST_CONTACT_ANY if channel is None else _LAST_CONTACT_OF,
                                 {**client_params(client_id, at, as_of), "b_channel": channel}))
    query = select(t).where(t.c.client_id == client_id, t.c.occurred_at <= at,
                            known(t.c.recorded_at, as_of))
    if since is not None:
        query = query.where(t.c.occurred_at >= since)
    if channel is not None:
        query = query.where(t.c.channel == channel)
    query = query.order_by(t.c.occurred_at.desc(), t.c.recorded_at.desc(), t.c.contact_id)
    return list(conn.execute(query if limit is None else query.limit(limit)))


# The card's per-client queries, built once and run with parameters (facts.client_params):
# building the statement cost more than running it.


def _closed_by(occurred: Any, recorded: Any) -> ColumnElement[bool]:
    return and_(occurred.is_not(None), occurred <= bindparam("b_at"),
                recorded <= bindparam("b_as_of"))


_p, _a, _k = planned_contacts.c, agreements.c, contacts.c
_CLIENT_PLANNED = (
    select(planned_contacts)
    .where(_p.client_id == bindparam("b_client"), _p.planned_at <= bindparam("b_at"),
           _p.recorded_at <= bindparam("b_as_of"),
           ~_closed_by(_p.closed_at, _p.closed_recorded_at))
    .order_by(_p.due_at, _p.planned_contact_id))
_CLIENT_AGREEMENTS = (
    select(agreements)
    .where(_a.client_id == bindparam("b_client"), _a.made_at <= bindparam("b_at"),
           _a.recorded_at <= bindparam("b_as_of"),
           ~_closed_by(_a.outcome_at, _a.outcome_recorded_at))
    .order_by(_a.due_at, _a.agreement_id))
_LAST_CONTACT_ANY = (
    select(contacts)
    .where(_k.client_id == bindparam("b_client"), _k.occurred_at <= bindparam("b_at"),
           _k.recorded_at <= bindparam("b_as_of"))
    .order_by(_k.occurred_at.desc(), _k.recorded_at.desc(), _k.contact_id).limit(1))
_LAST_CONTACT_OF = _LAST_CONTACT_ANY.where(_k.channel == bindparam("b_channel"))


def client_works(conn: Connection, client_id: UUID, at: datetime,
                 as_of: datetime | None) -> list[Any]:
    t = works
    query = select(t).where(t.c.client_id == client_id, t.c.assigned_at <= at,
                            known(t.c.recorded_at, as_of))
    return list(conn.execute(query.order_by(t.c.assigned_at.desc(), t.c.work_id)))


def works_without_feedback(conn: Connection, at: datetime, as_of: datetime | None, *,
                           completed_before: datetime) -> list[Any]:
    """Work completed before `completed_before` with no feedback received by `at`."""
    t = works
    completed = happened(t.c.completed_at, t.c.completed_recorded_at, at, as_of)
    rated = happened(t.c.feedback_at, t.c.feedback_recorded_at, at, as_of)
    query = select(t).where(known(t.c.recorded_at, as_of), completed,
                            t.c.completed_at < completed_before, ~rated)
    return list(conn.execute(query.order_by(t.c.completed_at, t.c.work_id)))


def _entry_sources() -> list[tuple[str, Table, Any, Any, Any, Any, Any]]:
    """Each activity event type: where its entity id, times and actor are kept. A completed
    planned contact is left out: it is written with the ContactLogged that completes it."""
    c, p, a, w = contacts, planned_contacts, agreements, works
    return [
        ("ContactLogged", c, c.c.contact_id, c.c.occurred_at, c.c.recorded_at, c.c.actor, None),
        ("ContactPlanned", p, p.c.planned_contact_id, p.c.planned_at, p.c.recorded_at,
         p.c.actor, None),
        ("PlannedContactCancelled", p, p.c.planned_contact_id, p.c.closed_at,
         p.c.closed_recorded_at, p.c.closed_actor, p.c.closed_as == "cancelled"),
        ("AgreementMade", a, a.c.agreement_id, a.c.made_at, a.c.recorded_at, a.c.actor, None),
        ("AgreementFulfilled", a, a.c.agreement_id, a.c.outcome_at, a.c.outcome_recorded_at,
         a.c.outcome_actor, a.c.outcome == "fulfilled"),
        ("AgreementBroken", a, a.c.agreement_id, a.c.outcome_at, a.c.outcome_recorded_at,
         a.c.outcome_actor, a.c.outcome == "broken"),
        ("WorkAssigned", w, w.c.work_id, w.c.assigned_at, w.c.recorded_at, w.c.actor, None),
        ("WorkCompleted", w, w.c.work_id, w.c.completed_at, w.c.completed_recorded_at,
         w.c.completed_actor, None),
        ("FeedbackReceived", w, w.c.work_id, w.c.feedback_at, w.c.feedback_recorded_at,
         w.c.feedback_actor, None),
    ]


def late_entries(conn: Connection, *, since: datetime, at: datetime, as_of: datetime | None,
                 threshold_seconds: int) -> list[dict[str, Any]]:
    """Activity events that occurred in (since, at], known by `as_of`, and were entered more
    than the threshold after they occurred; oldest first."""
    found = []
    for kind, table, entity, occurred, recorded, actor, only in _entry_sources():
        query = select(entity.label("entity_id"), table.c.client_id,
                       occurred.label("occurred_at"), recorded.label("recorded_at"),
                       actor.label("actor")).where(
            occurred > since, occurred <= at, recorded.is_not(None), known(recorded, as_of))
        for row in conn.execute(query if only is None else query.where(only)):
            delay = int((row.recorded_at - row.occurred_at).total_seconds())
            if delay > threshold_seconds:
                found.append({"type": kind, "entity_id": row.entity_id,
                              "client_id": row.client_id, "occurred_at": row.occurred_at,
                              "recorded_at": row.recorded_at, "delay_seconds": delay,
                              "actor": row.actor})
    found.sort(key=lambda e: (e["occurred_at"], str(e["entity_id"]), e["type"]))
    return found
