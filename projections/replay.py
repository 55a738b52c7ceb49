"""Replay: rebuild projections from the store into fresh tables, digest them, leave receipts.

A receipt names the projection and its code version, the event range, a digest of the events
consumed and a digest of the resulting state. Digests are computed over canonical values (UTC
instants, normalised decimals, sorted JSON, rows ordered by primary key in Python, not by the
database's collation), so the same events and code give the same receipt on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    select,
    text,
)

from domain.catalogue import jsonable
from projections.base import Partition, Projection, Reader, Runner, UtcDateTime, positions

receipts_metadata = MetaData()
receipts = Table(
    "replay_receipts", receipts_metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("projection", String(64), nullable=False),
    Column("code_version", String(64), nullable=False),
    Column("first_position", BigInteger, nullable=False),
    Column("last_position", BigInteger, nullable=False),
    Column("events", BigInteger, nullable=False),
    Column("events_digest", String(64), nullable=False),
    Column("state_digest", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Receipt:
    projection: str
    code_version: str
    first_position: int
    last_position: int
    events: int
    events_digest: str
    state_digest: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def code_version(projection: Projection) -> str:
    """The declared version plus a hash of the projection's module source."""
    module = sys.modules[type(projection).__module__]
    source = inspect.getsource(module).encode()
    return f"{projection.version}+{hashlib.sha256(source).hexdigest()[:12]}"


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def canonical_rows(conn: Connection, table: Table) -> list[tuple[bytes, bytes]]:
    """(key, row) pairs as canonical JSON bytes, sorted by key."""
    keys = [c.name for c in table.primary_key.columns]
    names = [c.name for c in table.columns]
    out = []
    for row in conn.execute(select(table)):
        data = row._mapping
        key = orjson.dumps([_canonical(data[k]) for k in keys])
        out.append((key, orjson.dumps([_canonical(data[n]) for n in names],
                                      option=orjson.OPT_SORT_KEYS)))
    out.sort()
    return out


def state_digest(conn: Connection, tables: Sequence[Table]) -> str:
    digest = hashlib.sha256()
    for table in sorted(tables, key=lambda t: t.name):
        digest.update(table.name.encode() + b"\0")
        for key, row in canonical_rows(conn, table):
            digest.update(key + b"\0" + row + b"\n")
    return digest.hexdigest()


def first_difference(left: Connection, right: Connection, tables: Sequence[Table]) -> str | None:
    """Names the first row (table and key) where two copies of a projection differ."""
    for table in sorted(tables, key=lambda t: t.name):
        a, b = canonical_rows(left, table), canonical_rows(right, table)
        for (ka, ra), (kb, rb) in zip(a, b, strict=False):
            if ka != kb:
                return f"{table.name}: key {min(ka, kb).decode()} is only on one side"
            if ra != rb:
                return f"{table.name}: row {ka.decode()} differs: {ra.decode()} != {rb.decode()}"
        if len(a) != len(b):
            extra = (a if len(a) > len(b) else b)[min(len(a), len(b))][0].decode()
            return f"{table.name}: key {extra} is only on one side"
    return None


class DigestingReader:
    """Wraps a reader, hashing every event it hands out (position, type, canonical fields)."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._digest = hashlib.sha256()
        self.first: int | None = None
        self.last = 0
        self.count = 0

    def __call__(self, start: int, limit: int) -> Sequence[tuple[int, Any]]:
        return self._reader(start, limit)

    def consumed(self, page: Sequence[tuple[int, Any]]) -> None:
        for position, event in page:
            self._digest.update(orjson.dumps(
                [position, type(event).__name__, jsonable(vars(event))],
                option=orjson.OPT_SORT_KEYS) + b"\n")
            self.first = position if self.first is None else self.first
            self.last = position
            self.count += 1

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def live_snapshot(engine: Engine, projection: Projection) -> tuple[int, str]:
    """The live copy's position and state digest, read in one transaction (a consistent pair)."""
    with engine.connect() as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
        position = positions(conn).get(projection.name, 0)
        return position, state_digest(conn, projection.tables)


def one_line(error: BaseException) -> str:
    """An error as one short line: its type and the first line of its message."""
    first = (str(error).strip().splitlines() or [""])[0][:300]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


class EventFailed(Exception):
    """An event a replay or rebuild could not read (raised) or apply (parked, reported)."""

    def __init__(self, position: int, event_type: str, stream: str, cause: BaseException,
                 projection: str | None = None) -> None:
        self.position = position
        self.event_type = event_type
        self.stream = stream
        self.projection = projection
        self.cause = cause
        self.reason = one_line(cause)
        where = f"{projection} could not apply" if projection else "could not read"
        super().__init__(f"{where} the event at position {position} ({event_type}, stream "
                         f"{stream}): {self.reason}")

    def as_dict(self) -> dict[str, Any]:
        return {"position": self.position, "type": self.event_type, "stream": self.stream,
                "projection": self.projection, "error": self.reason}


def rebuild(projection: Projection, reader: Reader, target: Engine, *, stop: int | None = None,
            progress: Callable[[int], None] | None = None,
            on_park: Callable[[EventFailed], None] | None = None) -> Receipt:
    """Apply every event up to `stop` into `target` (a fresh database); return the receipt.
    An event the projection cannot apply is parked (as live) and handed to `on_park`."""
    digesting = DigestingReader(reader)
    runner = Runner(target, [projection], digesting)
    original = runner.apply_page

    def apply_and_digest(page: Sequence[tuple[int, Any]], partition: Partition | None = None,
                         next_offset: int | None = None) -> None:
        original(page, partition, next_offset)
        digesting.consumed(page)

    def parked(name: str, position: int, event: Any, error: BaseException) -> None:
        if on_park is not None:
            on_park(EventFailed(position, type(event).__name__,
                                str(getattr(event, "originator_id", "?")), error, name))

    runner.apply_page = apply_and_digest  # type: ignore[method-assign]
    runner.on_park = parked
    runner.catch_up(stop=stop, progress=progress)
    with target.connect() as conn:
        state = state_digest(conn, projection.tables)
    return Receipt(projection.name, code_version(projection), digesting.first or 0,
                   digesting.last, digesting.count, digesting.hexdigest(), state)


def save_receipt(engine: Engine, receipt: Receipt, now: datetime) -> None:
    receipts_metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(receipts.insert().values(**receipt.as_dict(), created_at=now))


def list_receipts(engine: Engine, *, limit: int = 100) -> Iterator[dict[str, Any]]:
    receipts_metadata.create_all(engine)
    with engine.connect() as conn:
        for row in conn.execute(select(receipts).order_by(receipts.c.id.desc()).limit(limit)):
            yield dict(row._mapping)
