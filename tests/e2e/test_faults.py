"""Faults: the server killed during writes, the database cut under the running service."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from infra.bootstrap import build
from infra.chain import verify_store
from infra.settings import Settings
from tests.e2e.server import Proxy, Server, wait_until
from tests.support import TEST_MASTER_KEY, fresh_pg_database

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/crm.db"
    else:
        with fresh_pg_database() as url:
            yield url


def _writer(server: Server, acked: list[tuple[str, str]], stop: threading.Event) -> None:
    """Register clients and a complaint for each; remember what the server acknowledged."""
    with server.client() as http:
        while not stop.is_set():
            try:
                client = http.post("/v1/clients", json={
                    "kind": "customer", "form": "person", "name": f"n-{uuid.uuid4().hex[:8]}"})
                if client.status_code != 201:
                    continue
                complaint = http.post("/v1/complaints", json={"client_id": client.json()["id"],
                                                             "text": "slow service"})
                if complaint.status_code == 201:
                    acked.append((client.json()["id"], complaint.json()["links"]["situation_id"]))
            except httpx.HTTPError:
                return  # the server died under us


def test_killing_the_server_during_writes_loses_no_acknowledged_write(
        database_url: str, tmp_path: Path) -> None:
    server = Server(database_url, tmp_path / "serve.log", TEST_MASTER_KEY)
    server.start()
    acked: list[tuple[str, str]] = []
    stop = threading.Event()
    writers = [threading.Thread(target=_writer, args=(server, acked, stop)) for _ in range(4)]
    for w in writers:
        w.start()
    try:
        wait_until(lambda: len(acked) >= 40, 60, "40 acknowledged writes")
        server.kill()  # SIGKILL in the middle of the writers' traffic
    finally:
        stop.set()
        for w in writers:
            w.join(timeout=15)
    container = build(Settings(database_url=database_url, master_key=TEST_MASTER_KEY))
    try:
        stored = {}
        for n in container.app.recorder.select_notifications(1, 1_000_000):
            event = container.app.mapper.to_domain_event(n)
            stored.setdefault(type(event).__name__, set()).add(str(event.originator_id))
        for client_id, situation_id in acked:
            assert client_id in stored["ClientRegistered"]
            assert situation_id in stored["SituationOpened"]
        # Nothing half-written: every complaint came with its situation, in one transaction.
        assert len(stored.get("ComplaintRegistered", ())) == len(stored["SituationOpened"])
        assert verify_store(container.app).ok
    finally:
        container.close()
    server.start()  # and the service comes back on the same store
    with server.client() as http:
        first = acked[0][0]
        assert http.get(f"/v1/clients/{first}/events").status_code == 200
    server.stop()


def test_postgres_cut_under_the_running_service_reports_not_ready_then_recovers(
        tmp_path: Path) -> None:
    with fresh_pg_database() as direct_url:
        proxy = Proxy(5432)
        proxy.restore()
        url = direct_url.replace("127.0.0.1:5432", f"127.0.0.1:{proxy.port}")
        server = Server(url, tmp_path / "serve.log", TEST_MASTER_KEY)
        server.start()
        try:
            with server.client() as http:
                assert http.get("/readyz").status_code == 200
                proxy.cut()
                wait_until(lambda: http.get("/readyz").status_code == 503, 30, "not ready")
                refused = http.post("/v1/clients", timeout=120, json={
                    "kind": "customer", "form": "person", "name": "Down"})
                assert refused.status_code == 503
                assert refused.headers["content-type"].startswith("application/problem+json")
                proxy.restore()
                wait_until(lambda: http.get("/readyz").status_code == 200, 60, "ready again")
                again = http.post("/v1/clients", json={"kind": "customer", "form": "person",
                                                       "name": "Up"})
                assert again.status_code == 201, again.text
        finally:
            server.stop()
            proxy.cut()
