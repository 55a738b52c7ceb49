"""Process mains for `crm relay` and `crm consume`: build the container, wire Kafka, run until
SIGINT/SIGTERM."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from consumers.bus import KafkaPort, Topics
from consumers.dlq import RedriveReport
from infra.bootstrap import Container, build
from infra.settings import Settings

log = logging.getLogger(__name__)


def kafka_port(bootstrap: str) -> KafkaPort:
    """The bus operations, from infra.kafka (plus topic deletion, which only the relay needs)."""
    from kafka import KafkaAdminClient
    from kafka.errors import UnknownTopicOrPartitionError

    from infra.kafka import ensure_topics, make_consumer, make_producer, topic_ids

    def delete_topics(names: list[str]) -> None:
        with (KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-admin") as admin,
              contextlib.suppress(UnknownTopicOrPartitionError)):  # already gone
            admin.delete_topics(names)

    return KafkaPort(
        # gzip: CloudEvents JSON compresses well, and it doubles kafka-python's produce rate.
        producer=lambda client_id: make_producer(bootstrap, client_id=client_id,
                                                 compression_type="gzip"),
        consumer=lambda group, client_id, topics: make_consumer(
            bootstrap, group_id=group, client_id=client_id, topics=topics),
        ensure_topics=lambda layout: ensure_topics(bootstrap, layout),
        topic_ids=lambda names: topic_ids(bootstrap, names),
        delete_topics=delete_topics,
    )


def sealed_reader(container: Container) -> Callable[[int, int], list[tuple[int, Any]]]:
    """The store's events with personal fields left sealed: what goes on the bus and what the
    projections read (§8; projections.personal)."""
    from infra.eventstore import notification_reader

    return notification_reader(container.app)


def stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def _container(settings: Settings) -> Container:
    if not settings.kafka_bootstrap:
        raise SystemExit("CRM_KAFKA_BOOTSTRAP is not set: the relay and the projection "
                         "consumers only run in distributed mode")
    return build(settings, start_follower=False)


def run_relay(settings: Settings, stop: threading.Event | None = None, *,
              progress_seconds: float = 60.0) -> None:
    """Follow the store and publish to crm.events.v1 until stopped, logging progress every
    `progress_seconds`."""
    from consumers.relay import Relay
    from infra.chain import chain_hashes

    container = _container(settings)
    stop = stop or stop_on_signals()
    try:
        relay = Relay(container.engine, sealed_reader(container),
                      kafka_port(str(settings.kafka_bootstrap)),
                      Topics(partitions=settings.kafka_partitions),
                      hash_of=lambda positions: chain_hashes(container.app, positions),
                      store_head=container.store_position, progress_seconds=progress_seconds)
        log.info("relay starting at store position %d", relay.position)
        relay.run(stop)
    finally:
        container.close()


def run_consume(settings: Settings, stop: threading.Event | None = None) -> None:
    """Feed the read models from crm.events.v1 (group crm-projections) until stopped."""
    from consumers.projector import Projector

    container = _container(settings)
    stop = stop or stop_on_signals()
    try:
        projector = Projector(container.runner, kafka_port(str(settings.kafka_bootstrap)),
                              Topics(), client_id=f"crm-projector-{os.getpid()}")
        log.info("projection consumer starting at position %d", container.runner.position())
        projector.run(stop)
    finally:
        container.close()


def redrive(settings: Settings) -> RedriveReport:
    """Re-apply the parked events to the projections that failed them (after a fix)."""
    from consumers import dlq

    container = build(settings, start_follower=False)
    try:
        return dlq.redrive(container.engine, container.runner.projections,
                          runner=container.runner)
    finally:
        container.close()
