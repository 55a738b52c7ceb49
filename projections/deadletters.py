"""Dead letters: an (event, projection) pair that could not be applied, parked with its error.

The runner parks in the transaction that moves the projection's tracked position past the
event, so parking is never a silent skip, and the other projections are not held back. The
table is read by /readyz and /metrics, listed by `crm deadletters` and an admin route, and
re-driven after a fix (consumers.dlq). Not projection state: replay neither rebuilds nor
digests it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
)

from domain.base import event_id_of
from projections.base import UtcDateTime, upsert

DEAD_LETTERS = Counter("crm_dead_letters_total", "Events parked after failing every retry",
                       ["projection"])

dlq_metadata = MetaData()
parked_events = Table(
    "parked_events", dlq_metadata,
    Column("projection", String(64), primary_key=True),
    # The event id, or "topic/partition/offset" for a record that is not a readable event.
    Column("event_ref", String(200), primary_key=True),
    Column("position", BigInteger, nullable=True),
    Column("type", String(200), nullable=True),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # parked | redriven
    # The record value as it came from Kafka; for an event parked by the runner, a JSON
    # reference to the stored event ({"store": position, ...}): re-drive reads it from the store.
    Column("record", LargeBinary, nullable=False),
    Column("parked_at", UtcDateTime, nullable=False),
    Column("redriven_at", UtcDateTime, nullable=True),
)


def event_ref(event: Any) -> str:
    return str(event_id_of(event.originator_id, event.originator_version))


def type_of(event: Any) -> str:
    topic = getattr(event, "topic", None)
    return topic if type(event).__name__ == "Undecodable" and topic else type(event).__name__


def describe(position: int, event: Any) -> str:
    """How logs and errors name an event: position, type, stream and version."""
    return (f"position {position} ({type_of(event)}, stream "
            f"{getattr(event, 'originator_id', '?')} v{getattr(event, 'originator_version', '?')})")


def store_record(position: int, event: Any) -> bytes:
    return orjson.dumps({"store": position, "type": type_of(event),
                         "stream": str(event.originator_id),
                         "version": event.originator_version})


def park(conn: Connection, projection: str, position: int, event: Any, error: BaseException,
         attempts: int, now: datetime) -> None:
    """Record in the caller's transaction that `projection` did not apply the event."""
    upsert(conn, parked_events, {
        "projection": projection, "event_ref": event_ref(event), "position": position,
        "type": type_of(event), "error": f"{type(error).__name__}: {error}"[:4000],
        "attempts": attempts, "status": "parked", "record": store_record(position, event),
        "parked_at": now, "redriven_at": None}, ["projection", "event_ref"])
    DEAD_LETTERS.labels(projection).inc()


def parked_by_projection(conn: Connection) -> dict[str, tuple[int, datetime | None]]:
    """Per projection: events parked and not re-driven, and when the latest was parked."""
    rows = conn.execute(
        select(parked_events.c.projection, func.count(), func.max(parked_events.c.parked_at))
        .where(parked_events.c.status == "parked").group_by(parked_events.c.projection))
    return {r[0]: (int(r[1]), r[2]) for r in rows}
