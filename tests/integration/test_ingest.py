"""Ingest against a real Kafka-protocol broker: commands from other systems run once in effect,
rejects are parked with the reason and the partition keeps flowing."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from prometheus_client import REGISTRY

from consumers.cloudevents import is_published
from consumers.ingest import Ingest, IngestTopics
from domain.catalogue import event_type
from infra.eventstore import notification_reader
from tests.integration.bus_support import DEADLINE_S, port_for, read_topic
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no loop catches it."""


def message(command: str, data: dict[str, Any], actor: str = "telephony") -> bytes:
    return orjson.dumps({"command": command, "data": data, "actor": actor})


def send(bootstrap: str, topics: IngestTopics, messages: list[tuple[bytes | None, bytes]]) -> None:
    port = port_for(bootstrap)
    port.ensure_topics(topics.layout())
    producer = port.producer("crm-test-ingest-sender")
    try:
        for key, value in messages:
            producer.send(topics.commands, key=key, value=value)
        producer.flush(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=2)


def handled(ingest: Ingest) -> int:
    s = ingest.stats
    return s.written + s.replayed + sum(s.rejected.values())


def ingest_until(ingest: Ingest, done: Callable[[], bool]) -> None:
    """Poll until `done()` (bounded)."""
    deadline = time.monotonic() + DEADLINE_S
    while not done():
        assert time.monotonic() < deadline, f"ingest handled only {ingest.stats}"
        ingest.poll_once()


def stored(api: Api) -> list[Any]:
    return [e for _p, e in notification_reader(api.container.app)(1, 100_000) if is_published(e)]


def rejects_counted(reason: str) -> float:
    return REGISTRY.get_sample_value("crm_ingest_rejects_total", {"reason": reason}) or 0.0


def test_commands_run_once_and_every_reject_is_parked_with_its_reason(
        any_api: Api, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    api = any_api
    bootstrap = kafka_broker.bootstrap
    topics = IngestTopics.named(f"crm-test-{uuid.uuid4().hex[:10]}.ingest")
    client, order = uuid.uuid4(), uuid.uuid4()
    call = {"client_id": str(client), "channel": "phone", "direction": "inbound",
            "topic": "Invoice question", "occurred_at": "2026-03-02T09:15:00+01:00"}
    payment = {"client_id": str(client), "amount": "120.50", "currency": "EUR",
               "reference": "bank 7"}
    messages: list[tuple[bytes | None, bytes]] = [
        (b"crm-1", message("register_client", {"id": str(client), "kind": "customer",
                                               "form": "organisation", "name": "Acme"}, "crm")),
        (b"call-1", message("log_contact", call)),
        (b"call-1", message("log_contact", call)),  # the telephony system sent it twice
        (b"pay-1", message("receive_payment", {**payment, "amount": "-5"}, "billing")),
        (b"x-1", message("fly_to_the_moon", {})),
        (b"x-2", message("erase_client", {"client_id": str(client)}, "billing")),
        (b"pay-2", message("receive_payment", {**payment, "client_id": str(uuid.uuid4())},
                           "billing")),
        (b"x-3", b"{not json"),
        (None, message("log_contact", call)),
        (b"call-1", message("log_contact", {**call, "topic": "Another call"})),
        (b"wo-1", message("open_work_order", {"id": str(order), "client_id": str(client),
                                              "asset": "VW Golf"}, "dms")),
        (b"wo-2", message("close_work_order", {"work_order_id": str(order), "amount": "250.00",
                                               "currency": "EUR"}, "dms")),
        (b"wo-3", message("close_work_order", {"work_order_id": str(order), "amount": "99.00",
                                               "currency": "EUR"}, "dms")),
        (b"pay-3", message("receive_payment", payment, "billing")),  # after all the rejects
    ]
    reasons = ["validation", "unknown_command", "not_allowed", "not_found", "malformed",
               "no_key", "key_reused", "domain"]
    before = {r: rejects_counted(r) for r in reasons}
    send(bootstrap, topics, messages)

    ingest = Ingest(api.container.app, port_for(bootstrap), topics,
                    group_id=f"{topics.commands}-g", client_id="crm-test-ingest")
    try:
        ingest_until(ingest, lambda: handled(ingest) == len(messages))
    finally:
        ingest.close()

    events = stored(api)
    assert [(event_type(e), e.actor, e.actor_role) for e in events] == [
        ("ClientRegistered", "crm", "operator"), ("ContactLogged", "telephony", "operator"),
        ("WorkOrderOpened", "dms", "operator"), ("WorkOrderClosed", "dms", "operator"),
        ("PaymentReceived", "billing", "operator")]
    assert str(events[-1].amount) == "120.50"
    assert (ingest.stats.written, ingest.stats.replayed) == (5, 1)

    rejects = [orjson.loads(r.value) for r in read_topic(bootstrap, topics.rejects)]
    assert [r["reason"] for r in rejects] == reasons
    assert [r["source"]["offset"] for r in rejects] == [3, 4, 5, 6, 7, 8, 9, 12]
    assert [r["key"] for r in rejects] == ["pay-1", "x-1", "x-2", "pay-2", "x-3", None,
                                           "call-1", "wo-3"]
    validation = rejects[0]
    assert validation["errors"][0]["field"] == "data.amount"
    assert validation["original"] == orjson.loads(messages[3][1])
    assert rejects[4]["original_text"] == "{not json"
    assert rejects[3]["errors"] == [{"field": "data.client_id",
                                     "message": f"no client with id "
                                                f"{orjson.loads(messages[6][1])['data']['client_id']}"}]
    assert {r: rejects_counted(r) - before[r] for r in reasons} == dict.fromkeys(reasons, 1.0)


def test_a_message_written_but_not_committed_is_redelivered_and_changes_nothing(
        api: Api, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    bootstrap = kafka_broker.bootstrap
    topics = IngestTopics.named(f"crm-test-{uuid.uuid4().hex[:10]}.ingest")
    client = uuid.uuid4()
    send(bootstrap, topics, [
        (b"c-1", message("register_client", {"id": str(client), "kind": "customer",
                                             "form": "person", "name": "Ann"})),
        (b"c-2", message("log_contact", {"client_id": str(client), "channel": "phone",
                                         "direction": "inbound", "topic": "first call"})),
        (b"c-3", message("log_contact", {"client_id": str(client), "channel": "phone",
                                         "direction": "inbound", "topic": "second call"})),
    ])
    group = f"{topics.commands}-g"

    def die_after_the_second(record: Any) -> None:
        if record.key == b"c-2":
            raise Killed  # written to the store, offset not committed

    first = Ingest(api.container.app, port_for(bootstrap), topics, group_id=group,
                   client_id="crm-test-ingest-1", after_message=die_after_the_second)
    try:
        with pytest.raises(Killed):
            ingest_until(first, lambda: handled(first) == 3)
    finally:
        first.close()
    assert [event_type(e) for e in stored(api)] == ["ClientRegistered", "ContactLogged"]

    second = Ingest(api.container.app, port_for(bootstrap), topics, group_id=group,
                    client_id="crm-test-ingest-2")
    try:
        ingest_until(second, lambda: second.stats.written == 1)
    finally:
        second.close()
    # c-2 came again (c-1 too, if the first poll held it): answered from the idempotency record.
    assert first.stats.written == 2
    assert second.stats.replayed in (1, 2)
    keyring = api.container.keyring  # the topic is sealed in the store (personal data)
    assert [keyring.unseal(e.client_id, "ContactLogged.topic", e.topic)
            for e in stored(api) if event_type(e) == "ContactLogged"] == [
        "first call", "second call"]
