"""The projection consumer against a real broker: a kill, a rebalance and a broker that loses
everything leave read models equal to a replay of the store; it never reads past a hole."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from consumers.cloudevents import encode, is_published
from consumers.projector import GapError, wait_for_position
from infra.eventstore import notification_reader
from projections.registry import all_projections
from projections.replay import rebuild
from tests.integration.bus_support import (
    DEADLINE_S,
    Worker,
    bulk_clients,
    digests,
    embedded_digests,
    port_for,
    projector_for,
    read_model,
    relay_for,
    unique_topics,
    workers,
)
from tests.kafka_broker import BrokerHandle, TansuBroker, fresh_kafka_broker, kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka


class Killed(BaseException):
    """Stands for the process dying: not an Exception, so no loop catches it."""


def replay_digests(api: Api, tmp_path: Path, name: str) -> dict[str, str]:
    """Each projection rebuilt from the store alone, into a database of its own."""
    engine, _runner = read_model(tmp_path, name, personal=api.container.keyring)
    reader = notification_reader(api.container.app)
    receipts = {p.name: rebuild(p, reader, engine)
                for p in all_projections(api.container.keyring)}
    return {name: receipt.state_digest for name, receipt in receipts.items()}


def last_published(api: Api) -> int:
    read = notification_reader(api.container.app)
    return max(p for p, e in read(1, 1_000_000) if is_published(e))


def target_count(api: Api) -> int:
    read = notification_reader(api.container.app)
    return sum(1 for _p, e in read(1, 1_000_000) if is_published(e))


def test_consumers_survive_a_kill_a_rebalance_and_a_broker_restart(
        api: Api, fresh_kafka_broker: TansuBroker, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = fresh_kafka_broker.bootstrap, unique_topics()
    bulk_clients(api, clients=25)
    target = last_published(api)
    engine, runner = read_model(tmp_path, "shared", personal=api.container.keyring)
    relay = relay_for(api, bootstrap, topics, verify_seconds=0.5, flush_timeout=5.0)
    api.container.app.saved_listeners.append(relay.notify)

    def die_after_second_page(_position: int) -> None:
        if first.applied > 20:
            raise Killed

    group = f"{topics.events}-g"
    first = projector_for(api, runner, bootstrap, topics, group_id=group, client_id="first",
                          page_size=20, after_page=die_after_second_page)
    with workers() as running:
        running.append(Worker(relay.run, "relay"))
        victim = Worker(first.run, "first")
        victim.join()
        assert isinstance(victim.error, Killed)
        # Two pages were committed to the read models, none of it to Kafka.
        assert 0 < runner.position() < target

        others = [projector_for(api, runner, bootstrap, topics, group_id=group, client_id=name)
                  for name in ("second", "third")]
        running += [Worker(p.run, p.client_id) for p in others]
        assert wait_for_position(runner, target, DEADLINE_S)
        assert digests(engine) == embedded_digests(api.container, target)
        # The others started where the read models' tracking rows say (not at the offsets
        # committed to Kafka, which the killed consumer never committed): nothing it had
        # applied was read again.
        assert sum(p.received for p in others) == target_count(api) - first.applied

        fresh_kafka_broker.restart()  # topics, offsets, groups and producer ids are gone
        bulk_clients(api, clients=5)
        target = last_published(api)
        assert wait_for_position(runner, target, DEADLINE_S), relay.last_error
        assert relay.recoveries == 1
        assert all(w.error is None and w.thread.is_alive() for w in running)
    assert digests(engine) == replay_digests(api, tmp_path, "replay")


def _produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    producer = port_for(bootstrap).producer("crm-test-producer")
    try:
        for value in values:
            producer.send(topic, key=b"k", value=value)
        producer.flush(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=2)


def test_the_consumer_never_reads_past_a_hole_in_the_log(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    port_for(bootstrap).ensure_topics(topics.layout())
    bulk_clients(api, clients=1)
    events: list[tuple[int, Any]] = [
        (p, e) for p, e in notification_reader(api.container.app)(1, 100) if is_published(e)][:4]
    (p1, e1), (p2, _e2), (p3, e3), (p4, e4) = events
    # The second event never made it to this log: the third names it as its predecessor.
    _produce(bootstrap, topics.events, [encode(p1, e1, prev_position=0),
                                        encode(p3, e3, prev_position=p2),
                                        encode(p4, e4, prev_position=p3)])
    _engine, runner = read_model(tmp_path, "consumer", personal=api.container.keyring)
    projector = projector_for(api, runner, bootstrap, topics)
    try:
        with pytest.raises(GapError, match=f"follows position {p2}"):
            deadline = time.monotonic() + DEADLINE_S
            while time.monotonic() < deadline:
                projector.poll_once()
        assert projector.rewinds == 1  # it looked for the missing event from the log's start
        assert runner.position() == p1  # and applied nothing after the hole
    finally:
        projector.close()
