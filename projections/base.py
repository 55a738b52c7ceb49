"""The projection contract, the tracking table, and the runner that applies events in order.

Every projection writes its rows and its tracking position in one transaction, so an event
delivered twice (redelivery, restart, a Kafka rebalance) is recognised and changes nothing.
The same code runs live (embedded follower, Kafka consumer) and on replay.
"""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    String,
    Table,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeDecorator

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """An instant: stored as UTC on every backend (SQLite keeps no offset), read back aware.

    Comparisons in SQL (as_of cut-offs, periods) are then correct on SQLite and PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UtcDateTime column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

tracking = Table(
    "projection_tracking", metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# The shape (DDL) each projection's tables were created with: a projection whose tables changed
# shape in a new version of the code is dropped and rebuilt from the store at start.
shapes = Table(
    "projection_shapes", metadata,
    Column("projection", String(64), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
)


def shape_fingerprint(conn: Connection, projection: Projection) -> str:
    ddl = [str(CreateTable(t).compile(dialect=conn.dialect)) for t in
           sorted(projection.tables, key=lambda t: t.name)]
    ddl += [str(CreateIndex(i).compile(dialect=conn.dialect)) for t in projection.tables
            for i in sorted(t.indexes, key=lambda i: str(i.name))]
    return hashlib.sha256("\n".join(ddl).encode()).hexdigest()


def _match_shape(conn: Connection, projection: Projection) -> None:
    fingerprint = shape_fingerprint(conn, projection)
    row = conn.execute(select(shapes.c.fingerprint)
                       .where(shapes.c.projection == projection.name)).first()
    if row is not None and row.fingerprint == fingerprint:
        return
    if row is not None:  # the code changed the tables: start this projection over
        for table in reversed(projection.tables):
            table.drop(conn, checkfirst=True)
        conn.execute(tracking.delete().where(tracking.c.projection == projection.name))
    for table in projection.tables:
        table.create(conn, checkfirst=True)
    upsert(conn, shapes, {"projection": projection.name, "fingerprint": fingerprint},
           ["projection"])


# (position, domain event) pairs from the store's notification log, in order.
Reader = Callable[[int, int], Sequence[tuple[int, Any]]]


class Projection(ABC):
    """A read model: `apply` folds one event into its tables inside the caller's transaction."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    tables: ClassVar[tuple[Table, ...]] = ()

    @abstractmethod
    def apply(self, conn: Connection, event: Any, position: int) -> None: ...


def upsert(conn: Connection, table: Table, values: dict[str, Any], keys: Iterable[str], *,
           replace: bool = True) -> None:
    """Insert or replace a row by its key columns (or keep the old one: replace=False), on
    SQLite and PostgreSQL alike."""
    dialect = conn.dialect.name
    key_cols = tuple(keys)
    cache_key = (dialect, table, key_cols, tuple(values), replace)
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        # Built once per shape and executed with parameters: building a statement around literal
        # values each time dominated projection time (SQLAlchemy coercion and cache keys).
        # `excluded.<col>` is the value offered for insertion, so the update is the same.
        insert = pg_insert(table) if dialect == "postgresql" else sqlite_insert(table)
        updates = {k: insert.excluded[k] for k in values if k not in key_cols}
        stmt = (insert.on_conflict_do_update(index_elements=list(key_cols), set_=updates)
                if updates and replace
                else insert.on_conflict_do_nothing(index_elements=list(key_cols)))
        _UPSERTS[cache_key] = stmt
    conn.execute(stmt, values)


# (dialect, table, key columns, value columns, replace) -> statement; bounded by the call sites.
_UPSERTS: dict[tuple[Any, ...], Any] = {}


def positions(conn: Connection, names: Iterable[str] | None = None, *,
              lock: bool = False) -> dict[str, int]:
    """Tracked positions; with `lock`, the rows stay locked until the transaction ends, so two
    runners (threads or processes) never apply the same page twice (PostgreSQL row locks;
    SQLite has a single writer anyway)."""
    query = select(tracking)
    if names is not None:
        query = query.where(tracking.c.projection.in_(list(names)))
    if lock:
        query = query.with_for_update()
    return {r.projection: r.position for r in conn.execute(query)}


class Runner:
    """Feeds events from a reader into projections; each page is one transaction."""

    def __init__(self, engine: Engine, projections: Sequence[Projection], reader: Reader,
                 page_size: int = 500) -> None:
        self.engine = engine
        self.projections = list(projections)
        self.reader = reader
        self.page_size = page_size
        self._names = [p.name for p in self.projections]
        # Called after each committed page (e.g. to scrub erased personal data off the disk).
        self.after_page: Callable[[Sequence[tuple[int, Any]]], None] | None = None
        self._lock = threading.Lock()
        metadata.create_all(engine, tables=[tracking, shapes])
        with engine.begin() as conn:
            for projection in self.projections:
                _match_shape(conn, projection)
            for name in self._names:
                upsert(conn, tracking, {"projection": name, "position": 0}, ["projection"],
                       replace=False)

    def position(self) -> int:
        """The position every projection has reached (the least of them)."""
        with self.engine.connect() as conn:
            seen = positions(conn)
        return min((seen.get(p.name, 0) for p in self.projections), default=0)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off this runner (e.g. while its tables are swapped for a rebuilt copy)."""
        with self._lock:
            yield

    def catch_up(self, stop: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Apply everything after the tracked positions; return the number of events applied."""
        with self._lock:
            return self._catch_up(stop, progress)

    def _catch_up(self, stop: int | None, progress: Callable[[int], None] | None) -> int:
        applied = 0
        while True:
            start = self.position() + 1
            page = self.reader(start, self.page_size)
            if stop is not None:
                page = [(n, e) for n, e in page if n <= stop]
            if not page:
                return applied
            self.apply_page(page)
            applied += len(page)
            if progress is not None:
                progress(len(page))

    def apply_page(self, page: Sequence[tuple[int, Any]]) -> None:
        with self.engine.begin() as conn:
            seen = positions(conn, self._names, lock=True)
            for projection in self.projections:
                done = seen.get(projection.name, 0)
                last = done
                for position, event in page:
                    if position > done:  # redelivered events are recognised here
                        projection.apply(conn, event, position)
                        last = position
                if last != done:
                    upsert(conn, tracking, {"projection": projection.name, "position": last},
                           ["projection"])
        if self.after_page is not None:
            self.after_page(page)
