"""The event store: eventsourcing's SQLite or PostgreSQL recorder, chosen by CRM_DATABASE_URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.sqlite import SQLiteApplicationRecorder

from infra.chain import recorder_topic
from infra.settings import Settings

APP_NAME = "crm"


def store_env(settings: Settings) -> dict[str, str]:
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10", "APPLICATION_RECORDER_TOPIC": recorder_topic(True)}
    url = urlparse(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        # The default waits forever for the table lock; a stuck writer should fail visibly.
        "POSTGRES_LOCK_TIMEOUT": "5",
        # Also the wait for a pooled connection; the library retries 10 times, so an outage
        # turns into a 503 after ~20 s instead of ~50 s.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_PRE_PING": "y",
        # Off: with concurrent writers a tailing reader was seen to miss events (STYLE.md).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": recorder_topic(False),
    }


def read_model_url(settings: Settings) -> str:
    """SQLAlchemy URL of the read models: a file beside the event store, or the same database.

    On SQLite the read models live in their own file so projection writes never contend with
    event appends for the single SQLite writer lock."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        return f"sqlite:///{path.with_name(path.stem + '.read' + (path.suffix or '.db'))}"
    return "postgresql+psycopg://" + settings.database_url.split("://", 1)[1]


def events_table(app: Application[Any]) -> str:
    return getattr(app.recorder, "events_table_name", "stored_events")


def position_lookup(app: Application[Any]) -> Callable[[UUID, int], int | None]:
    """(stream id, version) -> global position, for answering idempotent retries."""
    recorder: Any = app.recorder
    table = events_table(app)
    # isinstance, not the class's module name: the store's recorder is a subclass (infra.chain).
    if isinstance(recorder, SQLiteApplicationRecorder):
        sql = f"SELECT rowid FROM {table} WHERE originator_id=? AND originator_version=?"

        def lookup(stream: UUID, version: int) -> int | None:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, (stream.hex, version))
                row = cursor.fetchone()
                return int(row[0]) if row else None
    else:
        sql = (f"SELECT notification_id FROM {table} "
               "WHERE originator_id=%s AND originator_version=%s")

        def lookup(stream: UUID, version: int) -> int | None:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, (stream, version))
                row = cursor.fetchone()
                return int(row["notification_id"]) if row else None
    return lookup


def sqlite_file(settings: Settings) -> Path | None:
    return settings.sqlite_path if settings.is_sqlite else None


def notification_reader(app: Application[Any]) -> Callable[[int, int], list[tuple[int, Any]]]:
    """(start, limit) -> [(position, domain event)] from the store's notification log, with
    personal fields left sealed as stored: what projections, the bus and exports read (§8)."""
    sealed = getattr(app.mapper, "sealed", None)
    mapper = sealed() if sealed is not None else app.mapper

    def read(start: int, limit: int) -> list[tuple[int, Any]]:
        return [(n.id, mapper.to_domain_event(n))
                for n in app.recorder.select_notifications(start=start, limit=limit)]

    return read


def max_position(app: Application[Any]) -> int:
    return int(app.recorder.max_notification_id() or 0)
