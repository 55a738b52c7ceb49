"""Integration tests for infra.kafka against a real Kafka-protocol broker (Tansu by default)."""

from __future__ import annotations

import time
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

with warnings.catch_warnings():
    # kafka-python 3.0.12 reads its protocol schemas with the deprecated
    # importlib.resources.read_text at import time. The warning is attributed to
    # importlib, so the "kafka.*" ignore in pyproject misses it and
    # filterwarnings=error would fail collection.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.errors import KafkaError

    from infra.kafka import (
        cluster_fingerprint,
        ensure_topics,
        make_consumer,
        make_producer,
        topic_ids,
    )
    from tests.kafka_broker import (  # noqa: F401
        BrokerHandle,
        TansuBroker,
        fresh_kafka_broker,
        kafka_broker,
    )

pytestmark = pytest.mark.kafka

DEADLINE_S = 30.0
# Only used to check that something does NOT arrive; positive waits use DEADLINE_S.
QUIET_WINDOW_S = 0.5

Records = list[Any]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _poll_until(
    consumer: KafkaConsumer, done: Callable[[Records], bool], timeout: float = DEADLINE_S
) -> Records:
    """Poll until ``done(records)`` or the deadline; the caller asserts on the result."""
    records: Records = []
    deadline = time.monotonic() + timeout
    while not done(records) and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            records.extend(batch)
    return records


def _wait_for_assignment(consumer: KafkaConsumer, partitions: set[TopicPartition]) -> Records:
    """Poll until the group hands ``partitions`` to ``consumer``; returns anything fetched."""
    records: Records = []
    deadline = time.monotonic() + DEADLINE_S
    while consumer.assignment() != partitions and time.monotonic() < deadline:
        for batch in consumer.poll(timeout_ms=100).values():
            records.extend(batch)
    assert consumer.assignment() == partitions, "group never assigned the partitions"
    return records


def _producer(stack: ExitStack, bootstrap: str, client_id: str) -> KafkaProducer:
    producer = make_producer(bootstrap, client_id=client_id)
    # close() defaults to an unbounded flush, which would hang teardown if the broker is gone.
    stack.callback(producer.close, timeout=2)
    return producer


def _consumer(
    stack: ExitStack, bootstrap: str, group_id: str | None, topics: list[str] | None = None
) -> KafkaConsumer:
    consumer = make_consumer(
        bootstrap, group_id=group_id, client_id=_unique("crm-test-consumer"), topics=topics
    )
    stack.callback(consumer.close)
    return consumer


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as exit_stack:
        yield exit_stack


def test_ensure_topics_creates_requested_partitions_and_is_idempotent(
    kafka_broker: BrokerHandle,
) -> None:
    bootstrap = kafka_broker.bootstrap
    wanted = {_unique("crm-wide"): 3, _unique("crm-narrow"): 1}

    ensure_topics(bootstrap, wanted)
    ids_after_create = topic_ids(bootstrap, list(wanted))
    ensure_topics(bootstrap, wanted)
    ensure_topics(bootstrap, dict(list(wanted.items())[:1]))

    with KafkaAdminClient(bootstrap_servers=bootstrap) as admin:
        described = admin.describe_topics(list(wanted))
    assert {t["name"]: len(t["partitions"]) for t in described} == wanted
    assert set(ids_after_create) == set(wanted)
    # Same ids means the repeat calls did not drop and re-create anything.
    assert topic_ids(bootstrap, list(wanted)) == ids_after_create


def test_ensure_topics_rejects_existing_topic_with_other_partition_count(
    kafka_broker: BrokerHandle,
) -> None:
    topic = _unique("crm-resize")
    ensure_topics(kafka_broker.bootstrap, {topic: 2})

    with pytest.raises(ValueError, match=topic):
        ensure_topics(kafka_broker.bootstrap, {topic: 4})


def test_topic_ids_omits_missing_topics(kafka_broker: BrokerHandle) -> None:
    present, absent = _unique("crm-present"), _unique("crm-absent")
    ensure_topics(kafka_broker.bootstrap, {present: 1})

    ids = topic_ids(kafka_broker.bootstrap, [present, absent])

    assert list(ids) == [present]
    assert uuid.UUID(ids[present])


def test_clients_never_auto_create_topics(kafka_broker: BrokerHandle, stack: ExitStack) -> None:
    # kafka-python 3.0.12 drops allow_auto_create_topics=False unless infra.kafka
    # re-applies it; without that, a subscribed consumer creates the topic at once.
    bootstrap = kafka_broker.bootstrap
    missing = _unique("crm-never-created")
    consumer = _consumer(stack, bootstrap, _unique("crm-group"), [missing])

    assert _poll_until(consumer, lambda got: False, timeout=1.0) == []

    assert topic_ids(bootstrap, [missing]) == {}


