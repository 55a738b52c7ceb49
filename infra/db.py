"""SQLAlchemy engines for the read models (and the key store), with SQLite tuned for a service."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import NullPool


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

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
                         connect_args={"connect_timeout": 5})


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
