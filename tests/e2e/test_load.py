"""A bounded load test on loopback: mixed writes and reads from concurrent clients for a fixed
time against a real `crm serve`. Zero errors, and every acknowledged write is in the store and
in the read models."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from infra.bootstrap import build
from infra.settings import Settings
from projections.card import client_cards
from tests.e2e.server import Server, wait_until
from tests.support import TEST_MASTER_KEY

pytestmark = pytest.mark.slow
CLIENTS, SECONDS = 6, 8.0


def test_mixed_load_has_no_errors_and_loses_no_write(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crm.db"
    server = Server(url, tmp_path / "serve.log", TEST_MASTER_KEY)
    server.env["CRM_RATE_LIMIT_PER_MINUTE"] = "0"
    server.start()
    acked: list[str] = []
    errors: list[str] = []
    requests = [0]
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS

    def user(n: int) -> None:
        with server.client() as http:
            mine: list[str] = []
            while time.monotonic() < deadline:
                if not mine or n % 2 == 0 or len(mine) % 3 == 0:
                    r = http.post("/v1/clients", json={"kind": "customer", "form": "person",
                                                       "name": f"load {n}"})
                    if r.status_code == 201:
                        mine.append(r.json()["id"])
                else:
                    r = http.post(f"/v1/clients/{mine[-1]}/contacts", json={
                        "channel": "phone", "direction": "inbound", "topic": "load"})
                    if r.status_code == 201:
                        read = http.get(f"/v1/clients/{mine[-1]}/card",
                                        params={"min_position": r.json()["position"]})
                        if read.status_code != 200:
                            r = read
                with lock:
                    requests[0] += 1
                    if r.status_code not in (200, 201):
                        errors.append(f"{r.request.method} {r.request.url}: {r.status_code}")
            with lock:
                acked.extend(mine)

    threads = [threading.Thread(target=user, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 60)
    server.stop()
    print(f"load: {requests[0]} requests from {CLIENTS} clients in {SECONDS}s, "
          f"{len(acked)} registrations acknowledged, {len(errors)} errors")
    assert errors == []
    assert requests[0] > 50 and len(acked) > 10
    container = build(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        wait_until(lambda: container.runner.position() >= container.store_position(), 30,
                   "read models caught up")
        registered = {str(e.originator_id) for n in container.app.recorder.select_notifications(
            1, 1_000_000) if (e := container.app.mapper.to_domain_event(n)).__class__.__name__
            == "ClientRegistered"}
        assert set(acked) <= registered
        with container.engine.connect() as conn:
            carded = {str(r.client_id) for r in conn.execute(client_cards.select())}
        assert set(acked) <= carded
    finally:
        container.close()
