"""Where a benchmark runs: a temporary SQLite file, or a fresh PostgreSQL database (dropped after).

Every store gets its own generated master key (CRM_MASTER_KEY for servers started by the bench).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from infra.crypto import new_master_key
from infra.settings import Settings

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgres")


@dataclass(frozen=True)
class Store:
    backend: str
    settings: Settings
    folder: Path  # scratch space for files beside the store (naive baseline, logs)

    def env(self) -> dict[str, str]:
        """The CRM_* variables a `crm serve` subprocess needs to open this store."""
        assert self.settings.master_key is not None
        return {"CRM_DATABASE_URL": self.settings.database_url,
                "CRM_MASTER_KEY": self.settings.master_key}


@contextmanager
def fresh_store(backend: str, pg_admin: str = PG_ADMIN) -> Iterator[Store]:
    """An empty store on `backend`, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    try:
        if backend == "sqlite":
            yield Store(backend, Settings(database_url=f"sqlite:///{folder}/crm.db",
                                          master_key=new_master_key()), folder)
            return
        if backend != "postgres":
            raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")
        with fresh_pg_database(pg_admin) as url:
            yield Store(backend, Settings(database_url=url, master_key=new_master_key()), folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def fresh_pg_database(admin_url: str) -> Iterator[str]:
    name = f"crm_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
