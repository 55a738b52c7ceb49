"""Chained recorders: each event's hashes are written in the same transaction as the event.

Plugged into eventsourcing with APPLICATION_RECORDER_TOPIC. On PostgreSQL the library's insert
holds an exclusive lock on the events table, and on SQLite there is one writer, so "the previous
event" is well defined at write time and the global chain follows position order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import (
    InterfaceError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from commands.base import StaleReadError
from domain.chain import GENESIS, Record, Verdict, Verifier, chain_hash, stream_hash

HASHES = "crm_event_hashes"
PAGE = 2000
PROGRESS_STEP = 500


def _wanted_previous(stored: Sequence[StoredEvent]) -> list[tuple[UUID, int]]:
    """(stream, version) of the stored hash each stream of a write links to: the version before
    its first event in the write (none for a new stream)."""
    firsts: dict[UUID, int] = {}
    for event in stored:
        stream_id = _stream(event)
        if stream_id not in firsts:
            firsts[stream_id] = event.originator_version
    return [(s, v - 1) for s, v in firsts.items() if v > 1]


def _hashes_for(stored: Sequence[StoredEvent], ids: Sequence[int], last_chain: bytes,
                previous: dict[tuple[UUID, int], bytes]) -> list[tuple[int, UUID, int, bytes,
                                                                    bytes]]:
    rows = []
    chain = last_chain
    streams: dict[UUID, bytes] = {}
    for event, position in zip(stored, ids, strict=True):
        stream_id = _stream(event)
        prev = streams.get(stream_id)
        if prev is None:
            prev = GENESIS if event.originator_version == 1 else \
                previous.get((stream_id, event.originator_version - 1), GENESIS)
        s_hash = stream_hash(prev, stream_id, event.originator_version, event.topic, event.state)
        chain = chain_hash(chain, position, s_hash)
        streams[stream_id] = s_hash
        rows.append((position, stream_id, event.originator_version, s_hash, chain))
    return rows


def _stream(event: StoredEvent) -> UUID:
    i = event.originator_id
    return i if isinstance(i, UUID) else UUID(str(i))


# Row-value look-ups per statement (SQLite allows 32766 parameters; older builds 999).
_CHUNK = 400


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    checks_cached_reads = True  # see commands.base.AggregateCache

    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                f"CREATE TABLE IF NOT EXISTS {HASHES} (position INTEGER PRIMARY KEY, "
                "stream_id TEXT NOT NULL, version INTEGER NOT NULL, stream_hash BLOB NOT NULL, "
                "chain_hash BLOB NOT NULL)",
                f"CREATE UNIQUE INDEX IF NOT EXISTS {HASHES}_stream ON {HASHES} "
                "(stream_id, version)"]

    def _insert_events(self, c: Any, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        ids = super()._insert_events(c, stored_events, **kwargs)
        if not stored_events or ids is None:
            return ids
        # The inserts took SQLite's single write lock: nobody else commits until we do.
        reads: dict[UUID, int] = kwargs.get("crm_cached_reads") or {}
        if reads:
            self._check_reads(c, reads)
        c.execute(f"SELECT chain_hash FROM {HASHES} ORDER BY position DESC LIMIT 1")
        row = c.fetchone()
        previous = self._previous(c, _wanted_previous(stored_events))
        rows = _hashes_for(stored_events, ids, bytes(row[0]) if row else GENESIS, previous)
        c.executemany(f"INSERT INTO {HASHES} VALUES (?,?,?,?,?)",
                      [(p, s.hex, v, sh, ch) for p, s, v, sh, ch in rows])
        return ids

    def _check_reads(self, c: Any, reads: dict[UUID, int]) -> None:
        items = list(reads.items())
        for start in range(0, len(items), _CHUNK):
            chunk = items[start:start + _CHUNK]
            c.execute(f"SELECT DISTINCT originator_id FROM {self.events_table_name} WHERE "
                      + " OR ".join(["(originator_id=? AND originator_version>?)"] * len(chunk)),
                      [x for i, v in chunk for x in (i.hex, v)])
            moved = [UUID(r[0]) for r in c.fetchall()]
            if moved:
                raise StaleReadError(moved)

    @staticmethod
    def _previous(c: Any, wanted: list[tuple[UUID, int]]) -> dict[tuple[UUID, int], bytes]:
        found: dict[tuple[UUID, int], bytes] = {}
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start:start + _CHUNK]
            c.execute(f"SELECT stream_id, version, stream_hash FROM {HASHES} WHERE "
                      + " OR ".join(["(stream_id=? AND version=?)"] * len(chunk)),
                      [x for s, v in chunk for x in (s.hex, v)])
            found.update({(UUID(r[0]), int(r[1])): bytes(r[2]) for r in c.fetchall()})
        return found


class ChainedPostgresRecorder(PostgresApplicationRecorder):
    checks_cached_reads = True  # see commands.base.AggregateCache

    def __init__(self, datastore: Any, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self._hashes = SQL("{}.{}").format(Identifier(self.datastore.schema),
                                           Identifier(HASHES))
        self.sql_create_statements.append(SQL(
            "CREATE TABLE IF NOT EXISTS {} (position bigint PRIMARY KEY, stream_id uuid NOT NULL, "
            "version bigint NOT NULL, stream_hash bytea NOT NULL, chain_hash bytea NOT NULL, "
            "UNIQUE (stream_id, version))").format(self._hashes))
        self._sql_last = SQL("SELECT chain_hash FROM {} ORDER BY position DESC LIMIT 1").format(
            self._hashes)
        self._sql_previous = SQL(
            "SELECT h.stream_id, h.version, h.stream_hash FROM {} h "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS w(s, v) "
            "ON h.stream_id = w.s AND h.version = w.v").format(self._hashes)
        # Columns as binary arrays: psycopg dumps the library's array of composite values as
        # escaped text in Python, which cost more than everything else in an insert.
        self._sql_insert = SQL(
            "INSERT INTO {} SELECT * FROM unnest(%b::bigint[], %b::uuid[], %b::bigint[], "
            "%b::bytea[], %b::bytea[])").format(self._hashes)
        self._sql_insert_events = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[]) "
            "RETURNING notification_id").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name))
        self._sql_moved = SQL(
            "SELECT DISTINCT e.originator_id FROM {}.{} e "
            "JOIN unnest(%s::uuid[], %s::bigint[]) AS r(i, v) "
            "ON e.originator_id = r.i AND e.originator_version > r.v").format(
            Identifier(self.datastore.schema), Identifier(self.events_table_name))

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        """One transaction: the stale-read check, the events and their hashes, or nothing.

        The library's own version catches every exception raised after its insert and lets
        its transaction commit before re-raising (harmless for database errors, which abort
        the transaction anyway); a failure in our hashing step would then commit events
        without hashes. Here any exception leaves the transaction and rolls it back.

        Pipelined (issue 14.6): the table lock, the stale-read check, the insert, the last chain
        hash and the streams' previous hashes go in one round trip, the hashes and the commit
        in a second (it was one round trip per statement, about ten per write)."""
        if not stored_events:
            return None
        reads: dict[UUID, int] = kwargs.get("crm_cached_reads") or {}
        wanted = _wanted_previous(stored_events)
        with self.datastore.get_connection() as conn, conn.pipeline() as pipeline, \
                conn.transaction(), conn.cursor() as curs, conn.cursor() as moved_c, \
                conn.cursor() as ids_c, conn.cursor() as last_c, conn.cursor() as prev_c:
            # The insert's exclusive table lock first: no writer commits in between, so the
            # stale-read check and the last chain hash hold until our commit.
            self._lock_table(curs)
            if reads:
                moved_c.execute(self._sql_moved, (list(reads), list(reads.values())))
            self._notify_channel(curs)
            ids_c.execute(self._sql_insert_events, (
                [e.originator_id for e in stored_events],
                [e.originator_version for e in stored_events],
                [e.topic for e in stored_events],
                [e.state for e in stored_events]))
            last_c.execute(self._sql_last)
            if wanted:
                prev_c.execute(self._sql_previous,
                               ([s for s, _v in wanted], [v for _s, v in wanted]))
            # One round trip; a uniqueness violation raises its IntegrityError here.
            pipeline.sync()
            if reads:
                moved = [r["originator_id"] for r in moved_c.fetchall()]
                if moved:
                    raise StaleReadError(moved)
            ids = [r["notification_id"] for r in ids_c.fetchall()]
            if len(ids) != len(stored_events):
                raise ProgrammingError(f"Couldn't get all notification IDs (got {len(ids)}, "
                                       f"expected {len(stored_events)})")
            row = last_c.fetchone()
            previous: dict[tuple[UUID, int], bytes] = {}
            if wanted:
                previous = {(r["stream_id"], int(r["version"])): bytes(r["stream_hash"])
                            for r in prev_c.fetchall()}
            rows = _hashes_for(stored_events, ids,
                               bytes(row["chain_hash"]) if row else GENESIS, previous)
            curs.execute(self._sql_insert, [list(column) for column in zip(*rows, strict=True)])
            return ids


def recorder_topic(sqlite: bool) -> str:
    cls = ChainedSQLiteRecorder if sqlite else ChainedPostgresRecorder
    return f"{cls.__module__}:{cls.__qualname__}"


def _sqlite_records(recorder: Any, start: int) -> Iterator[Record]:
    table = recorder.events_table_name
    while True:
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT e.rowid, e.originator_id, e.originator_version, e.topic, e.state, "
                      f"h.stream_hash, h.chain_hash FROM {table} e LEFT JOIN {HASHES} h "
                      f"ON h.position = e.rowid WHERE e.rowid >= ? ORDER BY e.rowid LIMIT ?",
                      (start, PAGE))
            rows = c.fetchall()
        for r in rows:
            yield Record(r[0], UUID(r[1]), r[2], r[3], bytes(r[4]),
                         None if r[5] is None else bytes(r[5]),
                         None if r[6] is None else bytes(r[6]))
        if len(rows) < PAGE:
            return
        start = rows[-1][0] + 1


def _pg_records(recorder: Any, start: int) -> Iterator[Record]:
    table = SQL("{}.{}").format(Identifier(recorder.datastore.schema),
                                Identifier(recorder.events_table_name))
    hashes = SQL("{}.{}").format(Identifier(recorder.datastore.schema), Identifier(HASHES))
    while True:
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(SQL("SELECT e.notification_id, e.originator_id, e.originator_version, "
                          "e.topic, e.state, h.stream_hash, h.chain_hash FROM {} e LEFT JOIN {} h "
                          "ON h.position = e.notification_id WHERE e.notification_id >= %s "
                          "ORDER BY e.notification_id LIMIT %s").format(table, hashes),
                      (start, PAGE))
            rows = c.fetchall()
        for r in rows:
            yield Record(r["notification_id"], r["originator_id"], r["originator_version"],
                         r["topic"], bytes(r["state"]),
                         None if r["stream_hash"] is None else bytes(r["stream_hash"]),
                         None if r["chain_hash"] is None else bytes(r["chain_hash"]))
        if len(rows) < PAGE:
            return
        start = rows[-1]["notification_id"] + 1


def stored_records(app: Any, start: int = 1) -> Iterator[Record]:
    """Every stored event with its hashes, in position order, straight from the tables."""
    recorder = app.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        return _sqlite_records(recorder, start)
    return _pg_records(recorder, start)


def orphan_hashes(app: Any) -> list[int]:
    """Positions that have a hash row but no event: events deleted from the store."""
    recorder = app.recorder
    if isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position FROM {HASHES} WHERE position NOT IN "
                      f"(SELECT rowid FROM {recorder.events_table_name}) ORDER BY position "
                      "LIMIT 10")
            return [r[0] for r in c.fetchall()]
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(SQL("SELECT h.position FROM {}.{} h LEFT JOIN {}.{} e ON "
                      "e.notification_id = h.position WHERE e.notification_id IS NULL "
                      "ORDER BY h.position LIMIT 10").format(
            Identifier(recorder.datastore.schema), Identifier(HASHES),
            Identifier(recorder.datastore.schema), Identifier(recorder.events_table_name)))
        return [r["position"] for r in c.fetchall()]


def verify_store(app: Any, progress: Callable[[int], None] | None = None) -> Verdict:
    """Walk the whole store; name the first altered, removed, inserted or reordered event."""
    orphans = orphan_hashes(app)
    verifier = Verifier()
    pending = 0  # progress is reported every PROGRESS_STEP events (a call per event costs time)
    for record in stored_records(app):
        if orphans and record.position > orphans[0]:
            break
        if verifier.feed(record) is not None:
            break
        pending += 1
        if progress is not None and pending >= PROGRESS_STEP:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    verdict = verifier.finish()
    if orphans and (verdict.ok or (verdict.position or 0) > orphans[0]):
        return Verdict(False, verifier.count, "removed", orphans[0],
                       f"position {orphans[0]}: the event was deleted (its hash remains)")
    return verdict


def chain_hashes(app: Any, positions: Sequence[int]) -> dict[int, str]:
    """position -> global chain hash (hex), for the `hash` extension the relay publishes."""
    if not positions:
        return {}
    recorder = app.recorder
    wanted = sorted(set(positions))
    found: dict[int, str] = {}
    for start in range(0, len(wanted), 500):
        chunk = wanted[start:start + 500]
        marks = ",".join("?" * len(chunk))
        if isinstance(recorder, SQLiteApplicationRecorder):
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(f"SELECT position, chain_hash FROM {HASHES} "
                          f"WHERE position IN ({marks})", chunk)
                found.update({int(p): bytes(h).hex() for p, h in c.fetchall()})
        else:
            with recorder.datastore.transaction(commit=False) as c:
                c.execute(SQL("SELECT position, chain_hash FROM {}.{} WHERE position = ANY(%s)")
                          .format(Identifier(recorder.datastore.schema), Identifier(HASHES)),
                          (chunk,))
                found.update({int(r["position"]): bytes(r["chain_hash"]).hex()
                              for r in c.fetchall()})
    return found


def hashes_before(app: Any, position: int, streams: dict[UUID, int]) -> tuple[bytes,
                                                                            dict[UUID, bytes]]:
    """The chain hash just before `position`, and each stream's hash just before the given
    version: what a page of an export starting mid-history links to."""
    recorder = app.recorder
    sqlite = isinstance(recorder, SQLiteApplicationRecorder)
    mark = "?" if sqlite else "%s"
    table = HASHES if sqlite else f'"{recorder.datastore.schema}"."{HASHES}"'
    out: dict[UUID, bytes] = {}
    with recorder.datastore.transaction(commit=False) as c:
        c.execute(f"SELECT chain_hash FROM {table} WHERE position < {mark} "
                  "ORDER BY position DESC LIMIT 1", (position,))
        row = c.fetchone()
        chain = GENESIS if row is None else bytes(row[0] if sqlite else row["chain_hash"])
        for stream, version in streams.items():
            if version <= 1:
                continue
            c.execute(f"SELECT stream_hash FROM {table} WHERE stream_id = {mark} "
                      f"AND version = {mark}", (stream.hex if sqlite else stream, version - 1))
            found = c.fetchone()
            if found is not None:
                out[stream] = bytes(found[0] if sqlite else found["stream_hash"])
    return chain, out
