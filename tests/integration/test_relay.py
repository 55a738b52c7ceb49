"""The relay against a real Kafka-protocol broker: store order on the topic, at least once across a
crash, checkpoints that prove completeness, and re-publishing when the broker lost the topic."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers import relay_state
from consumers.bus import Topics
from consumers.checkpoints import Checkpoint, CompletenessVerifier
from consumers.cloudevents import is_published, key_of, to_cloudevent
from consumers.main import sealed_reader
from consumers.projector import wait_for_position
from consumers.relay_state import RelayState
from infra.eventstore import notification_reader
from tests.integration.bus_support import (
    Worker,
    bulk_clients,
    digests,
    embedded_digests,
    every_event_type,
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


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no loop catches it."""


def published(api: Api) -> list[tuple[int, Any]]:
    """(position, event) of everything the relay must publish, in store order."""
    read = notification_reader(api.container.app)
    return [(p, e) for p, e in read(1, 1_000_000) if is_published(e)]


def checkpoints(bootstrap: str, topics: Topics) -> dict[int, Checkpoint]:
    """The latest checkpoint of each partition."""
    latest = {}
    for record in read_topic(bootstrap, topics.checkpoints):
        checkpoint = Checkpoint.decode(record.value)
        latest[checkpoint.partition] = checkpoint
    return latest


