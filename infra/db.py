"""SQLAlchemy engines for the read models (and the key store), with SQLite tuned for a service."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
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
            cursor.close()

        return engine
    return create_engine(url, pool_size=5, max_overflow=10, pool_pre_ping=True,
                         connect_args={"connect_timeout": 5})


def make_admin_engine(url: str) -> Engine:
    """An engine for one-off maintenance (create/drop database) outside a transaction."""
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
