"""Erasure leaves nothing personal (issue 15.4): a work order's asset (a licence plate) and its
services are sealed with the client's key and read "[erased]" after erasure, old rows written in
clear included; and the card read right after an erasure, by the key that erased, says so."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from infra.bootstrap import Container
from tests.support import Api

PLATE, SERVICE = "B-XY-9090", "repaint the scratched left door"
WHEN = "2026-10-01T09:00:00+00:00"


def _client(api: Api, name: str) -> str:
    return str(api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                              "name": name})["id"])


def _all_stored(container: Container) -> bytes:
    return b"".join(bytes(n.state) for n in container.app.recorder.select_notifications(
        start=1, limit=1_000_000))


def _plain_v1_order(client: str) -> StoredEvent:
    """A work order as stored before v2: asset and services in clear."""
    return StoredEvent(uuid.uuid4(), 1, "domain.service:WorkOrder.WorkOrderOpened", orjson.dumps({
        "timestamp": {"_type_": "datetime_iso", "_data_": WHEN},
        "originator_topic": "domain.service:WorkOrder",
        "client_id": {"_type_": "uuid_hex", "_data_": uuid.UUID(client).hex},
        "occurred_at": {"_type_": "datetime_iso", "_data_": WHEN},
        "actor": "desk", "actor_role": "operator", "asset": "OLD-PLATE-1",
        "services": ["brakes"], "stages": ["repair"], "mechanic": "Max"}))


def _register(api: Api, client: str) -> list[dict[str, Any]]:
    api.container.follower.wait_for(api.store_position(), 10)
    return [i for i in api.ok("GET", "/v1/work-orders")["items"] if i["client_id"] == client]


def _opened(api: Api, client: str) -> list[dict[str, Any]]:
    return [e["data"] for e in api.ok("GET", f"/v1/clients/{client}/events")["items"]
            if e["type"] == "WorkOrderOpened"]


def test_asset_and_services_are_sealed_and_read_erased_after_erasure(api: Api) -> None:
    client = _client(api, "Pia Plate")
    api.ok("POST", "/v1/work-orders", {"client_id": client, "asset": PLATE,
                                       "services": [SERVICE], "stages": ["repair"],
                                       "mechanic": "Max", "occurred_at": WHEN})
    stored = _all_stored(api.container)
    assert PLATE.encode() not in stored and SERVICE.encode() not in stored
    assert [i["asset"] for i in _register(api, client)] == [PLATE]
    assert [(d["asset"], d["services"]) for d in _opened(api, client)] == [(PLATE, [SERVICE])]

    api.ok("POST", f"/v1/clients/{client}/erase", {"reason": "GDPR request"}, as_="admin")
    assert [i["asset"] for i in _register(api, client)] == ["[erased]"]
    assert [(d["asset"], d["services"], d["mechanic"]) for d in _opened(api, client)] == [
        ("[erased]", [], "Max")]


def test_an_asset_stored_in_clear_still_reads_and_is_hidden_after_erasure(api: Api) -> None:
    client = _client(api, "Otto Old")
    api.container.app.recorder.insert_events([_plain_v1_order(client)])
    assert [i["asset"] for i in _register(api, client)] == ["OLD-PLATE-1"]
    assert [d["asset"] for d in _opened(api, client)] == ["OLD-PLATE-1"]

    api.ok("POST", f"/v1/clients/{client}/erase", {"reason": "GDPR request"}, as_="admin")
    assert [i["asset"] for i in _register(api, client)] == ["[erased]"]
    assert [(d["asset"], d["services"]) for d in _opened(api, client)] == [("[erased]", [])]


def test_the_card_read_right_after_an_erasure_shows_it(api: Api,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    client = _client(api, "Quinn Quick")
    api.container.follower.wait_for(api.store_position(), 10)
    runner = api.container.runner
    catch_up = runner.catch_up

    def slow_catch_up(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # a follower a little behind, as under load
        return catch_up(*args, **kwargs)

    monkeypatch.setattr(runner, "catch_up", slow_catch_up)
    api.ok("POST", f"/v1/clients/{client}/erase", {"reason": "GDPR request"}, as_="admin")
    card = api.ok("GET", f"/v1/clients/{client}/card", as_="admin")
    assert card["erased"] is True
    assert card["profile"]["name"] == "[erased]"
