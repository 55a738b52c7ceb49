"""Scale-out on Kafka (issue 19): `crm relay` publishes to a topic of 4 partitions, three `crm
consume` processes of group crm-projections apply them into one PostgreSQL read-model database;
one is killed (-9) while events keep coming and started again, another stopped cleanly and
started again. Every projection then equals a single-process `crm replay` of the same store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from consumers.cloudevents import is_published
from infra.bootstrap import Container, build
from infra.eventstore import notification_reader
from infra.settings import Settings
from projections.base import partition_tracking, positions
from tests.integration.bus_support import bulk_clients, every_event_type, wait_for
from tests.kafka_broker import TansuBroker, fresh_kafka_broker, kafka_broker  # noqa: F401
from tests.support import TEST_MASTER_KEY, Api, fresh_pg_database

pytestmark = [pytest.mark.kafka, pytest.mark.postgres]

DEADLINE_S = 90.0  # group joins and rebalances on Tansu take seconds each
PARTITIONS = 4


class Processes:
    """`crm` commands as child processes, each logging to a file of its own."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.tmp = tmp
        self.env = env
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.starts: dict[str, int] = {}

    def start(self, name: str, *args: str) -> None:
        self.starts[name] = self.starts.get(name, 0) + 1
        log = (self.tmp / f"{name}.{self.starts[name]}.log").open("wb")
        self.running[name] = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", *args],
            cwd=self.tmp, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.{self.starts[name]}.log").read_text(errors="replace")

    def alive(self, name: str) -> bool:
        return self.running[name].poll() is None

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        process.kill()  # SIGKILL: no clean-up of any kind
        process.wait(timeout=DEADLINE_S)

    def stop(self, name: str) -> int:
        process = self.running.pop(name)
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=DEADLINE_S)

    def close(self) -> None:
        for name in list(self.running):
            process = self.running.pop(name)
            process.kill()
            process.wait(timeout=DEADLINE_S)


@contextmanager
def distributed(tmp: Path, bootstrap: str) -> Iterator[tuple[Container, Processes]]:
    with fresh_pg_database() as url:
        settings = Settings(database_url=url, master_key=TEST_MASTER_KEY,
                            kafka_bootstrap=bootstrap, kafka_partitions=PARTITIONS)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
        env.update({"CRM_DATABASE_URL": url, "CRM_MASTER_KEY": TEST_MASTER_KEY,
                    "CRM_KAFKA_BOOTSTRAP": bootstrap, "CRM_KAFKA_PARTITIONS": str(PARTITIONS)})
        # The API process: it writes to the store; the read models are the consumers' to feed.
        container = build(settings, start_follower=False)
        processes = Processes(tmp, env)
        try:
            yield container, processes
        finally:
            processes.close()
            container.close()


def paying_clients(api: Api, clients: int) -> None:
    """Clients with a payment each, in one hour: every partition adds to the same sums."""
    items: list[dict[str, Any]] = []
    for _ in range(clients):
        client = str(uuid.uuid4())
        items += [{"command": "register_client", "data": {
                      "id": client, "kind": "customer", "form": "person", "name": "Payer"}},
                  {"command": "receive_payment", "data": {
                      "client_id": client, "amount": "10.25", "currency": "EUR"}}]
    api.ok("POST", "/v1/batch", {"items": items})


def last_published(container: Container) -> int:
    read = notification_reader(container.app)
    return max(p for p, e in read(1, 10_000_000) if is_published(e))


def partition_progress(container: Container) -> dict[int, int]:
    """Partition -> the least position every projection has applied from it."""
    pt = partition_tracking.c
    with container.engine.connect() as conn:
        return {p: n for p, n in conn.execute(
            select(pt.partition, func.min(pt.position)).group_by(pt.partition))}


def watermark(container: Container) -> int:
    names = [p.name for p in container.runner.projections]
    with container.engine.connect() as conn:
        seen = positions(conn, names)
    return min(seen.get(n, 0) for n in names)


