"""Shared helpers for the bus tests: a story touching every event type, background workers, read
models in their own database, and reading a topic to its end."""

from __future__ import annotations

import threading
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from consumers.bus import KafkaPort, Topics
from consumers.projector import Projector
from consumers.relay import Relay
from infra.bootstrap import Container
from infra.db import make_engine
from projections.base import Projection, Runner
from projections.personal import Personal
from projections.registry import all_projections
from projections.replay import state_digest
from tests.support import Api

with warnings.catch_warnings():
    # kafka-python reads its protocol schemas with a deprecated importlib call at import time.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import TopicPartition

    from consumers.main import kafka_port, sealed_reader
    from infra.kafka import make_consumer

DEADLINE_S = 30.0


class _TablesOnly:
    """Stands in for the keyring where only the projections' tables are wanted."""

    def reveal(self, value: Any) -> Any:
        raise AssertionError("not for applying events")

    def blind(self, words: Any) -> list[bytes]:
        raise AssertionError("not for applying events")

    def preload(self, client_ids: Any) -> None:
        raise AssertionError("not for applying events")

    def erased(self, client_id: Any) -> bool:
        raise AssertionError("not for applying events")


ALL_TABLES = {p.name: p.tables for p in all_projections(_TablesOnly())}


def unique_topics() -> Topics:
    return Topics.named(f"crm-test-{uuid.uuid4().hex[:10]}.events")


def port_for(bootstrap: str) -> KafkaPort:
    return kafka_port(bootstrap)


def relay_for(api: Api, bootstrap: str, topics: Topics, **options: Any) -> Relay:
    """A relay over the API's store, as `crm relay` builds it (personal fields stay sealed)."""
    options.setdefault("checkpoint_seconds", 0.0)
    options.setdefault("client_id", "crm-test-relay")
    return Relay(api.container.engine, sealed_reader(api.container), port_for(bootstrap),
                 topics, **options)


def projector_for(api: Api, runner: Runner, bootstrap: str, topics: Topics,
                  **options: Any) -> Projector:
    """A projection consumer into `runner`'s database (events stay sealed, as stored)."""
    options.setdefault("group_id", f"{topics.events}-g")
    return Projector(runner, port_for(bootstrap), topics, **options)


def every_event_type(api: Api) -> int:
    """Writes through the API that together record every event type; returns the last position."""
    ok = api.ok
    spec = ok("POST", "/v1/specialists", {"name": "Sam Specialist", "email": "sam@example.com",
                                          "user_id": "sam"}, as_="admin")["id"]
    other = ok("POST", "/v1/specialists", {"name": "Kim"}, as_="admin")["id"]
    ok("PUT", f"/v1/plans/{spec}/2026-11", {"amount": "1000.00", "currency": "EUR"}, as_="admin")
    ok("PUT", "/v1/calendars/default", {"timezone": "Europe/Berlin",
                                        "hours": {"mon": [["09:00", "18:00"]]}}, as_="admin")
    ok("PUT", "/v1/calendars/default", {"timezone": "Europe/Berlin", "holidays": ["2026-12-25"],
                                        "hours": {"tue": [["09:00", "17:00"]]}}, as_="admin")
    for seconds in (3600, 7200):
        ok("PUT", "/v1/sla-targets/complaint", {"first_reaction_seconds": seconds,
                                                "resolution_seconds": 86400}, as_="admin")
    questions = [{"id": "q1", "text": "Booking easy?", "stage": "booking"},
                 {"id": "q2", "text": "Repair good?", "stage": "repair"}]
    template = ok("POST", "/v1/survey-templates", {"name": "After visit", "questions": questions},
                  as_="admin")["id"]
    ok("POST", "/v1/survey-templates", {"template_id": template, "name": "After visit v2",
                                        "questions": questions}, as_="admin")
    client = ok("POST", "/v1/clients", {"kind": "customer", "form": "organisation",
                                        "name": "Acme Ltd", "phones": ["+49 30 1234"],
                                        "specialist_id": spec})["id"]
    c = f"/v1/clients/{client}"
    ok("PATCH", c, {"address": "Main St 1"})
    ok("PATCH", c, {"specialist_id": other})
    ok("POST", f"{c}/interests", {"text": "also keeps books for a small firm"})
    person = ok("POST", f"{c}/contact-persons", {"name": "Bo Boss", "role": "decision_maker"})
    person_id = person["links"].get("person_id") or person["id"]
    ok("PATCH", f"{c}/contact-persons/{person_id}", {"notes": "prefers mornings"})
    ok("DELETE", f"{c}/contact-persons/{person_id}")
    planned = ok("POST", f"{c}/planned-contacts", {"purpose": "regular",
                                                   "due_at": "2026-12-01T10:00:00+01:00",
                                                   # planned before the contact that keeps it
                                                   "occurred_at": "2026-11-16T10:00:00+01:00"}
                 )["id"]
    ok("POST", f"{c}/contacts", {"channel": "phone", "direction": "outbound", "topic": "Regular",
                                 "planned_contact_id": planned,
                                 "occurred_at": "2026-11-20T10:00:00+01:00"})
    cancelled = ok("POST", f"{c}/planned-contacts", {"purpose": "contract_renewal",
                                                     "due_at": "2026-12-10T10:00:00Z"})["id"]
    ok("POST", f"/v1/planned-contacts/{cancelled}/cancel", {"reason": "moved"})
    emergency = ok("POST", f"{c}/contacts", {"channel": "meeting", "direction": "inbound",
                                             "purpose": "churn_threat", "topic": "Leaving?"})
    situation = emergency["links"]["situation_id"]
    s = f"/v1/situations/{situation}"
    ok("POST", f"{s}/acknowledge", {"note": "called back"})
    ok("POST", f"{s}/pause", {"reason": "waiting for the client"})
    ok("POST", f"{s}/resume")
    ok("POST", f"{s}/resolve", {"resolution": "stays"})
    ok("POST", f"{s}/reopen", {"reason": "changed mind"})
    ok("POST", "/v1/situations", {"client_id": client, "kind": "other", "description": "odd"})
    for verb in ("fulfil", "break"):
        agreement = ok("POST", f"{c}/agreements", {"text": "send the offer",
                                                   "due_at": "2026-12-01T00:00:00Z"})["id"]
        ok("POST", f"/v1/agreements/{agreement}/{verb}", {})
    work = ok("POST", f"{c}/works", {"text": "set up the portal", "assignee": "sam"})["id"]
    ok("POST", f"/v1/works/{work}/complete", {"note": "done"})
    ok("POST", f"/v1/works/{work}/feedback", {"rating": 4, "text": "fine"})
    order = ok("POST", "/v1/work-orders", {"client_id": client, "asset": "VW Golf",
                                           "services": ["oil"], "stages": ["booking", "repair"],
                                           "mechanic": "Max"})["id"]
    ok("POST", f"/v1/work-orders/{order}/close", {"amount": "250.00", "currency": "EUR"})
    survey = ok("POST", "/v1/surveys", {"work_order_id": order, "template_id": template,
                                        "interviewer": "Ivy"})["id"]
    ok("POST", f"/v1/surveys/{survey}/ticks", {"question_id": "q2", "ticked": False})
    ok("POST", f"/v1/surveys/{survey}/complete", {"outcome": "completed", "comment": "meh"})
    ok("POST", "/v1/complaints", {"client_id": client, "text": "rude", "work_order_id": order,
                                  "stage": "repair", "channel": "phone"})
    ok("POST", "/v1/wishes", {"client_id": client, "text": "coffee", "work_order_id": order})
    invoice = ok("POST", "/v1/invoices", {"client_id": client, "number": "INV-1",
                                          "amount": "100.50", "currency": "EUR",
                                          "due_at": "2026-12-15T00:00:00Z"})["id"]
    ok("POST", f"/v1/invoices/{invoice}/act-sent")
    ok("POST", f"/v1/invoices/{invoice}/act-returned")
    ok("POST", "/v1/payments", {"client_id": client, "amount": "100.50", "currency": "EUR",
                                "invoice_id": invoice, "reference": "bank 42"})
    gone = ok("POST", "/v1/clients", {"kind": "prospect", "form": "person", "name": "Gone"})["id"]
    return int(ok("POST", f"/v1/clients/{gone}/erase", {"reason": "asked to"},
                  as_="admin")["position"])


