"""Process mains for `crm ingest` and `crm webhooks`, and the wiring of the alert publisher into
a process that runs the alert scheduler (the API, in distributed mode)."""

from __future__ import annotations

import logging
import os
import threading

from consumers.alert_publisher import AlertPublisher
from consumers.ingest import Ingest
from consumers.main import kafka_port, sealed_reader, stop_on_signals
from consumers.webhooks import Dispatcher, replay
from infra.bootstrap import Container, build
from infra.settings import Settings

log = logging.getLogger(__name__)


def run_ingest(settings: Settings, stop: threading.Event | None = None) -> None:
    """Execute the commands other systems send on crm.ingest.v1 (group crm-ingest) until
    stopped; any number of processes share the partitions."""
    if not settings.kafka_bootstrap:
        raise SystemExit("CRM_KAFKA_BOOTSTRAP is not set: ingest reads crm.ingest.v1 from Kafka")
    container = build(settings, start_follower=False)
    stop = stop or stop_on_signals()
    try:
        ingest = Ingest(container.app, kafka_port(settings.kafka_bootstrap),
                        client_id=f"crm-ingest-{os.getpid()}", clock=container.clock)
        log.info("ingest consumer starting on %s", ingest.topics.commands)
        ingest.run(stop)
    finally:
        container.close()


def run_webhooks(settings: Settings, stop: threading.Event | None = None) -> None:
    """Deliver events to the webhook subscribers from the store (either mode) until stopped."""
    container = build(settings, start_follower=False)
    stop = stop or stop_on_signals()
    try:
        dispatcher = Dispatcher(container.engine, sealed_reader(container),
                                secrets=container.keyring.secrets("webhook"))
        dispatcher.run(stop)
    finally:
        container.close()


def replay_webhooks(settings: Settings, subscriber: str, from_position: int) -> None:
    container = build(settings, start_follower=False)
    try:
        Dispatcher(container.engine, sealed_reader(container),  # creates the tables if new
                   secrets=container.keyring.secrets("webhook"))
        replay(container.engine, subscriber, from_position)
    finally:
        container.close()


def start_alert_publisher(container: Container) -> AlertPublisher | None:
    """In distributed mode, also send every alert of the container's scheduler to
    crm.alerts.v1 (live through the hub, and from the alert log every few seconds)."""
    if not container.settings.kafka_bootstrap or container.alerts is None:
        return None
    publisher = AlertPublisher(container.engine, kafka_port(container.settings.kafka_bootstrap),
                               clock=container.clock)
    publisher.attach(container.alerts.hub)
    publisher.start()
    return publisher
