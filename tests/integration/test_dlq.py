"""Poison events: retried, parked on the DLQ and in the read-model database, counted, and
re-drivable, while the partition keeps flowing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import BigInteger, Column, MetaData, String, Table, select
from sqlalchemy.exc import OperationalError

from consumers import dlq
from consumers.cloudevents import encode
from consumers.dlq import RetryPolicy, is_transient
from consumers.projector import wait_for_position
from domain.base import event_id_of
from infra.eventstore import notification_reader
from projections.base import positions
from projections.fold import FoldProjection, Rows
from projections.history import ClientHistory, client_events
from tests.integration.bus_support import (
    DEADLINE_S,
    Worker,
    port_for,
    projector_for,
    read_model,
    read_topic,
    relay_for,
    unique_topics,
    wait_for,
    workers,
)
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka

fussy_metadata = MetaData()
fussy_rows = Table("test_fussy_rows", fussy_metadata,
                   Column("position", BigInteger, primary_key=True, autoincrement=False),
                   Column("topic", String(100), nullable=False))


# What each contact is about, told by its channel: the topic is sealed on the bus since
# ContactLogged v2 (personal data), so this projection cannot read it.
SUBJECT = {"phone": "before", "meeting": "poison", "email": "after"}


class Fussy(FoldProjection):
    """A test-only projection with a bug: it chokes on contacts about 'poison'."""

    name = "test_fussy"
    tables = (fussy_rows,)
    broken = True

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if type(event).__name__ != "ContactLogged":
            return
        subject = SUBJECT[event.channel]
        if self.broken and subject == "poison":
            raise ValueError("cannot digest poison")
        rows.put(fussy_rows, {"position": position, "topic": subject})


def dead_letters(projection: str) -> float:
    return REGISTRY.get_sample_value("crm_dead_letters_total", {"projection": projection}) or 0.0


def test_a_poison_event_is_parked_after_retries_and_later_events_still_flow(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Pat"})["id"]
    written = {topic: api.ok("POST", f"/v1/clients/{client}/contacts", {
        "channel": channel, "direction": "inbound", "topic": topic})
        for channel, topic in SUBJECT.items()}
    poison = written["poison"]
    fussy, history = Fussy(), ClientHistory()
    engine, runner = read_model(tmp_path, "consumer", [history, fussy])
    fussy_metadata.create_all(engine)
    counted = dead_letters(fussy.name)
    relay_for(api, bootstrap, topics).run_until_caught_up()
    projector = projector_for(api, runner, bootstrap, topics,
                              retry=RetryPolicy(attempts=3, first_delay=0.01))
    with workers() as running:
        running.append(Worker(projector.run, "projector"))
        assert wait_for_position(runner, written["after"]["position"], DEADLINE_S)

    poison_id = str(event_id_of(UUID(poison["id"]), 1))
    [row] = dlq.parked(engine)
    assert (row["projection"], row["event_ref"], row["position"], row["type"], row["attempts"],
            row["error"]) == (fussy.name, poison_id, poison["position"], "ContactLogged", 3,
                              "ValueError: cannot digest poison")
    assert dlq.parked_count(engine) == 1
    assert dead_letters(fussy.name) == counted + 1
    with engine.connect() as conn:
        # The fussy projection went on past the poison; the other one applied it.
        assert [r.topic for r in conn.execute(select(fussy_rows).order_by(
            fussy_rows.c.position))] == ["before", "after"]
        assert poison["position"] in set(conn.execute(select(client_events.c.position)).scalars())
        assert positions(conn)[fussy.name] == written["after"]["position"]
    [record] = read_topic(bootstrap, topics.dlq)
    letter = orjson.loads(record.value)
    assert (letter["projection"], letter["attempts"], letter["error"], letter["event"]["id"],
            letter["event"]["type"]) == (fussy.name, 3, "ValueError: cannot digest poison",
                                         poison_id, "crm.ContactLogged.v2")

    fussy.broken = False  # the bug is fixed
    report = dlq.redrive(engine, [history, fussy])
    assert (report.redriven, report.still_failing) == ([f"{fussy.name}:{poison_id}"], {})
    assert dlq.redrive(engine, [history, fussy]).redriven == []  # a second run changes nothing
    assert dlq.parked_count(engine) == 0
    with engine.connect() as conn:
        assert sorted(r.topic for r in conn.execute(select(fussy_rows))) == [
            "after", "before", "poison"]


def test_a_record_that_is_not_an_event_is_parked_for_every_projection(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    port = port_for(bootstrap)
    port.ensure_topics(topics.layout())
    api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Pat"})
    [(position, event)] = notification_reader(api.container.app)(1, 1)
    producer = port.producer("crm-test-producer")
    producer.send(topics.events, key=b"k", value=b"{not json")
    producer.send(topics.events, key=b"k", value=encode(position, event, prev_position=0))
    producer.flush(timeout=DEADLINE_S)
    producer.close(timeout=2)
    engine, runner = read_model(tmp_path, "consumer", personal=api.container.keyring)
    projector = projector_for(api, runner, bootstrap, topics)
    with workers() as running:
        running.append(Worker(projector.run, "projector"))
        assert wait_for_position(runner, position, DEADLINE_S)
        wait_for(lambda: dlq.parked_count(engine) == 1, "the parked record")

    [row] = dlq.parked(engine)
    assert (row["projection"], row["event_ref"], row["position"], row["record"]) == (
        dlq.ALL, f"{topics.events}/0/0", None, b"{not json")
    assert row["error"].startswith("not a CloudEvent")


def test_database_trouble_is_retried_rather_than_parked() -> None:
    locked = OperationalError("INSERT ...", {}, Exception("database is locked"))
    no_column = OperationalError("SELECT ...", {}, Exception("no such column: x"))
    assert (is_transient(locked), is_transient(no_column), is_transient(ValueError("x"))) == (
        True, False, False)
    assert list(RetryPolicy(attempts=4, first_delay=0.5, max_delay=1.5).delays()) == [
        0.5, 1.0, 1.5]


def test_parked_events_show_in_readyz_and_metrics(api: Api) -> None:
    parked = dlq.Parked(ClientHistory.name, "event-1", 7, "ContactLogged", "ValueError: x", 4,
                        b"{}")
    dlq.create(api.container.engine)
    with api.container.engine.begin() as conn:
        dlq.record(conn, parked, datetime(2026, 11, 20, tzinfo=UTC))

    ready = api.ok("GET", "/readyz", as_="analyst")
    metrics = api.get("/metrics", as_="analyst").text

    assert ready["read_models"]["dead_letters"] == 1
    assert "crm_dead_letters_parked 1.0" in metrics.splitlines()
