"""Webhooks to a real HTTP receiver on loopback: signed, in store order, only the wanted types,
retried with back-off, parked after N failures, replayable from a position, resumed after a
restart without re-sending."""

from __future__ import annotations

import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from consumers import webhooks
from consumers.dlq import RetryPolicy
from consumers.main import sealed_reader
from consumers.webhooks import Dispatcher, add_subscriber, replay
from tests.support import Api

SECRET = "s3cret-for-the-receiver-only-0123456789"


@dataclass
class Receiver:
    """Answers each POST with the next planned status (200 once the plan is used up) and
    records what came, checking the signature as a subscriber would."""

    url: str
    plan: list[int] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["status"] == 200]


def valid_signature(headers: Any, body: bytes) -> bool:
    timestamp = headers["X-CRM-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(headers["X-CRM-Signature"], f"sha256={expected}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            signed = valid_signature(self.headers, body)
            with state.lock:
                status = state.plan.pop(0) if state.plan else 200
                if not signed:
                    status = 401
                state.requests.append({"status": status, "event": orjson.loads(body),
                                       "id": self.headers["X-CRM-Event-Id"],
                                       "type": self.headers["Content-Type"]})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/crm"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dispatcher_for(api: Api) -> Dispatcher:
    return Dispatcher(api.container.engine, sealed_reader(api.container), timeout=5.0,
                      secrets=api.container.keyring.secrets("webhook"),
                      retry=RetryPolicy(attempts=4, first_delay=0.01, max_delay=0.04))


def dispatch_until(dispatcher: Dispatcher, done: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if not dispatcher.step():
            time.sleep(0.01)  # a subscriber waits out its back-off


def position_of(api: Api, name: str) -> int:
    return next(s.position for s in webhooks.subscribers(api.container.engine) if s.name == name)


def client_with_payments(api: Api, amounts: list[str]) -> tuple[str, list[int]]:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Ann Lee"})["id"]
    api.ok("POST", f"/v1/clients/{client}/contacts",
           {"channel": "phone", "direction": "inbound", "topic": "hello",
            "summary": "asked about the invoice"})
    positions = [api.ok("POST", "/v1/payments", {"client_id": client, "amount": amount,
                                                  "currency": "EUR"})["position"]
                 for amount in amounts]
    return client, positions


def test_subscribers_get_the_types_they_asked_for_signed_in_store_order_and_once(
        any_api: Api, receiver: Receiver) -> None:
    api = any_api
    _client, paid = client_with_payments(api, ["10.00", "20.00"])
    engine = api.container.engine
    add_subscriber(engine, "billing", receiver.url, SECRET, ["PaymentReceived",
                                                             "crm.ContactLogged.v1"],
                   secrets=api.container.keyring.secrets("webhook"))
    first = dispatcher_for(api)
    dispatch_until(first, lambda: len(receiver.delivered()) == 3, "three deliveries")
    events = [r["event"] for r in receiver.delivered()]
    assert [(e["type"], e["data"].get("amount")) for e in events] == [
        ("crm.ContactLogged.v2", None), ("crm.PaymentReceived.v2", "10.00"),
        ("crm.PaymentReceived.v2", "20.00")]
    assert [e["position"] for e in events[1:]] == paid
    assert [r["id"] for r in receiver.delivered()] == [e["id"] for e in events]
    assert {r["type"] for r in receiver.requests} == {
        "application/cloudevents+json; charset=utf-8"}
    assert len(receiver.requests) == 3  # every signature checked out (else 401, retried)
    assert set(events[0]["data"]["summary"]) == {"_pd_", "t", "c"}  # sealed, as on Kafka
    assert position_of(api, "billing") == api.store_position()

    # A restart resumes at the recorded position: nothing is sent twice.
    restarted = dispatcher_for(api)
    assert restarted.step() == 0
    later = api.ok("POST", "/v1/payments", {"client_id": _client, "amount": "30.00",
                                            "currency": "EUR"})["position"]
    dispatch_until(restarted, lambda: len(receiver.delivered()) == 4, "the new payment")
    assert receiver.delivered()[-1]["event"]["position"] == later
    assert len(receiver.requests) == 4


def test_failures_back_off_then_park_and_a_replay_sends_from_the_position_again(
        any_api: Api, receiver: Receiver) -> None:
    api = any_api
    engine = api.container.engine
    secrets = api.container.keyring.secrets("webhook")
    add_subscriber(engine, "billing", receiver.url, SECRET, ["PaymentReceived"], secrets=secrets)
    add_subscriber(engine, "gone", f"http://127.0.0.1:{closed_port()}/x", SECRET,
                   ["PaymentReceived"], secrets=secrets)
    # First payment: two failures, then accepted; second: four failures (the limit), parked.
    receiver.plan = [500, 503, 200, 500, 500, 500, 500]
    _client, paid = client_with_payments(api, ["10.00", "20.00", "30.00"])
    dispatcher = dispatcher_for(api)
    dispatch_until(dispatcher, lambda: position_of(api, "billing") == paid[-1]
                   and position_of(api, "gone") == paid[-1], "both subscribers to move on")

    assert [(r["status"], r["event"]["position"]) for r in receiver.requests] == [
        (500, paid[0]), (503, paid[0]), (200, paid[0]),
        (500, paid[1]), (500, paid[1]), (500, paid[1]), (500, paid[1]), (200, paid[2])]
    parked = webhooks.parked(engine)
    assert [(p["subscriber"], p["position"], p["attempts"], p["error"][:22]) for p in parked] == [
        ("billing", paid[1], 4, "HTTP 500"),
        ("gone", paid[0], 4, "ConnectionRefusedError"),
        ("gone", paid[1], 4, "ConnectionRefusedError"),
        ("gone", paid[2], 4, "ConnectionRefusedError")]
    assert orjson.loads(parked[0]["body"])["data"]["amount"] == "20.00"

    replay(engine, "billing", paid[1])
    assert [p["subscriber"] for p in webhooks.parked(engine)] == ["gone"] * 3
    dispatch_until(dispatcher, lambda: len(receiver.delivered()) == 4, "the replay")
    replayed = receiver.delivered()[-2:]
    assert [r["event"]["position"] for r in replayed] == paid[1:]
    first_time = {r["event"]["position"]: r["id"] for r in receiver.requests[:8]}
    assert [r["id"] for r in replayed] == [first_time[p] for p in paid[1:]]  # same ids
    assert position_of(api, "billing") == paid[-1]
