"""Poison events (§6): retried with back-off, then parked on crm.events.v1.dlq and in the read-model
database, counted, reported, and re-drivable.

Parking is never a silent skip: the row that says "projection X did not apply event E, because..."
is written in the same transaction that moves X's tracking position past E. The DLQ topic carries
the same record for operators and other tools; the table is what /readyz counts and what `redrive`
works from, because it sits in the same database as the projections it re-applies to.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Gauge
from sqlalchemy import (
    Connection,
    Engine,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError, OperationalError

from consumers.cloudevents import decode
from projections.base import (
    Partition,
    Projection,
    Runner,
    Undecodable,
    partition_positions,
    positions,
    track,
    upsert,
)
from projections.deadletters import DEAD_LETTERS, dlq_metadata, parked_events

log = logging.getLogger(__name__)

PARKED = Gauge("crm_dead_letters_parked", "Parked events not yet re-driven (read-model database)")
ALL = "*"  # the projection name of a record no projection could read (undecodable)

@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 4
    first_delay: float = 0.2
    max_delay: float = 5.0

    def delays(self) -> Iterator[float]:
        """The waits between attempts (one fewer than the attempts)."""
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay
            delay = min(delay * 2, self.max_delay)


def is_transient(error: BaseException) -> bool:
    """Database trouble says nothing about the event: retry it forever rather than park it."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    text = str(error).lower()
    return isinstance(error, OperationalError) and any(
        word in text for word in ("locked", "connect", "timeout", "terminat", "server closed",
                                  "deadlock", "could not serialize"))


@dataclass(frozen=True)
class Parked:
    projection: str
    event_ref: str
    position: int | None
    type: str | None
    error: str
    attempts: int
    record: bytes
    source: dict[str, Any] = field(default_factory=dict)

    def dlq_value(self, consumer: str) -> bytes:
        try:
            event: Any = orjson.loads(self.record)
        except orjson.JSONDecodeError:
            event = self.record.decode(errors="replace")
        return orjson.dumps({
            "kind": "crm.deadletter.v1", "consumer": consumer, "projection": self.projection,
            "error": self.error, "attempts": self.attempts, "position": self.position,
            "source": self.source, "event": event})


_created: weakref.WeakSet[Engine] = weakref.WeakSet()


def create(engine: Engine) -> None:
    if engine not in _created:
        dlq_metadata.create_all(engine)
        _created.add(engine)


def record(conn: Connection, parked: Parked, now: datetime, partition: Partition | None = None,
           next_offset: int | None = None) -> None:
    """Park in the caller's transaction; for a readable event, move the projection past it (in
    its topic `partition`, with the offset after its record, when it came from one)."""
    upsert(conn, parked_events, {
        "projection": parked.projection, "event_ref": parked.event_ref,
        "position": parked.position, "type": parked.type, "error": parked.error[:4000],
        "attempts": parked.attempts, "status": "parked", "record": parked.record,
        "parked_at": now, "redriven_at": None}, ["projection", "event_ref"])
    if parked.position is not None and parked.projection != ALL:
        if partition is None:
            done = positions(conn, [parked.projection], lock=True).get(parked.projection, 0)
        else:
            done = partition_positions(conn, partition, [parked.projection],
                                       lock=True)[parked.projection][0]
        if parked.position > done:
            track(conn, parked.projection, parked.position, partition, next_offset)
    DEAD_LETTERS.labels(parked.projection).inc()


def parked_count(engine: Engine) -> int:
    """Events parked and not re-driven (for /readyz; also sets the /metrics gauge)."""
    create(engine)
    with engine.connect() as conn:
        count = int(conn.execute(select(func.count()).select_from(parked_events)
                                 .where(parked_events.c.status == "parked")).scalar_one())
    PARKED.set(count)
    return count


def parked(engine: Engine) -> list[dict[str, Any]]:
    create(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(parked_events).where(parked_events.c.status == "parked")
                            .order_by(parked_events.c.position, parked_events.c.event_ref))
        return [dict(r._mapping) for r in rows]


@dataclass
class RedriveReport:
    redriven: list[str] = field(default_factory=list)
    still_failing: dict[str, str] = field(default_factory=dict)


def redrive(engine: Engine, projections: Sequence[Projection],
            clock: Callable[[], datetime] = lambda: datetime.now(UTC), *,
            runner: Runner | None = None) -> RedriveReport:
    """Re-apply every parked event to the projection that failed it (after a fix), each in its
    own transaction with its row marked re-driven, so a second re-drive changes nothing.

    An event parked by the runner is read again from the store (its record names the
    position); one parked by the Kafka consumer is decoded from the record it came in. With
    `runner` (the process's own), that runner is held off meanwhile and drops the rows it held.
    The event lands after later ones: exact for projections keyed by the event itself; where the
    order matters, `crm replay` rebuilds the projection in store order instead."""
    if runner is None:
        return _redrive(engine, projections, clock, None)
    with runner.paused():
        return _redrive(engine, projections, clock, runner.reader)


def _read_parked(record: bytes, reader: Callable[[int, int], Sequence[tuple[int, Any]]] | None
                 ) -> tuple[int, Any]:
    reference = orjson.loads(record) if record.startswith(b'{"store"') else None
    if reference is None:
        return decode(record)
    if reader is None:
        raise LookupError("an event parked from the store needs the store to re-drive it")
    position = int(reference["store"])
    found = [item for item in reader(position, 1) if item[0] == position]
    if not found:
        raise LookupError(f"no event at position {position} in the store")
    if isinstance(found[0][1], Undecodable):  # still unreadable: an upcaster would fix it
        raise ValueError(found[0][1].error)
    return found[0]


def _redrive(engine: Engine, projections: Sequence[Projection],
             clock: Callable[[], datetime],
             reader: Callable[[int, int], Sequence[tuple[int, Any]]] | None) -> RedriveReport:
    by_name = {p.name: p for p in projections}
    report = RedriveReport()
    for row in parked(engine):
        targets = list(by_name.values()) if row["projection"] == ALL else [
            by_name[row["projection"]]] if row["projection"] in by_name else []
        ref = f"{row['projection']}:{row['event_ref']}"
        if not targets:
            continue
        try:
            position, event = _read_parked(row["record"], reader)
            with engine.begin() as conn:
                for projection in targets:
                    projection.apply(conn, event, position)
                conn.execute(update(parked_events).where(
                    parked_events.c.projection == row["projection"],
                    parked_events.c.event_ref == row["event_ref"],
                    parked_events.c.status == "parked",
                ).values(status="redriven", redriven_at=clock()))
            report.redriven.append(ref)
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            with engine.begin() as conn:
                conn.execute(update(parked_events).where(
                    parked_events.c.projection == row["projection"],
                    parked_events.c.event_ref == row["event_ref"],
                ).values(attempts=parked_events.c.attempts + 1, error=message[:4000]))
            report.still_failing[ref] = message
    return report


def backoff_sleep(delay: float, stop: Any | None) -> None:
    """Wait between retries; a stop request cuts the wait short."""
    if stop is not None:
        stop.wait(delay)
    else:
        time.sleep(delay)
