"""The projection contract, the tracking table, and the runner that applies events in order.

Every projection writes its rows and its tracking position in one transaction, so an event
delivered twice (redelivery, restart, a Kafka rebalance) is recognised and changes nothing.
The same code runs live (embedded follower, Kafka consumer) and on replay.

Fed from a partitioned Kafka topic, a runner tracks each projection's position per partition
(`projection_partitions`, in the page's transaction) instead of the one global position: a
partition's records come in store order, and the partitions interleave in any order
(docs/bus.md, "Partitions").
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Dialect,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeDecorator

log = logging.getLogger(__name__)
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

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        return _sqlite_text

    def bind_column(self, dialect: Dialect) -> Callable[[Sequence[Any]], list[Any]]:
        """A whole column of values bound at once (the page-fold writer, projections.fold):
        the values `bind_processor` gives, value by value, without a call per value where the
        instant was seen before (SQLite) or is already aware (PostgreSQL)."""
        if dialect.name == "sqlite":
            known = _SQLITE_TEXTS.get
            return lambda values: [None if v is None else known(v) or _sqlite_text(v)
                                   for v in values]
        if self.impl_instance.dialect_impl(dialect).bind_processor(dialect) is not None:
            each = self.bind_processor(dialect)
            assert each is not None
            return lambda values: [each(v) for v in values]
        return lambda values: [None if v is None else v.astimezone(UTC)
                               if v.tzinfo is not None else _naive(v) for v in values]

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _naive(value: datetime) -> Any:
    raise ValueError("naive datetime given to a UtcDateTime column")


def _sqlite_text(value: datetime | None) -> str | None:
    """SQLite's text of an instant in one step instead of process_bind_param followed by
    SQLite's DATETIME formatting (a third of the cost, and instants are bound for nearly every
    projected row); the text is the same: "YYYY-MM-DD HH:MM:SS.ffffff" in UTC (the aware
    text's fixed-width offset "+00:00" cut off). The same instants recur (an event's times go
    into rows of several projections and tables): formatted once each, kept in one bounded
    memo for every column."""
    if value is None:
        return None
    found = _SQLITE_TEXTS.get(value)
    if found is not None and value.tzinfo is not None:
        return found
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UtcDateTime column")
    text = value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]
    if len(_SQLITE_TEXTS) >= 65536:
        _SQLITE_TEXTS.clear()
    _SQLITE_TEXTS[value] = text
    return text


_SQLITE_TEXTS: dict[datetime, str] = {}


tracking = Table(
    "projection_tracking", metadata,
    Column("projection", String(64), primary_key=True),
    Column("position", BigInteger, nullable=False),
)

# Per projection and topic partition (the Kafka consumers): the last store position applied from
# that partition and the offset after its record (where a consumer given the partition seeks).
# `partitions` is the topic's partition count the row was written under: a client's partition
# depends on it, so rows of another count say nothing about the partitions of this one.
partition_tracking = Table(
    "projection_partitions", metadata,
    Column("projection", String(64), primary_key=True),
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("partitions", Integer, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("next_offset", BigInteger),
)


@dataclass(frozen=True)
class Partition:
    """A partition of a topic of `partitions` partitions (what a page came from)."""

    topic: str
    partition: int
    partitions: int


class FedByPartitions(RuntimeError):
    """These read models are fed per topic partition (the Kafka consumers): a runner tracking
    the global position would apply again what the partitions applied past it."""


class PartitionLayoutChanged(RuntimeError):
    """The topic's partition count changed under per-partition positions: a client's events
    now lie in another partition, so those positions no longer tell what was applied."""


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


def _match_shape(conn: Connection, projection: Projection) -> list[Index]:
    """Create (or re-create, when the code changed them) a projection's tables. Indexes of
    tables created here are returned, not made: a bulk load fills the tables first and
    indexes them after (Runner). Existing tables get any index they lack."""
    fingerprint = shape_fingerprint(conn, projection)
    row = conn.execute(select(shapes.c.fingerprint)
                       .where(shapes.c.projection == projection.name)).first()
    if row is not None and row.fingerprint != fingerprint:  # start this projection over
        for table in reversed(projection.tables):
            table.drop(conn, checkfirst=True)
        conn.execute(tracking.delete().where(tracking.c.projection == projection.name))
        conn.execute(partition_tracking.delete()
                     .where(partition_tracking.c.projection == projection.name))
    deferred: list[Index] = []
    for table in projection.tables:
        schema = conn.get_execution_options().get("schema_translate_map", {}).get(
            table.schema, table.schema)  # a copy in another schema (replay, blue/green)
        if inspect(conn).has_table(table.name, schema=schema):
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                index.create(conn, checkfirst=True)  # an earlier bulk load may have stopped
        else:
            conn.execute(CreateTable(table))
            deferred.extend(sorted(table.indexes, key=lambda i: str(i.name)))
    if row is None or row.fingerprint != fingerprint:
        upsert(conn, shapes, {"projection": projection.name, "fingerprint": fingerprint},
               ["projection"])
    return deferred


@dataclass(frozen=True)
class Undecodable:
    """A stored event this code cannot read (an unknown type, state that does not decode):
    the reader hands it on in its place, and every projection parks it rather than stop.
    An upcaster (domain) is the documented way to make such an event readable again."""

    originator_id: Any
    originator_version: int
    topic: str
    error: str


# (position, domain event) pairs from the store's notification log, in order.
Reader = Callable[[int, int], Sequence[tuple[int, Any]]]


class Projection(ABC):
    """A read model: its name, tables and code version. Every projection folds its events in
    memory (projections.fold.FoldProjection); `apply` takes one event on its own."""

    name: ClassVar[str]
    version: ClassVar[str] = "1"
    tables: ClassVar[tuple[Table, ...]] = ()
    # Tables whose rows events of different clients read back and change (aggregates, such as
    # sums per hour). Fed per Kafka partition, such a projection folds each page under a lock
    # shared by every consumer and reads those rows afresh (docs/bus.md, "Partitions").
    shared: ClassVar[tuple[Table, ...]] = ()

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


def partition_positions(conn: Connection, partition: Partition, names: Iterable[str], *,
                        lock: bool = False) -> dict[str, tuple[int, int | None]]:
    """Each projection's (position, next offset) in `partition`. A projection without a row
    there starts from its global position (every event up to it is applied, whatever its
    partition; so a read model built from a one-partition topic by an earlier version goes on).
    Rows written under a one-partition layout mean the same and are folded into the global
    position; rows of any other count raise PartitionLayoutChanged. With `lock`, the rows
    stay locked until the transaction ends (as `positions`)."""
    names = list(names)
    pt = partition_tracking.c
    rows = conn.execute(select(partition_tracking).where(
        pt.topic == partition.topic, pt.projection.in_(names))).all()
    stale = [r for r in rows if r.partitions != partition.partitions]
    if stale:
        if any(r.partitions != 1 for r in stale):
            counts = sorted({r.partitions for r in stale})
            raise PartitionLayoutChanged(
                f"{partition.topic} has {partition.partitions} partitions, but the read models "
                f"tracked it with {counts}: drain the old layout and run `crm replay` "
                "(docs/bus.md, \"Changing the partition count\")")
        globals_ = positions(conn, names, lock=True)
        for r in stale:  # one partition held every event: its position is global
            if r.position > globals_.get(r.projection, 0):
                upsert(conn, tracking, {"projection": r.projection, "position": r.position},
                       ["projection"])
        conn.execute(partition_tracking.delete().where(
            pt.topic == partition.topic, pt.partitions != partition.partitions))
    mine = {r.projection for r in rows
            if r.partition == partition.partition and r.partitions == partition.partitions}
    missing = [n for n in names if n not in mine]
    if missing:
        seen = positions(conn, missing)
        for name in missing:
            upsert(conn, partition_tracking, {
                "projection": name, "topic": partition.topic, "partition": partition.partition,
                "partitions": partition.partitions, "position": seen.get(name, 0),
                "next_offset": None}, ["projection", "topic", "partition"], replace=False)
    query = select(partition_tracking).where(
        pt.topic == partition.topic, pt.partition == partition.partition,
        pt.projection.in_(names))
    if lock:
        query = query.with_for_update()
    return {r.projection: (r.position, r.next_offset) for r in conn.execute(query)}


def track(conn: Connection, name: str, position: int, partition: Partition | None,
           next_offset: int | None) -> None:
    """Move a projection's tracked position (its partition's, for a page from a partition)."""
    if partition is None:
        upsert(conn, tracking, {"projection": name, "position": position}, ["projection"])
        return
    values = {"projection": name, "topic": partition.topic, "partition": partition.partition,
              "partitions": partition.partitions, "position": position}
    if next_offset is not None:  # unknown: the offset recorded before stays
        values["next_offset"] = next_offset
    upsert(conn, partition_tracking, values, ["projection", "topic", "partition"])


def raise_position(conn: Connection, names: Iterable[str], position: int) -> None:
    """Move the global positions of `names` up to `position` (never down): the partitioned
    consumers' common watermark, every event up to it applied in every partition."""
    names = sorted(names)
    # Rows locked in name order first: consumers raising it at once never deadlock.
    conn.execute(select(tracking.c.projection).where(tracking.c.projection.in_(names))
                 .order_by(tracking.c.projection).with_for_update())
    stmt = (tracking.update()
            .where(tracking.c.projection.in_(names), tracking.c.position < position)
            .values(position=position))
    conn.execute(stmt)