def test_api_writes_reach_a_separate_read_model_through_kafka_in_client_order(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    every_event_type(api)
    bulk_clients(api, clients=10)
    engine, runner = read_model(tmp_path, "consumer", personal=api.container.keyring)
    relay = relay_for(api, bootstrap, topics)
    api.container.app.saved_listeners.append(relay.notify)
    projector = projector_for(api, runner, bootstrap, topics)
    with workers() as running:
        running.append(Worker(relay.run, "relay"))
        running.append(Worker(projector.run, "projector"))
        # Written while both run: the relay is woken by the save.
        last = api.ok("POST", "/v1/clients", {"kind": "partner", "form": "person",
                                              "name": "Late Comer"})["position"]
        assert wait_for_position(runner, last, 30.0), (relay.last_error, projector.last_error)
    expected = published(api)
    sealed = [(p, e) for p, e in sealed_reader(api.container)(1, 1_000_000) if is_published(e)]
    assert digests(engine) == embedded_digests(api.container, expected[-1][0])

    records = read_topic(bootstrap, topics.events)
    events = [orjson.loads(r.value) for r in records]
    # Personal data travels sealed with the client's key: erasure reaches Kafka's copies too.
    assert not any(b"Acme Ltd" in r.value or b"+49 30 1234" in r.value for r in records)
    registered = next(e for e in events if e["type"] == "crm.ClientRegistered.v1")
    assert set(registered["data"]["name"]) == {"_pd_", "t", "c"}
    assert [e["position"] for e in events] == [p for p, _e in expected]  # once each, in order
    on_topic: dict[bytes, list[int]] = defaultdict(list)
    in_store: dict[bytes, list[int]] = defaultdict(list)
    for record, event in zip(records, events, strict=True):
        on_topic[record.key].append(event["position"])
    for position, event in expected:
        in_store[key_of(event)].append(position)
    assert on_topic == in_store  # every client's events, in the store's order
    # Each record names the one before it in the partition: nothing in between was left out.
    assert [e["prevposition"] for e in events] == [0] + [e["position"] for e in events[:-1]]
    assert events[0] == orjson.loads(orjson.dumps(to_cloudevent(*sealed[0], prev_position=0)))

    verifier = CompletenessVerifier()
    for record, event in zip(records, events, strict=True):
        verifier.add(record.partition, event)
    assert relay.recoveries == 0
    final = checkpoints(bootstrap, topics)[0]
    assert (final.count, final.last_position, final.relay_position) == (
        len(expected), expected[-1][0], relay.position)
    assert verifier.check(final) is None


def test_a_relay_killed_after_publishing_but_before_saving_resumes_without_a_gap(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    bulk_clients(api, clients=10)
    expected = published(api)
    batches: list[RelayState] = []

    def die_on_third_batch(state: RelayState) -> None:
        batches.append(state)
        if len(batches) == 3:
            raise Killed

    first = relay_for(api, bootstrap, topics, batch_size=10, after_publish=die_on_third_batch)
    with pytest.raises(Killed):
        first.run_until_caught_up()
    first._discard_clients()  # the dead process's sockets close with it
    saved = relay_state.load(api.container.engine, topics.events).position
    assert saved == batches[1].position < batches[2].position

    second = relay_for(api, bootstrap, topics, batch_size=10, verify_seconds=0.0,
                       watermark_seconds=0.0)
    second.run_until_caught_up()
    assert second.recoveries == 0  # checking the broker before every batch finds nothing lost

    events = [orjson.loads(r.value) for r in read_topic(bootstrap, topics.events)]
    positions = [e["position"] for e in events]
    assert sorted(set(positions)) == [p for p, _e in expected]  # nothing missing
    # What was sent after the saved position comes twice: the acknowledged page that was not
    # saved, and the page sent ahead of it (if it reached the broker before the "crash").
    twice = sorted({p for p in positions if positions.count(p) > 1})
    repeated = [p for p, _e in expected if saved < p <= max(twice)]
    assert max(twice) >= batches[2].position
    assert twice == repeated  # one run, right after the saved position
    assert len(positions) == len(expected) + len(repeated)
    verifier = CompletenessVerifier()
    for event in events:
        verifier.add(0, event)
    assert verifier.duplicates == len(repeated)
    assert verifier.check(checkpoints(bootstrap, topics)[0]) is None

    engine, runner = read_model(tmp_path, "consumer", personal=api.container.keyring)
    projector = projector_for(api, runner, bootstrap, topics)
    with workers() as running:
        running.append(Worker(projector.run, "projector"))
        assert wait_for_position(runner, expected[-1][0], 30.0), projector.last_error
    assert projector.applied == len(expected)  # repeats were recognised, not applied
    assert digests(engine) == embedded_digests(api.container, expected[-1][0])


def test_the_relay_republishes_from_the_store_start_when_its_topic_disappears(
        api: Api, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    port = port_for(bootstrap)
    bulk_clients(api, clients=3)
    expected = [p for p, _e in published(api)]
    relay = relay_for(api, bootstrap, topics, verify_seconds=0.0)
    relay.run_until_caught_up()
    old_id = port.topic_ids([topics.events])[topics.events]

    port.delete_topics([topics.events])
    wait_for(lambda: topics.events not in port.topic_ids([topics.events]), "the deletion")
    relay.run_until_caught_up()

    assert relay.recoveries == 1
    assert port.topic_ids([topics.events])[topics.events] != old_id
    events = [orjson.loads(r.value) for r in read_topic(bootstrap, topics.events)]
    assert [e["position"] for e in events] == expected
    assert checkpoints(bootstrap, topics)[0].count == len(expected)
    relay.close()


def test_a_high_watermark_below_the_recorded_offset_counts_as_data_loss(
        api: Api, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    # A truncated log (e.g. an unclean leader election) keeps its topic id; only the offsets
    # tell. Recording more than the broker holds stands in for the truncation.
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    bulk_clients(api, clients=3)
    expected = [p for p, _e in published(api)]
    relay = relay_for(api, bootstrap, topics, batch_size=4, verify_seconds=0.0,
                      watermark_seconds=0.0)
    relay.run_until_caught_up()
    assert relay.recoveries == 0
    relay.state.partitions[0].next_offset += 5

    relay.run_until_caught_up()

    assert relay.recoveries == 1
    events = [orjson.loads(r.value) for r in read_topic(bootstrap, topics.events)]
    assert [e["position"] for e in events] == expected
    assert relay.state.partitions[0].next_offset == len(expected)
    relay.close()
