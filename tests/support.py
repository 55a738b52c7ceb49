"""Test support: an API client with a key per role, and a PostgreSQL database per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import psycopg
from fastapi.testclient import TestClient

from api.app import create_app
from domain.values import Role
from infra.bootstrap import Container

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
TEST_MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # 32 bytes, tests only


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new empty database on the local server, dropped afterwards; yields its URL."""
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


class Api:
    """A TestClient speaking as a role: `api.post(path, json, as_="admin")`."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.client = TestClient(create_app(container=container), raise_server_exceptions=False)
        now = datetime.now(UTC)
        self.keys = {role: container.keys.create(f"{role}-user", role, now) for role in Role}

    def headers(self, as_: str | None, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = dict(extra or {})
        if as_ is not None:
            headers["Authorization"] = f"Bearer {self.keys[Role(as_)]}"
        return headers

    def request(self, method: str, path: str, *, as_: str | None = "operator",
                headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
        return self.client.request(method, path, headers=self.headers(as_, headers), **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def ok(self, method: str, path: str, json: Any = None, **kwargs: Any) -> dict[str, Any]:
        """A write or read that must succeed; returns its JSON."""
        response = self.request(method, path, json=json, **kwargs)
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return response.json()  # type: ignore[no-any-return]

    def store_position(self) -> int:
        return self.container.store_position()


def store_count(container: Container) -> int:
    """Number of events in the store (idempotency records included)."""
    return len(container.app.recorder.select_notifications(start=1, limit=1_000_000))