def test_four_partitions_three_consumer_processes_one_killed_equal_a_single_process_replay(
        fresh_kafka_broker: TansuBroker, tmp_path: Path) -> None:  # noqa: F811
    with distributed(tmp_path, fresh_kafka_broker.bootstrap) as (container, processes):
        api = Api(container)
        processes.start("relay", "relay", "--progress-seconds", "5")
        consumers = ["consumer-a", "consumer-b", "consumer-c"]
        for name in consumers:
            processes.start(name, "consume")
        every_event_type(api)  # reference data of every kind, and every event type
        bulk_clients(api, clients=60)
        paying_clients(api, 40)

        def applying(name: str) -> bool:
            assert processes.alive(name), processes.log(name)[-3000:]
            return "applying TopicPartition" in processes.log(name)

        # The group gave every process partitions, and each partition has been applied from.
        try:
            wait_for(lambda: all(applying(n) for n in consumers)
                     and len(partition_progress(container)) == PARTITIONS
                     and min(partition_progress(container).values()) > 0,
                     "three consumers applying all four partitions", DEADLINE_S)
        except AssertionError as error:
            raise AssertionError(f"{error}: {partition_progress(container)}\n" + "\n".join(
                f"{n}: {processes.log(n)[-1500:]}" for n in consumers)) from None
        before_kill = last_published(container)

        processes.kill("consumer-a")  # kill -9 while the stream goes on
        bulk_clients(api, clients=40)
        paying_clients(api, 40)
        processes.start("consumer-a", "consume")
        bulk_clients(api, clients=40)
        assert processes.stop("consumer-b") == 0  # a clean stop: its partitions move
        bulk_clients(api, clients=40)
        paying_clients(api, 40)
        processes.start("consumer-b", "consume")
        bulk_clients(api, clients=40)
        target = last_published(container)
        assert target > before_kill

        wait_for(lambda: watermark(container) >= target and all(
                     processes.alive(n) for n in [*consumers, "relay"]),
                 f"the read models at position {target}", DEADLINE_S)
        progress = partition_progress(container)
        assert sorted(progress) == list(range(PARTITIONS))
        assert all(0 < position <= target for position in progress.values())
        for name in consumers:
            processes.stop(name)
        processes.stop("relay")

        replay = subprocess.run(
            [sys.executable, "-c", "from api.cli import main; main()", "replay", "--json"],
            cwd=tmp_path, env=processes.env, capture_output=True, text=True, timeout=300,
            check=False)
        report: dict[str, Any] = json.loads(replay.stdout)
        assert report["live_error"] is None
        assert {p["projection"]: (p["match"], p["difference"], p["live_position"])
                for p in report["projections"]} == {
            p.name: (True, None, target) for p in container.runner.projections}
        assert report["ok"], replay.stdout[-3000:]


def test_a_one_partition_topic_of_an_earlier_version_is_kept_and_applied(
        api: Api, kafka_broker: Any, tmp_path: Path) -> None:  # noqa: F811
    from dataclasses import replace

    from tests.integration.bus_support import (
        digests,
        embedded_digests,
        projector_for,
        read_model,
        read_topic,
        relay_for,
        unique_topics,
    )

    bootstrap = kafka_broker.bootstrap
    old = unique_topics()  # as an earlier version made it: one partition
    from consumers.main import kafka_port

    kafka_port(bootstrap).ensure_topics(old.layout())
    bulk_clients(api, clients=6)
    relay = relay_for(api, bootstrap, replace(old, partitions=PARTITIONS))  # configured: 4
    relay.run_until_caught_up()
    relay.close()
    assert relay.topics.partitions == 1  # it published with the topic's own count
    records = read_topic(bootstrap, old.events)
    assert {r.partition for r in records} == {0} and len(records) == relay.state.partitions[
        0].tally.count
    engine, runner = read_model(tmp_path, "read", personal=api.container.keyring)
    projector = projector_for(api, runner, bootstrap, old)
    target = last_published(api.container)
    try:
        deadline = time.monotonic() + DEADLINE_S
        while runner.position() < target:
            projector.poll_once()
            assert time.monotonic() < deadline, "the consumer did not catch up"
    finally:
        projector.close()
    assert digests(engine) == embedded_digests(api.container, target)
