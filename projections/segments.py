"""Segment facts: clients, and their activity (closed work orders as visits, logged contacts).

One row per registration, per closed work order and per logged contact, with business and record
time, so segments at any `at` and as of any `as_of` are computed at query time (segment_report.py).
Rows are keyed by the source aggregate, so an event applied twice changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Connection, Index, Numeric, String, Table, Uuid

from domain.activity import Contact
from domain.client import Client
from domain.service import WorkOrder
from projections.base import Projection, UtcDateTime, metadata, upsert

segment_clients = Table(
    "seg_clients", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
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
    # The report's latest-activity-per-client queries read this index only.
    Index("ix_seg_activity_latest", "client_id", "kind", "occurred_at"),
)


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