class Runner:
    """Feeds events from a reader into projections; each page is one transaction.

    Projections (projections.fold) keep their rows in memory between pages and write each
    page's changes in bulk. An event a projection cannot apply is parked for that projection alone
    (projections.deadletters) and the projection goes on with the next event: a failure
    inside a fold is taken back in memory; a failure while writing sends the page again, one
    transaction per projection and event, to find and park the event that fails.
    """

    def __init__(self, engine: Engine, projections: Sequence[Projection], reader: Reader,
                 page_size: int = 2000, *, budget_rows: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        from projections import fold
        from projections.deadletters import dlq_metadata

        self.engine = engine
        self.projections = list(projections)
        self.reader = reader
        self.page_size = page_size
        self.clock = clock or (lambda: datetime.now(UTC))
        self.budget_rows = budget_rows or fold.DEFAULT_BUDGET_ROWS
        self._names = [p.name for p in self.projections]
        # Called after each committed page (e.g. to scrub erased personal data off the disk).
        self.after_page: Callable[[Sequence[tuple[int, Any]]], None] | None = None
        # Called when an event is parked: (projection name, position, event, error).
        self.on_park: Callable[[str, int, Any, BaseException], None] | None = None
        self._lock = threading.Lock()
        for projection in self.projections:
            if not isinstance(projection, fold.FoldProjection):
                raise TypeError(f"{projection.name}: projections fold (projections.fold)")
        self._rows: dict[str, fold.Rows] = {
            p.name: fold.Rows(p.tables, p.keeps) for p in self.projections
            if isinstance(p, fold.FoldProjection)}
        # The position this runner last committed per projection (and partition): any other
        # value at the start of a page means another writer moved it, and the rows held are
        # stale.
        self._committed: dict[tuple[str, Partition | None], int] = {}
        # False: a failing event raises instead (the Kafka consumer retries, then parks and
        # publishes the dead letter itself).
        self.parks = True
        self.loads = 0  # queries sent to load rows a page needed (a rebuild of fresh tables: 0)
        self.parked = 0
        metadata.create_all(engine, tables=[tracking, shapes, partition_tracking])
        dlq_metadata.create_all(engine)
        # Indexes of tables created here, made when the first catch-up ends (a bulk load).
        self._deferred: list[Index] = []
        self._catching_up = False
        with engine.begin() as conn:
            for projection in self.projections:
                self._deferred += _match_shape(conn, projection)
            for name in self._names:
                upsert(conn, tracking, {"projection": name, "position": 0}, ["projection"],
                       replace=False)

    def position(self) -> int:
        """The position every projection has reached (the least of them)."""
        with self.engine.connect() as conn:
            seen = positions(conn)
        return min((seen.get(p.name, 0) for p in self.projections), default=0)

    def partition_position(self, partition: Partition) -> tuple[int, int | None]:
        """Where every projection is in `partition`: the least position, and the offset to
        read from next (None if some projection has none recorded there)."""
        with self.engine.begin() as conn:
            seen = partition_positions(conn, partition, self._names)
        if not seen:
            return 0, None
        least = min(seen.values(), key=lambda found: found[0])
        offsets = [offset for _position, offset in seen.values()]
        return least[0], None if None in offsets else min(o for o in offsets if o is not None)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Hold off this runner (e.g. while its tables are swapped for a rebuilt copy)."""
        with self._lock:
            self.forget()
            try:
                yield
            finally:
                self.forget()

    def forget(self) -> None:
        """Drop every row held in memory (they are all written; later pages load them again)."""
        for rows in self._rows.values():
            rows.forget()
        self._committed.clear()

    def catch_up(self, stop: int | None = None,
                 progress: Callable[[int], None] | None = None) -> int:
        """Apply everything after the tracked positions; return the number of events applied."""
        with self._lock:
            return self._catch_up(stop, progress)

    def _catch_up(self, stop: int | None, progress: Callable[[int], None] | None) -> int:
        with self.engine.connect() as conn:
            if conn.execute(select(partition_tracking.c.projection)
                            .where(partition_tracking.c.projection.in_(self._names))
                            .limit(1)).first() is not None:
                raise FedByPartitions(
                    "the read models are fed by the Kafka projection consumers, partition by "
                    "partition (crm consume); they are not caught up from the store here")
        applied = 0
        self._catching_up = True
        try:
            while True:
                start = self.position() + 1
                page = self.reader(start, self.page_size)
                if stop is not None:
                    page = [(n, e) for n, e in page if n <= stop]
                if not page:
                    self._make_indexes()
                    return applied
                self.apply_page(page)
                applied += len(page)
                if progress is not None:
                    progress(len(page))
        finally:
            self._catching_up = False

    def _make_indexes(self) -> None:
        if self._deferred:
            with self.engine.begin() as conn:
                for index in self._deferred:
                    index.create(conn, checkfirst=True)
            self._deferred = []

    def apply_page(self, page: Sequence[tuple[int, Any]], partition: Partition | None = None,
                   next_offset: int | None = None) -> None:
        """Apply a page in one transaction. From a topic `partition`, positions are tracked
        for that partition (with `next_offset`, the offset after the page's last record)."""
        if self._deferred and not self._catching_up:
            self._make_indexes()  # pages from elsewhere (Kafka): no bulk load to wait for
        try:
            self._apply_together(page, partition, next_offset)
        except Exception as error:
            self.forget()  # the rows held include changes that were rolled back
            if _transient(error) or not self.parks:
                raise
            self._apply_apart(page, partition, next_offset)
        if self.after_page is not None:
            self.after_page(page)

    def _done(self, conn: Connection, names: list[str],
              partition: Partition | None) -> dict[str, int]:
        """Tracked positions (in `partition`, if given), locked until the transaction ends."""
        if partition is None:
            return positions(conn, names, lock=True)
        return {name: found[0] for name, found in
                partition_positions(conn, partition, names, lock=True).items()}

    def _apply_together(self, page: Sequence[tuple[int, Any]], partition: Partition | None,
                        next_offset: int | None) -> None:
        """The whole page, every projection, one transaction (the usual case)."""
        with self.engine.begin() as conn:
            seen = self._done(conn, self._names, partition)
            moved: dict[tuple[str, Partition | None], int] = {}
            # Projections with shared rows last: their lock is then held for the least time.
            ordered = sorted(self.projections, key=lambda p: bool(p.shared))
            for projection in ordered:
                done = seen.get(projection.name, 0)
                todo = [(p, e) for p, e in page if p > done]  # redeliveries are recognised here
                if not todo:
                    continue
                self._share(conn, projection, partition)
                self._fold(conn, projection, self._rows[projection.name], todo, done,
                           partition)
                last = todo[-1][0]
                track(conn, projection.name, last, partition, next_offset)
                moved[(projection.name, partition)] = last
        self._committed.update(moved)
        self._within_budget()

    def _share(self, conn: Connection, projection: Projection,
               partition: Partition | None) -> None:
        """Before a projection with shared rows folds a page from a partition: wait for every
        other consumer's page of it to commit (a PostgreSQL transaction lock; SQLite has one
        writer anyway), then read its rows afresh (another consumer may have changed them).
        Locks are taken in name order, so two pages never wait on each other in a cycle."""
        if partition is None or not projection.shared:
            return
        if conn.dialect.name == "postgresql":
            # Always a prefix of the names in order (a lock this transaction holds already is
            # granted again at once), so the locks are taken in one order everywhere.
            wanted = sorted(p.name for p in self.projections if p.shared)
            for name in wanted[:wanted.index(projection.name) + 1]:
                conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"),
                             {"k": "crm.projection." + name})
        self._committed.pop((projection.name, partition), None)  # read the rows afresh

    def _fold(self, conn: Connection, projection: Projection, rows: Any,
              todo: Sequence[tuple[int, Any]], done: int,
              partition: Partition | None = None) -> None:
        fold_projection: Any = projection
        # first page, or another writer
        if self._committed.get((projection.name, partition)) != done:
            rows.forget()
            if done == 0:
                rows.mark_complete(conn)
        self.loads += rows.load(conn, (n for _p, e in todo if not isinstance(e, Undecodable)
                                       for n in fold_projection.needs(e)))
        for position, event in todo:
            rows.begin_event()
            if isinstance(event, Undecodable):
                self._park(conn, projection.name, position, event, ValueError(event.error))
                continue
            try:
                fold_projection.fold(rows, event, position)
            except Exception as error:
                rows.undo_event()
                if not self.parks:
                    raise
                self._park(conn, projection.name, position, event, error)
        rows.write(conn)

    def _apply_apart(self, page: Sequence[tuple[int, Any]], partition: Partition | None,
                     next_offset: int | None) -> None:
        """Slow path after a failed page: one transaction per projection and event; the event
        that still fails is parked for that projection, and the projection goes on."""
        for projection in self.projections:
            for i, (position, event) in enumerate(page):
                # the page's offset goes with its last event (earlier ones: not known here)
                offset = next_offset if i == len(page) - 1 else None
                try:
                    self._apply_one(projection, position, event, partition, offset)
                except Exception as error:
                    self.forget()
                    if _transient(error):
                        raise
                    with self.engine.begin() as conn:
                        done = self._done(conn, [projection.name], partition).get(
                            projection.name, 0)
                        if position > done:
                            self._park(conn, projection.name, position, event, error)
                            track(conn, projection.name, position, partition, offset)

    def _apply_one(self, projection: Projection, position: int, event: Any,
                   partition: Partition | None = None, next_offset: int | None = None) -> None:
        with self.engine.begin() as conn:
            done = self._done(conn, [projection.name], partition).get(projection.name, 0)
            if position <= done:
                return
            self._share(conn, projection, partition)
            self._fold(conn, projection, self._rows[projection.name], [(position, event)], done,
                       partition)
            track(conn, projection.name, position, partition, next_offset)
        self._committed[(projection.name, partition)] = position

    def _park(self, conn: Connection, name: str, position: int, event: Any,
              error: BaseException) -> None:
        from projections.deadletters import describe, park

        log.error("projection %s could not apply the event at %s; parked: %s: %s",
                  name, describe(position, event), type(error).__name__, error)
        park(conn, name, position, event, error, 1, self.clock())
        self.parked += 1
        if self.on_park is not None:
            self.on_park(name, position, event, error)

    def _within_budget(self) -> None:
        if sum(rows.held_rows() for rows in self._rows.values()) > self.budget_rows:
            self.forget()


def _transient(error: BaseException) -> bool:
    """Database trouble says nothing about the event: raise it (the caller retries) rather
    than park the event. A deadlock (writers of several partitions upserting a shared row, such
    as a template's questions) or a serialization failure is retried too."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    text = str(error).lower()
    return isinstance(error, OperationalError) and any(
        word in text for word in ("locked", "connect", "timeout", "terminat", "server closed",
                                  "disk", "full", "deadlock", "could not serialize"))
