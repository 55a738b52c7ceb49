"""Read consistency (§4, issue 21): a client's events come from the store, complete up to the
request whatever the read models' lag; every other read reflects every write acknowledged to the
same API key before it (bounded wait, then 503 with Retry-After), unless
`?consistency=eventual`; the same with the read models fed through Kafka (`crm consume`)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from domain.values import Role
from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.integration.bus_support import (
    Worker,
    projector_for,
    relay_for,
    unique_topics,
    workers,
)
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

PERSON = {"kind": "customer", "form": "person", "name": "Ann Lee"}


@pytest.fixture
def still(any_settings: Settings) -> Iterator[Api]:
    """An API whose read models stand still: no follower runs (a stuck projection, a full
    disk); reads wait 0.3 s at most."""
    built = build(any_settings.model_copy(update={"read_wait_seconds": 0.3}),
                  start_follower=False)
    try:
        yield Api(built)
    finally:
        built.close()


def test_a_clients_events_are_complete_while_the_read_models_stand_still(still: Api) -> None:
    client = still.ok("POST", "/v1/clients", PERSON)
    cid = client["id"]
    written = [client["position"]] + [
        still.ok("POST", f"/v1/clients/{cid}/contacts", {
            "channel": "phone", "direction": "inbound", "topic": f"call {n}"})["position"]
        for n in range(5)]
    page = still.ok("GET", f"/v1/clients/{cid}/events")
    assert [e["position"] for e in page["items"]] == written
    assert page["items"][1]["data"]["topic"] == "call 0"  # opened, as from the index

    # The session read waits for the key's own writes, then says when to retry.
    card = still.get(f"/v1/clients/{cid}/card")
    assert card.status_code == 503 and card.headers["retry-after"] == "1"
    assert card.headers["content-type"] == "application/problem+json"
    # Eventual reads answer from the read models as they are: nothing applied yet.
    assert still.get(f"/v1/clients/{cid}/card",
                     params={"consistency": "eventual"}).status_code == 404
    # Another key has written nothing: its session read does not wait.
    assert still.get(f"/v1/clients/{cid}/card", as_="manager").status_code == 404

    # Half indexed, half only in the store: pages join the two without a gap or a repeat.
    still.container.runner.catch_up(stop=written[2])
    more = [still.ok("POST", f"/v1/clients/{cid}/contacts", {
        "channel": "email", "direction": "outbound", "topic": f"mail {n}"})["position"]
        for n in range(3)]
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        answer = still.ok("GET", f"/v1/clients/{cid}/events", params=params)
        seen += [e["position"] for e in answer["items"]]
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == written + more

    still.container.runner.catch_up()
    card = still.ok("GET", f"/v1/clients/{cid}/card")
    assert card["last_contact"]["topic"] == "mail 2"


def test_an_unknown_client_has_no_events(still: Api) -> None:
    still.ok("POST", "/v1/clients", PERSON)
    missing = still.get("/v1/clients/7d7c4f3e-0f7a-4e38-9d51-0b7c3b7b8f00/events")
    assert missing.status_code == 404


def _loop(app: Any, token: str, admin: str, rounds: int, failures: list[str]) -> None:
    """Write, then read at once, with one key: every read must show that write."""
    client = TestClient(app, raise_server_exceptions=False)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        for n in range(rounds):
            made = client.post("/v1/clients", json={**PERSON, "name": f"Client {n}"},
                               headers=auth)
            cid = made.json()["id"]
            card = client.get(f"/v1/clients/{cid}/card", headers=auth)
            if card.status_code != 200 or card.json()["profile"]["name"] != f"Client {n}":
                failures.append(f"card after register: {card.status_code} {card.text[:200]}")
            topic = f"topic {n}"
            client.post(f"/v1/clients/{cid}/contacts", headers=auth, json={
                "channel": "phone", "direction": "inbound", "topic": topic})
            card = client.get(f"/v1/clients/{cid}/card", headers=auth)
            if card.status_code != 200 or (card.json()["last_contact"] or {}).get(
                    "topic") != topic:
                failures.append(f"card after contact: {card.status_code} {card.text[:200]}")
            listed = client.get("/v1/clients", headers=auth, params={"limit": 500})
            if cid not in {c["client_id"] for c in listed.json()["items"]}:
                failures.append(f"client list after register: {listed.text[:200]}")
        # After an erasure, the card read at once shows it erased (by the key that erased).
        gone = client.post(f"/v1/clients/{cid}/erase", json={"reason": "asked to"},
                           headers={"Authorization": f"Bearer {admin}"})
        card = client.get(f"/v1/clients/{cid}/card",
                          headers={"Authorization": f"Bearer {admin}"})
        if gone.status_code != 200 or card.status_code != 200 or not card.json()["erased"]:
            failures.append(f"card after erase: {card.status_code} {card.text[:200]}")
    except Exception as error:  # reported by the test, not lost in the thread
        failures.append(f"{type(error).__name__}: {error}")


def _tight_loops(api: Api, threads: int = 4, rounds: int = 6) -> None:
    now = datetime.now(UTC)
    failures: list[str] = []
    running = []
    for n in range(threads):
        token = api.container.keys.create(f"writer-{n}", Role.OPERATOR, now)
        admin = api.container.keys.create(f"eraser-{n}", Role.ADMIN, now)
        thread = threading.Thread(target=_loop, args=(api.client.app, token, admin, rounds,
                                                      failures))
        thread.start()
        running.append(thread)
    for thread in running:
        thread.join(120)
        assert not thread.is_alive()
    assert failures == []


def test_write_then_read_from_several_threads_embedded(any_api: Api) -> None:
    _tight_loops(any_api)


def test_write_then_read_from_several_threads_through_kafka(
        any_settings: Settings, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    """Distributed mode: this API process applies nothing; `crm relay` and `crm consume`
    (here in threads) feed its read models, and reads wait on the tracked positions."""
    settings = any_settings.model_copy(update={"kafka_bootstrap": kafka_broker.bootstrap})
    built: Container = build(settings, start_follower=False)
    try:
        api = Api(built)
        topics = unique_topics()
        with workers() as running:
            running.append(Worker(relay_for(api, kafka_broker.bootstrap, topics).run, "relay"))
            running.append(Worker(projector_for(api, built.runner, kafka_broker.bootstrap,
                                                topics).run, "projector"))
            _tight_loops(api, threads=3, rounds=4)
            assert all(w.error is None for w in running), [w.error for w in running]
            assert built.follower.running is False  # the API applied nothing itself
    finally:
        built.close()


# Reads that are not of the read models' client data: the store itself (events, audit), static
# documents, admin state, the alert stream, health.
NOT_READ_MODELS = ("/healthz", "/readyz", "/metrics", "/v1/audit/", "/v1/schemas",
                   "/v1/admin/", "/v1/webhooks", "/v1/alerts/stream",
                   "/v1/clients/{client_id}/events")


def test_every_read_of_the_read_models_offers_the_consistency_choice(api: Api) -> None:
    """A read route added later gets session consistency by joining a read router (or
    `dependencies=[SESSION_READ]`); this names any that did not."""
    spec = api.client.app.openapi()
    lacking = [path for path, methods in spec["paths"].items() if "get" in methods
               and not path.startswith(NOT_READ_MODELS)
               and "consistency" not in {p["name"] for p in methods["get"].get("parameters", ())}]
    assert lacking == []
    reads = [path for path, methods in spec["paths"].items() if "get" in methods
             and not path.startswith(NOT_READ_MODELS)]
    assert len(reads) >= 10
