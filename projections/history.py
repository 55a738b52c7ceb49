"""Client history: which events concern which client, in store order (index for reads and as_of)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    select,
)

from domain.base import CrmAggregate
from projections.base import UtcDateTime, metadata
from projections.fold import FoldProjection, Rows

client_events = Table(
    "client_events", metadata,
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("client_id", Uuid, nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("type", String(64), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_client_events_client", "client_id", "position"),
)

class ClientHistory(FoldProjection):
    """Every client-related event, indexed by client (the streams hold the events themselves)."""

    name = "client_history"
    tables = (client_events,)
    keeps = ()  # read back by later events (projections.fold)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        # Keyed by the store position, written once: it reads nothing, so it needs nothing.
        if not isinstance(event, CrmAggregate.Event) or event.client_id is None:
            return
        rows.put(client_events, {
            "position": position, "client_id": event.client_id, "stream_id": event.originator_id,
            "version": event.originator_version, "type": type(event).__name__,
            "occurred_at": event.occurred_at, "recorded_at": event.timestamp})


def history_page(conn: Connection, client_id: UUID, *, after: int = 0, limit: int = 100,
                 recorded_until: datetime | None = None) -> list[Any]:
    query = (select(client_events).where(client_events.c.client_id == client_id,
                                         client_events.c.position > after)
             .order_by(client_events.c.position).limit(limit))
    if recorded_until is not None:
        query = query.where(client_events.c.recorded_at <= recorded_until)
    return list(conn.execute(query))
