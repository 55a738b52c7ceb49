"""Issue 22.5: a downstream consumer written from the docs alone with another Kafka client
(confluent-kafka, tests/integration/downstream_confluent.py) proves it holds every event once,
against `crm relay` run as documented: its digest and count equal the relay's checkpoint, and
the checkpoint's topic id is the admin client's once converted as docs/bus.md says. The relay
logs its progress meanwhile."""

from __future__ import annotations

import ast
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from consumers import relay_state
from consumers.cloudevents import is_published
from infra.eventstore import notification_reader
from tests.integration import downstream_confluent as downstream
from tests.integration.bus_support import bulk_clients, every_event_type, wait_for
from tests.kafka_broker import TansuBroker, fresh_kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[2]
PROGRESS = re.compile(r"relay progress: position (\d+) .* lag ([\d,]+) positions")


class Process:
    """`crm relay` as its own process, its stderr collected line by line."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from api.cli import main; main()", *args], cwd=ROOT,
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def progress(self) -> list[tuple[int, int]]:
        return [(int(m[1]), int(m[2].replace(",", ""))) for m in map(PROGRESS.search, self.lines)
                if m]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        self._reader.join(5)
        return code


def test_the_downstream_consumer_needs_no_project_code() -> None:
    source = Path(downstream.__file__).read_text()
    tops = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            tops.add(node.module.split(".")[0])
    assert tops - set(sys.stdlib_module_names) == {"confluent_kafka"}


def test_the_printed_topic_id_converts_to_the_checkpoints_form() -> None:
    dashed = "01a24789-6d27-7e31-ae8a-49f21318ff4e"  # the example of docs/bus.md
    assert downstream.dashed_topic_id("AaJHiW0nfjGuiknyExj/Tg") == dashed  # librdkafka
    assert downstream.dashed_topic_id("AaJHiW0nfjGuiknyExj_Tg") == dashed  # Java tools
    assert "AaJHiW0nfjGuiknyExj/Tg" in (ROOT / "docs" / "bus.md").read_text()


def test_a_confluent_kafka_consumer_proves_it_has_every_event_once(
        api: Api, fresh_kafka_broker: TansuBroker) -> None:  # noqa: F811
    every_event_type(api)
    bulk_clients(api, clients=150)
    # An idempotency record too: a store position that is never published (a gap on the topic).
    api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Once"},
           headers={"Idempotency-Key": "downstream-once"})
    head = api.store_position()
    published = [(p, e) for p, e in notification_reader(api.container.app)(1, 1_000_000)
                 if is_published(e)]
    relay = Process(["relay", "--progress-seconds", "0.5"],
                    {"CRM_DATABASE_URL": api.container.settings.database_url,
                     "CRM_KAFKA_BOOTSTRAP": fresh_kafka_broker.bootstrap})
    try:
        # The relay says it is caught up: its progress line reaches the head with no lag.
        wait_for(lambda: (head, 0) in relay.progress() or relay.process.poll() is not None,
                 "the relay's progress line at the store head", timeout=90)
        assert relay.process.poll() is None, "\n".join(relay.lines[-20:])
        # ... and goes on saying so at its interval while idle (a healthy run is not silent).
        wait_for(lambda: relay.progress().count((head, 0)) >= 2, "a second progress line")
        # The checkpoint covering the head (published every 5 s when something changed).
        wait_for(lambda: any(c["relay_position"] >= head for c in
                             downstream.latest_checkpoints(fresh_kafka_broker.bootstrap,
                                                           f"probe-{time.monotonic_ns()}")
                             .values()), "a checkpoint up to the head", timeout=30)
        verdicts = downstream.verify(fresh_kafka_broker.bootstrap, "analytics-team")
    finally:
        code = relay.stop()
    assert code == 0, "\n".join(relay.lines[-20:])

    # Every partition (however many the topic has) proven against its own checkpoint.
    state = relay_state.load(api.container.engine, downstream.EVENTS)
    assert set(verdicts) == set(range(len(verdicts))) and set(state.partitions) <= set(verdicts)
    for number, found in verdicts.items():
        checkpoint = found["checkpoint"]
        if checkpoint is None:  # a partition no client's key maps to
            assert found["kept"] == 0 and number not in state.partitions
            continue
        assert found["verdict"] == "verified", found
        assert downstream.dashed_topic_id(found["topic_id"]) == checkpoint["topic_id"]
        assert found["kept"] == checkpoint["count"] and found["skipped"] == []
        # The same figures the relay recorded (its checkpoint's source, in its database).
        tally = state.partitions[number].tally
        assert (found["digest"], found["kept"], checkpoint["topic_id"]) == (
            tally.digest, tally.count, state.topic_id)
    assert sum(f["kept"] for f in verdicts.values()) == len(published) > 600
    assert max(f["last_position"] for f in verdicts.values()) == published[-1][0]
