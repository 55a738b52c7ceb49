"""Benchmark 1, ingest: commands through the application against two baselines on the same database.

Ours: the demo history (bench/history.py) written through `CrmApplication.execute` (handlers,
aggregate loads, event construction, personal-data sealing, hash chain, data keys) by the demo's
loader, batched (at most `BATCH` steps per call, grouped by actor; a step is the 1-5 commands one
person issues at once) and sequential (one step per call). The projection follower is off:
projecting is benchmark 3. The time spent generating the history's steps (commands built and
validated) is not counted, as the baseline's rows are made before its clock starts.
Baselines: raw `executemany` of rows shaped like a stored event (uuid, int, text, bytes of the
measured average stored-state size) through the store's own connection, as many rows per commit
as the batched writes averaged events (a commit is one durable flush on both sides; the same
rows at RAW_CHUNK per commit are reported in the note); and the naive use of the eventsourcing
library (a plain Application and Aggregate, one `save()` per event).
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from bench.backends import Store
from bench.figures import Bars, Row, timer
from bench.history import History
from commands.application import Actor
from demo.load import Loader, LoadStats
from demo.world import DemoStep
from infra.bootstrap import Container
from infra.eventstore import events_table, store_env

ACTOR = Actor("bench", "operator")
BATCH = 50
RAW_CHUNK = 1000
RAW_TABLE = "bench_raw_rows"


@dataclass(frozen=True)
class Written:
    events: int
    seconds: float
    commands: int = 0
    writes: int = 0

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def write_history(container: Container, history: History, batch: int,
                  advance: Callable[[int], None] | None = None) -> Written:
    """Write `history` through the command layer, at most `batch` steps per execute."""
    before = container.store_position()
    reported = 0

    def on_write(_reached: object, stats: LoadStats) -> None:
        nonlocal reported
        if advance is not None:
            advance(stats.events - reported)
        reported = stats.events

    generating = 0.0  # time spent making the steps (commands built and validated): not ours

    def steps() -> Iterator[DemoStep]:
        nonlocal generating
        source = history.steps()
        while True:
            began = time.perf_counter()
            step = next(source, None)
            generating += time.perf_counter() - began
            if step is None:
                return
            yield step

    with timer() as clock:
        stats = Loader(container.app, batch=batch, on_write=on_write).load(steps())
    return Written(container.store_position() - before, clock.seconds - generating,
                   stats.commands, stats.writes)


def average_state_size(container: Container) -> int:
    recorder: Any = container.app.recorder
    with recorder.datastore.transaction(commit=False) as cursor:
        cursor.execute(f"SELECT AVG(LENGTH(state)) AS n FROM {events_table(container.app)}")
        row = cursor.fetchone()
    value = row[0] if isinstance(row, tuple) or not hasattr(row, "keys") else row["n"]
    return int(value or 0)


def _raw_rows(count: int, size: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    topic = "domain.activity:Contact.ContactLogged"
    return [(uuid.UUID(int=rng.getrandbits(128)), n, topic, os.urandom(size))
            for n in range(count)]


def raw_insert(container: Container, rows: int, size: int, per_commit: int,
               advance: Callable[[int], None] | None = None) -> Written:
    """Rows of a stored event's shape into a plain table of the same database, through the
    store's own connection settings; `per_commit` rows per transaction (executemany)."""
    store: Any = container.app.recorder.datastore  # type: ignore[attr-defined]
    sqlite = "sqlite" in type(store).__module__
    ddl = (f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} (id TEXT, n INTEGER, topic TEXT, state BLOB)"
           if sqlite else
           f"CREATE TABLE IF NOT EXISTS {RAW_TABLE} (id uuid, n bigint, topic text, state bytea)")
    sql = f"INSERT INTO {RAW_TABLE} VALUES ({', '.join(['?' if sqlite else '%s'] * 4)})"
    with store.transaction(commit=True) as cursor:
        cursor.execute(ddl)
    data = _raw_rows(rows, size, seed=rows)
    if sqlite:
        data = [(i.hex, n, t, s) for i, n, t, s in data]
    with timer() as clock:
        for start in range(0, rows, per_commit):
            chunk = data[start:start + per_commit]
            with store.transaction(commit=True) as cursor:
                cursor.executemany(sql, chunk)
            if advance is not None:
                advance(len(chunk))
    with store.transaction(commit=True) as cursor:
        cursor.execute(f"DROP TABLE {RAW_TABLE}")
    return Written(rows, clock.seconds)