def bulk_clients(api: Api, clients: int, per_client: int = 3) -> int:
    """Many clients with a few contacts each, in batches; returns the last position."""
    last = 0
    for start in range(0, clients, 50):
        items: list[dict[str, Any]] = []
        for _ in range(start, min(start + 50, clients)):
            client = str(uuid.uuid4())
            items.append({"command": "register_client", "data": {
                "id": client, "kind": "customer", "form": "person", "name": "Client"}})
            items += [{"command": "log_contact", "data": {
                "client_id": client, "channel": "phone", "direction": "inbound",
                "topic": f"call {n}"}} for n in range(per_client)]
        last = int(api.ok("POST", "/v1/batch", {"items": items})["position"])
    return last


def read_model(tmp_path: Path, name: str, projections: list[Projection] | None = None, *,
               personal: Personal | None = None) -> tuple[Engine, Runner]:
    """Read models in a database of their own (as a `crm consume` process would have); all
    projections need the store's keyring (`personal`) for the blind search index."""
    engine = make_engine(f"sqlite:///{tmp_path}/{name}.db")
    if projections is None:
        assert personal is not None, "all projections need the keyring"
        projections = all_projections(personal)
    return engine, Runner(engine, projections, lambda _s, _l: [])


def digests(engine: Engine, projections: list[Projection] | None = None) -> dict[str, str]:
    tables = {p.name: p.tables for p in projections} if projections else ALL_TABLES
    with engine.connect() as conn:
        return {name: state_digest(conn, t) for name, t in tables.items()}


def embedded_digests(container: Container, position: int) -> dict[str, str]:
    assert container.follower.wait_for(position, DEADLINE_S)
    return digests(container.engine)


class Worker:
    """Runs a relay's or projector's `run(stop)` in a thread; remembers how it ended."""

    def __init__(self, target: Callable[[threading.Event], None], name: str) -> None:
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._target = target
        self.thread = threading.Thread(target=self._main, name=name, daemon=True)
        self.thread.start()

    def _main(self) -> None:
        try:
            self._target(self.stop)
        except BaseException as error:
            self.error = error

    def join(self, timeout: float = DEADLINE_S) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.thread.name} did not stop"

    def halt(self) -> None:
        self.stop.set()
        self.join()


@contextmanager
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            worker.stop.set()
        for worker in started:
            worker.thread.join(DEADLINE_S)


def read_topic(bootstrap: str, topic: str, partitions: int = 1,
               done: Callable[[list[Any]], bool] | None = None) -> list[Any]:
    """Every record of a topic up to its high watermark (or until `done`), in offset order."""
    import time

    consumer = make_consumer(bootstrap, group_id=None, client_id="crm-test-reader")
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[Any] = []
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
            if done is not None:
                if done(records):
                    break
                continue
            highs = [consumer.highwater(tp) for tp in tps]
            if all(h is not None for h in highs) and all(
                    consumer.position(tp) >= h for tp, h in zip(tps, highs, strict=True)):
                break
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