def test_cluster_fingerprint_is_the_broker_cluster_id(kafka_broker: BrokerHandle) -> None:
    fingerprint = cluster_fingerprint(kafka_broker.bootstrap)

    if isinstance(kafka_broker, TansuBroker):
        assert fingerprint == kafka_broker.cluster_id
    else:
        assert fingerprint


def test_group_consumer_reads_keyed_messages_in_order_and_resumes_after_commit(
    kafka_broker: BrokerHandle, stack: ExitStack
) -> None:
    bootstrap = kafka_broker.bootstrap
    topic, group = _unique("crm-events"), _unique("crm-projection")
    partitions = {TopicPartition(topic, p) for p in range(4)}
    ensure_topics(bootstrap, {topic: 4})
    producer = _producer(stack, bootstrap, "crm-test-producer")
    keys, per_key = 25, 40

    futures = [
        producer.send(topic, key=f"customer-{i % keys}".encode(), value=f"{i // keys}".encode())
        for i in range(keys * per_key)
    ]
    producer.flush(timeout=DEADLINE_S)
    for future in futures:
        future.get(timeout=DEADLINE_S)

    first = _consumer(stack, bootstrap, group, [topic])
    records = _poll_until(first, lambda got: len(got) >= keys * per_key)
    assert len(records) == keys * per_key
    sequences: dict[bytes, list[int]] = defaultdict(list)
    partitions_of_key: dict[bytes, set[int]] = defaultdict(set)
    for record in records:
        sequences[record.key].append(int(record.value))
        partitions_of_key[record.key].add(record.partition)
    assert all(seqs == list(range(per_key)) for seqs in sequences.values()), sequences
    assert len(sequences) == keys
    assert all(len(ps) == 1 for ps in partitions_of_key.values())

    first.commit()
    committed = {tp: first.committed(tp) for tp in partitions}
    assert sum(committed.values()) == keys * per_key
    first.close()

    second = _consumer(stack, bootstrap, group, [topic])
    assert _wait_for_assignment(second, partitions) == []
    assert {tp: second.position(tp) for tp in partitions} == committed
    assert _poll_until(second, lambda got: False, timeout=QUIET_WINDOW_S) == []

    sent = producer.send(topic, key=b"customer-late", value=b"late").get(timeout=DEADLINE_S)
    late = _poll_until(second, lambda got: len(got) >= 1)
    late += _poll_until(second, lambda got: False, timeout=QUIET_WINDOW_S)
    assert [(r.partition, r.offset, r.key, r.value) for r in late] == [
        (sent.partition, sent.offset, b"customer-late", b"late")
    ]


def test_restart_loses_topics_and_producer_ids(
    fresh_kafka_broker: TansuBroker, stack: ExitStack
) -> None:
    broker = fresh_kafka_broker
    bootstrap = broker.bootstrap
    topic = _unique("crm-volatile")
    ensure_topics(bootstrap, {topic: 2})
    fingerprint_before = cluster_fingerprint(bootstrap)
    ids_before = topic_ids(bootstrap, [topic])
    stale = _producer(stack, bootstrap, "crm-test-stale-producer")
    stale.send(topic, key=b"k", value=b"before").get(timeout=DEADLINE_S)

    broker.restart()

    # Tansu keeps its configured cluster id across a restart, so the fingerprint
    # cannot reveal this data loss; the missing topic (and later its new id) does.
    assert cluster_fingerprint(bootstrap) == fingerprint_before
    assert topic_ids(bootstrap, [topic]) == {}
    ensure_topics(bootstrap, {topic: 2})
    assert topic_ids(bootstrap, [topic])[topic] != ids_before[topic]

    # The broker forgot the idempotent producer's id, so the old instance cannot publish.
    with pytest.raises(KafkaError):
        stale.send(topic, key=b"k", value=b"stale").get(timeout=DEADLINE_S)

    fresh = _producer(stack, bootstrap, "crm-test-fresh-producer")
    sent = fresh.send(topic, key=b"k", value=b"after").get(timeout=DEADLINE_S)
    assert sent.offset == 0
    reader = _consumer(stack, bootstrap, group_id=None)
    reader.assign([TopicPartition(topic, p) for p in range(2)])
    records = _poll_until(reader, lambda got: len(got) >= 1)
    records += _poll_until(reader, lambda got: False, timeout=QUIET_WINDOW_S)
    assert [r.value for r in records] == [b"after"]