def _per_write(written: Written) -> str:
    """Commands and events per execute, as written."""
    writes = max(written.writes, 1)
    return (f"{written.commands / writes:.1f} cmds = {written.events / writes:.1f} "
            "events/execute")


class Note(Aggregate):
    """The naive baseline's aggregate: a client-like stream that records contacts."""

    def __init__(self, name: str, phones: list[str], address: str) -> None:
        self.name = name
        self.phones = phones
        self.address = address
        self.contacts = 0

    @event("ContactLogged")
    def log(self, channel: str, topic: str, summary: str) -> None:
        self.contacts += 1


class NaiveApp(Application[uuid.UUID]):
    name = "naivebench"


def naive_library(store: Store, events: int,
                  advance: Callable[[int], None] | None = None) -> Written:
    """The eventsourcing library used plainly: load, call, `save()`, once per event."""
    env = store_env(store.settings)
    env.pop("APPLICATION_RECORDER_TOPIC")
    if store.backend == "sqlite":
        env["SQLITE_DBNAME"] = str(store.folder / "naive.db")
    app = NaiveApp(env)
    rng = random.Random(events)
    ids: list[uuid.UUID] = []
    try:
        with timer() as clock:
            for n in range(events):
                if n % 5 == 0:
                    note = Note(f"Client {n:07d}", [f"+49 30 {n:07d}"], f"{n} Main Street")
                    ids.append(note.id)
                else:
                    note = app.repository.get(rng.choice(ids))
                    note.log("phone", "Invoice question",
                             "the client asked about the last invoice and the terms")
                app.save(note)
                if advance is not None:
                    advance(1)
    finally:
        app.close()
    return Written(events, clock.seconds)


def run(container: Container, store: Store, history: History, seed: int,
        bars: Bars) -> list[Row]:
    """Ingest rows for one backend; leaves the batched history in the store."""
    b = store.backend
    with bars.task(f"{b}: ingest batched (<={BATCH} steps/execute)",
                   history.expected) as advance:
        batched = write_history(container, history, BATCH, advance)
    sample = max(100, min(history.expected // 20, 2000))
    alone = History(sample, max(1, sample // 5), seed=seed + 1)
    with bars.task(f"{b}: ingest sequential (1 step/execute)", alone.expected) as advance:
        sequential = write_history(container, alone, 1, advance)
    size = average_state_size(container)
    per_write = max(1, round(batched.events / max(batched.writes, 1)))
    with bars.task(f"{b}: raw executemany ({per_write}/commit)", batched.events) as advance:
        raw = raw_insert(container, batched.events, size, per_write, advance)
    with bars.task(f"{b}: raw executemany ({RAW_CHUNK}/commit)", batched.events) as advance:
        bulk = raw_insert(container, batched.events, size, RAW_CHUNK, advance)
    with bars.task(f"{b}: raw insert (1/commit)", sequential.events) as advance:
        raw_one = raw_insert(container, sequential.events, size, 1, advance)
    with bars.task(f"{b}: naive eventsourcing (1 save/event)", sequential.events) as advance:
        naive = naive_library(store, sequential.events, advance)
    shape = f"rows: uuid,int,text,{size} B (avg stored state)"
    return [
        Row("ingest batched vs raw executemany", b, batched.rate, raw.rate, "events/s",
            f"demo history, {batched.events} events, {history.clients} clients x "
            f"{history.months} mo; {_per_write(batched)} vs {per_write} rows/commit "
            f"(the same per commit; at {RAW_CHUNK} rows/commit raw makes {bulk.rate:,.0f}/s "
            f"= {batched.rate / bulk.rate if bulk.rate else 0:.3f}); {shape}"),
        Row("ingest batched vs naive library", b, batched.rate, naive.rate, "events/s",
            f"naive: plain Application+Aggregate, get+save per event, {naive.events} events"),
        Row("ingest sequential vs raw insert", b, sequential.rate, raw_one.rate, "events/s",
            f"{sequential.events} events, 1 step/execute ({_per_write(sequential)}) "
            "vs 1 row/commit"),
        Row("ingest sequential vs naive library", b, sequential.rate, naive.rate, "events/s",
            "one step per execute vs one save() per event"),
    ]
