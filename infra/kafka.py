"""Factories for the Kafka producers, consumers and admin checks the CRM event log relies on."""

from __future__ import annotations

from typing import Any

import kafka.errors as Errors
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.net.compat import KafkaNetClient

_ADMIN_CLIENT_ID = "crm-admin"


def _net_client(**configs: Any) -> KafkaNetClient:
    """Build the network client, honouring allow_auto_create_topics.

    kafka-python 3.0.12 builds its ClusterMetadata without passing this flag on,
    so producers and consumers always ask the broker to auto-create topics. Once
    a broker loses its data, a stale client would quietly re-create a topic with
    the broker's default partition count, which breaks per-key ordering. Going
    through the documented ``kafka_client`` hook avoids patching library internals.
    """
    client = KafkaNetClient(**configs)
    client.cluster.config["allow_auto_create_topics"] = configs.get(
        "allow_auto_create_topics", True
    )
    return client


# Producer batching (issue 14.5, docs/benchmarks.md "Bus"): 1 MiB batches (of uncompressed bytes;
# ~150 KB on the wire for CloudEvents JSON, under Kafka's default 1 MB message.max.bytes) compress
# better than 64 KiB ones, and kafka-python checksums the compressed bytes in pure Python, so the
# ratio is throughput. Every producer of this system flushes when it has sent what it has (the
# relay when caught up, the DLQ, rejects and alerts after each send), so the linger only lets a
# batch fill while more records are coming; it never delays a flushed send.
PRODUCER_BATCH_BYTES = 1024 * 1024
PRODUCER_LINGER_MS = 50


def make_producer(
    bootstrap: str, *, client_id: str, transactional_id: str | None = None,
    compression_type: str | None = None, batch_size: int = PRODUCER_BATCH_BYTES,
    linger_ms: int = PRODUCER_LINGER_MS,
) -> KafkaProducer:
    """Idempotent producer that takes ``bytes`` keys and values.

    With a ``transactional_id`` the caller must call ``init_transactions()`` first.
    ``compression_type="gzip"`` roughly doubles throughput for JSON values: kafka-python
    checksums batches in pure Python (without the optional crc32c), and compressed ones are smaller.
    A caller that does not flush waits up to ``linger_ms`` for a batch to fill.
    """
    return KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        transactional_id=transactional_id,
        compression_type=compression_type,
        enable_idempotence=True,
        acks="all",
        linger_ms=linger_ms,
        batch_size=batch_size,
        # Topics are created on purpose by ensure_topics, never as a side effect of a send.
        allow_auto_create_topics=False,
        kafka_client=_net_client,
    )


def make_consumer(
    bootstrap: str,
    *,
    group_id: str | None,
    client_id: str,
    topics: list[str] | None = None,
) -> KafkaConsumer:
    """Consumer that commits only when told to and reads only committed transactions."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=group_id,
        client_id=client_id,
        # Projections commit after they have applied events, never before.
        enable_auto_commit=False,
        # A new group must replay the log from the start, not only future events.
        auto_offset_reset="earliest",
        # Joining a group waits about half the session timeout, so keep it short.
        session_timeout_ms=6000,
        heartbeat_interval_ms=1500,
        fetch_max_wait_ms=100,
        # One poll feeds one projection page (Runner pages of 2,000): fewer, larger transactions.
        max_poll_records=2000,
        isolation_level="read_committed",
        allow_auto_create_topics=False,
        kafka_client=_net_client,
    )
    if topics:
        consumer.subscribe(topics)
    return consumer


def _admin(bootstrap: str) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=bootstrap, client_id=_ADMIN_CLIENT_ID)


def ensure_topics(bootstrap: str, topics: dict[str, int], replication_factor: int = 1) -> None:
    """Create each missing topic with its partition count; existing ones are left alone.

    Raises ValueError if an existing topic has a different partition count, because
    key-to-partition mapping (and therefore per-key ordering) depends on it.
    """
    if not topics:
        return
    with _admin(bootstrap) as admin:
        existing = set(admin.list_topics())
        missing = {
            name: {"num_partitions": partitions, "replication_factor": replication_factor}
            for name, partitions in topics.items()
            if name not in existing
        }
        if missing:
            response = admin.create_topics(missing, raise_errors=False)
            for result in response["topics"]:
                error = Errors.for_code(result["error_code"])
                # Another process may have created the topic since list_topics.
                if error not in (Errors.NoError, Errors.TopicAlreadyExistsError):
                    raise error(f"creating topic {result['name']!r}: {result['error_message']}")
            # A created topic is not usable until every partition has a leader.
            admin.wait_for_topics(list(missing))
        actual = {t["name"]: len(t["partitions"]) for t in admin.describe_topics(list(topics))}
    wrong = {
        name: (want, actual.get(name)) for name, want in topics.items() if actual.get(name) != want
    }
    if wrong:
        raise ValueError(f"topic partition counts differ from requested (wanted, found): {wrong}")


def cluster_fingerprint(bootstrap: str) -> str | None:
    """The broker-reported cluster id, or None if the broker does not report one."""
    with _admin(bootstrap) as admin:
        cluster_id = admin.describe_cluster().get("cluster_id")
    return str(cluster_id) if cluster_id is not None else None


def topic_ids(bootstrap: str, topics: list[str]) -> dict[str, str]:
    """Map each existing topic to its topic id (a UUID string, assigned at creation).

    Missing topics are omitted, so a re-created topic shows up as a changed id and a
    lost one as an absent key.
    """
    with _admin(bootstrap) as admin:
        described = admin.describe_topics(list(topics))
    return {
        t["name"]: str(t["topic_id"])
        for t in described
        if t["error_code"] == 0 and t.get("topic_id") is not None
    }
