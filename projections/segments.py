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

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Column,
    Index,
    Numeric,
    String,
    Table,
    Uuid,
)

from domain.activity import Contact
from domain.client import Client
from domain.service import WorkOrder
from projections.base import UtcDateTime, metadata
from projections.fold import FoldProjection, Need, Rows

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


def _later(current: datetime | None, instant: datetime) -> datetime | None:
    """`current`, or `instant` when that is later (a running maximum; NULL is no value yet)."""
    return instant if current is None or current < instant else current


class Segments(FoldProjection):
    """The facts segments, the loyalty-value matrix and segment transitions are computed from."""

    name = "segments"
    tables = (segment_clients, segment_activity)
    keeps = (segment_clients,)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        if isinstance(event, (WorkOrder.WorkOrderClosed, Contact.ContactLogged)):
            yield Need(segment_clients, "client_id", event.client_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if isinstance(event, Client.ClientRegistered):
            # A client's first event: no row exists before it, so the maxima start empty.
            rows.put(segment_clients, {
                "client_id": event.originator_id, "registered_at": event.occurred_at,
                "recorded_at": event.timestamp, "last_visit_at": None,
                "last_contact_at": None, "last_at": None, "activity_recorded_at": None})
        elif isinstance(event, WorkOrder.WorkOrderClosed):
            self._activity(rows, event, "visit", amount=event.amount, currency=event.currency)
        elif isinstance(event, Contact.ContactLogged):
            self._activity(rows, event, "contact", amount=None, currency=None)

    @staticmethod
    def _activity(rows: Rows, e: Any, kind: str, **money: Any) -> None:
        rows.put(segment_activity, {
            "source_id": e.originator_id, "client_id": e.client_id, "kind": kind,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp, **money})
        # The client registered earlier in the store (a contact or work order needs a live
        # client), so its row exists; if not, nothing changes (as an UPDATE of no row).
        client = rows.get(segment_clients, e.client_id)
        if client is None:
            return
        occurred = e.occurred_at
        rows.update(segment_clients, e.client_id,
                    last_visit_at=(_later(client["last_visit_at"], occurred) if kind == "visit"
                                   else client["last_visit_at"]),
                    last_contact_at=(_later(client["last_contact_at"], occurred)
                                     if kind == "contact" else client["last_contact_at"]),
                    last_at=_later(client["last_at"], occurred),
                    activity_recorded_at=_later(client["activity_recorded_at"], e.timestamp))
