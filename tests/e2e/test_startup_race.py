"""Start-up is safe in any number: replicas started together on one empty database all serve.

Schema creation is serialised by infra.db.schema_lock (a PostgreSQL advisory lock, or a file
lock beside a SQLite database); without it one of the processes died with a unique violation
while the others created the same tables.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from infra.db import SchemaLockTimeout, make_engine, schema_lock
from tests.e2e.server import Server, wait_until
from tests.support import TEST_MASTER_KEY, fresh_pg_database


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[Server]]:
    with fresh_pg_database() as url:
        started = [Server(url, tmp_path / f"serve-{i}.log", TEST_MASTER_KEY) for i in range(3)]
        try:
            yield started
        finally:
            for server in started:
                server.stop()


def _ready(server: Server) -> bool:
    try:
        with server.client() as client:
            return client.get("/readyz").status_code == 200
    except httpx.HTTPError:
        return False


def test_three_servers_started_together_on_an_empty_database_all_serve(
        servers: list[Server]) -> None:
    # Each start() launches `crm serve` and waits (with a deadline) for its /healthz; run
    # together, the three processes set up the same empty database at the same moment.
    with ThreadPoolExecutor(max_workers=len(servers)) as pool:
        for started in [pool.submit(server.start) for server in servers]:
            started.result()
    for server in servers:
        assert server.process is not None and server.process.poll() is None, \
            server.log.read_text()[-2000:]
        assert httpx.get(server.url + "/healthz", timeout=5).status_code == 200
        wait_until(lambda s=server: _ready(s), 30, f"{server.url}/readyz")
        assert "UniqueViolation" not in server.log.read_text()
    # The bootstrap admin key was made once, and every replica accepts it.
    with servers[0].client() as first:
        created = first.post("/v1/clients", json={"kind": "customer", "form": "person",
                                                  "name": "Ann Lee"})
        assert created.status_code == 201, created.text
    # Each replica's follower polls the store: the write shows on each within a deadline.
    path = f"/v1/clients/{created.json()['id']}/events"
    for server in servers:
        with server.client() as client:
            wait_until(lambda c=client: c.get(path).status_code == 200, 30,
                       f"the new client on {server.url}")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_schema_lock_admits_one_holder_at_a_time(backend: str, tmp_path: Path) -> None:
    def check(url: str) -> None:
        engine = make_engine(url)
        held, release = threading.Event(), threading.Event()

        def holder() -> None:
            with schema_lock(engine):
                held.set()
                release.wait(10)

        thread = threading.Thread(target=holder)
        thread.start()
        try:
            assert held.wait(10)
            with pytest.raises(SchemaLockTimeout), schema_lock(engine, timeout=0.3):
                pass
        finally:
            release.set()
            thread.join(10)
        with schema_lock(engine, timeout=5):
            pass  # free again once the holder left
        engine.dispose()

    if backend == "sqlite":
        check(f"sqlite:///{tmp_path}/crm.db")
    else:
        with fresh_pg_database() as url:
            check(url.replace("postgresql://", "postgresql+psycopg://"))
