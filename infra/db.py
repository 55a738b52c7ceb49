"""SQLAlchemy engines for the read models (and the key store), with SQLite tuned for a service."""

from __future__ import annotations

import fcntl
import json
import logging
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool


def _json_text(value: Any) -> str:
    """JSON columns' text: orjson (a fifth of a rebuild's write time went to json.dumps).
    Keys that are not strings are written as strings, as json.dumps does."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _json_value(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # integers beyond 64 bits: the standard parser takes them
        return json.loads(text)


JSON_CODEC = {"json_serializer": _json_text, "json_deserializer": _json_value}


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30},
                               **JSON_CODEC)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            # WAL: readers never block the projection writer, nor it them.
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # Deleted and overwritten rows (erased personal data, destroyed keys) are zeroed.
            cursor.execute("PRAGMA secure_delete=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5}, **JSON_CODEC)


# One PostgreSQL advisory lock key (64-bit) for "this database's schema is being set up".
SCHEMA_LOCK_KEY = 0x63726D5F736368  # "crm_sch"
# Long enough for another replica's first catch-up (a large store after a projection changed
# shape); a holder that dies frees the lock at once.
SCHEMA_LOCK_SECONDS = 1800.0
WAIT_STEP = 0.05


log = logging.getLogger(__name__)


class SchemaLockTimeout(RuntimeError):
    """Another process held the start-up schema lock for longer than the deadline."""


@contextmanager
def schema_lock(engine: Engine, *, timeout: float = SCHEMA_LOCK_SECONDS) -> Iterator[None]:
    """Serialise schema creation and migration at start across processes on one database.

    Creating tables is not safe to race: two PostgreSQL sessions running CREATE TABLE IF NOT
    EXISTS together can both pass the check, and one fails with a unique violation. Holders:
    on PostgreSQL a session advisory lock on a connection of its own (released on exit, or by
    the server when the process dies); on SQLite an exclusive lock on a file beside the
    database (released by the kernel when the process dies). Waits up to `timeout`."""
    start = time.monotonic()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            try_lock = text("SELECT pg_try_advisory_lock(:key)")
            while not conn.execute(try_lock, {"key": SCHEMA_LOCK_KEY}).scalar_one():
                _wait_or_give_up(start, timeout)
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:" or database.startswith("file:"):
        yield  # nothing another process could share
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".start-lock"), "a+b") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                _wait_or_give_up(start, timeout)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _wait_or_give_up(start: float, timeout: float) -> None:
    waited = time.monotonic() - start
    if waited // 30 != (waited + WAIT_STEP) // 30 or waited < WAIT_STEP:  # at once, every 30 s
        log.info("waiting for another process to finish setting up the database")
    if waited >= timeout:
        raise SchemaLockTimeout(f"another process has been setting up the database for more "
                                f"than {timeout:.0f} s; is one stuck?")
    time.sleep(WAIT_STEP)


def make_admin_engine(url: str) -> Engine:
    """An engine for one-off maintenance (create/drop database) outside a transaction."""
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


@contextmanager
def scratch_target(read_url: str) -> Iterator[Engine]:
    """Fresh, empty tables beside the live ones for a replay: a temporary SQLite file, or a new
    PostgreSQL schema in the same database (dropped afterwards)."""
    if read_url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="crm-replay-") as folder:
            engine = make_engine(f"sqlite:///{folder}/replay.db")

            # A throwaway copy: no durability to pay for (a crash loses only the copy). The
            # journal stays WAL (changing it needs the file to itself; readers share it).
            @event.listens_for(engine, "connect")
            def _throwaway(dbapi_connection: Any, _record: Any) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA synchronous=OFF")
                cursor.close()

            try:
                yield engine
            finally:
                engine.dispose()
        return
    schema = f"replay_{uuid.uuid4().hex[:12]}"
    base = make_engine(read_url)
    with base.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield base.execution_options(schema_translate_map={None: schema})
    finally:
        with base.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        base.dispose()
