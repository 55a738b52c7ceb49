"""Segment facts: clients, and their activity (closed work orders as visits, logged contacts).

One row per registration, per closed work order and per logged contact, with business and record
time, so segments at any `at` and as of any `as_of` are computed at query time (segment_report.py).
Rows are keyed by the source aggregate, so an event applied twice changes nothing.

Each client row also keeps the latest visit and contact instants (business time) and the latest
record time of its activity: the maxima over its activity rows, which never change once written
(a contact is logged once, a work order closed once), so a running maximum is exact and applying
an event twice changes nothing. A report whose `as_of` is past that record time and whose day
started after those instants reads them instead of the client's activity rows.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Index,
    Numeric,
    String,
    Table,
    Uuid,
    bindparam,
    case,
    update,
)

from domain.activity import Contact
from domain.client import Client
from domain.service import WorkOrder
from projections.base import Projection, UtcDateTime, metadata, upsert

segment_clients = Table(
    "seg_clients", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    # Maxima over the client's activity rows (NULL: none of that kind yet); last_at is the
    # later of the two. The report finds the clients active lately, or with activity
    # recorded after its `as_of`, by the indexes on last_at and activity_recorded_at.
    Column("last_visit_at", UtcDateTime),
    Column("last_contact_at", UtcDateTime),
    Column("last_at", UtcDateTime, index=True),
    Column("activity_recorded_at", UtcDateTime, index=True),
    # On SQLite the rows live in the key's b-tree: the report's scans in client id order
    # (pages of a segment) read the table in order instead of looking each row up.
    sqlite_with_rowid=False,
)

# kind = visit (a work order's closing; source_id = work order id, amount = its closing amount)
# or contact (source_id = contact id, no amount).
segment_activity = Table(
    "seg_activity", metadata,
    Column("source_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("kind", String(10), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("amount", Numeric(18, 4)),
    Column("currency", String(3)),
    # The latest-activity-per-client queries (the report's, the card's) read this index only.
    Index("ix_seg_activity_latest", "client_id", "kind", "occurred_at", "recorded_at"),
    # The report's window of visits, read from this index only.
    Index("ix_seg_activity_kind", "kind", "occurred_at", "recorded_at", "client_id", "currency",
          "amount"),
)


def _running_max(column: Any, instant: str, kind: str | None = None) -> Any:
    """`column`, or the bound `instant` when that is later (and the event is of `kind`)."""
    value = bindparam(instant, type_=UtcDateTime)
    later = column.is_(None) | (column < value)
    if kind is not None:
        later = (bindparam("b_kind", type_=String) == kind) & later
    return case((later, value), else_=column)


_c = segment_clients.c
# Built once: one statement for every activity event, so the batching connection sends runs of
# them as one executemany.
_ADVANCE = (update(segment_clients).where(_c.client_id == bindparam("b_client", type_=Uuid))
            .values(last_visit_at=_running_max(_c.last_visit_at, "b_occurred", "visit"),
                    last_contact_at=_running_max(_c.last_contact_at, "b_occurred", "contact"),
                    last_at=_running_max(_c.last_at, "b_occurred"),
                    activity_recorded_at=_running_max(_c.activity_recorded_at, "b_recorded")))


class Segments(Projection):
    """The facts segments, the loyalty-value matrix and segment transitions are computed from."""

    name = "segments"
    tables = (segment_clients, segment_activity)

    def apply(self, conn: Connection, event: Any, position: int) -> None:
        if isinstance(event, Client.ClientRegistered):
            upsert(conn, segment_clients, {
                "client_id": event.originator_id, "registered_at": event.occurred_at,
                "recorded_at": event.timestamp}, ["client_id"])
        elif isinstance(event, WorkOrder.WorkOrderClosed):
            self._activity(conn, event, "visit", amount=event.amount, currency=event.currency)
        elif isinstance(event, Contact.ContactLogged):
            self._activity(conn, event, "contact", amount=None, currency=None)

    @staticmethod
    def _activity(conn: Connection, e: Any, kind: str, **money: Any) -> None:
        upsert(conn, segment_activity, {
            "source_id": e.originator_id, "client_id": e.client_id, "kind": kind,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp, **money}, ["source_id"])
        # The client registered earlier in the store (a contact or work order needs a live
        # client), so its row exists.
        conn.execute(_ADVANCE, {"b_client": e.client_id, "b_kind": kind,
                                "b_occurred": e.occurred_at, "b_recorded": e.timestamp})
