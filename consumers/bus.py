"""The bus as the consumers see it: topic names and the Kafka operations a process main injects.

consumers/ never imports infra/ (dependency rule): a process main (or a test) builds a `KafkaPort`
from infra.kafka, so the relay and the projector stay plain loops around injected clients.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

EVENTS_TOPIC = "crm.events.v1"


@dataclass(frozen=True)
class Topics:
    """The event topic and its companions; tests use unique bases so runs never collide."""

    events: str = EVENTS_TOPIC
    checkpoints: str = EVENTS_TOPIC + ".checkpoints"
    dlq: str = EVENTS_TOPIC + ".dlq"
    # Partitions of the events topic when the relay creates it (keys are client ids: a client's
    # events stay in one partition, in store order). Each projection consumer of the group
    # applies the partitions it is given (docs/bus.md, "Partitions").
    partitions: int = 6

    @classmethod
    def named(cls, base: str, partitions: int = 1) -> Topics:
        """Topics under their own base name (tests; one partition unless told)."""
        return cls(base, base + ".checkpoints", base + ".dlq", partitions)

    def layout(self) -> dict[str, int]:
        """Topic -> partition count, as the relay creates them."""
        return {self.events: self.partitions, self.checkpoints: 1, self.dlq: 1}


@dataclass(frozen=True)
class KafkaPort:
    """Kafka clients and admin calls (infra.kafka in production)."""

    producer: Callable[[str], Any]  # client_id -> idempotent KafkaProducer (acks=all)
    consumer: Callable[[str | None, str, list[str] | None], Any]  # group, client_id, topics
    ensure_topics: Callable[[dict[str, int]], None]
    topic_ids: Callable[[list[str]], dict[str, str]]
    delete_topics: Callable[[list[str]], None]


def close_quietly(client: Any, **kwargs: Any) -> None:
    """Close a Kafka client whose broker may be gone; a hang here would block recovery."""
    if client is None:
        return
    with contextlib.suppress(Exception):  # the client is being discarded either way
        client.close(**kwargs)


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; returns whether it held."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def recreate_topics(port: KafkaPort, layout: dict[str, int], timeout: float = 30.0) -> str:
    """Drop the topics (if present) and create them empty; returns the events topic's new id.

    A log that lost data is never appended to: a clean topic lets consumers trust that positions
    in a partition only repeat as whole re-published runs (docs/bus.md, "Delivery")."""
    names = list(layout)
    present = [n for n in names if n in port.topic_ids(names)]
    if present:
        port.delete_topics(present)
        if not wait_until(lambda: not set(port.topic_ids(names)) & set(present), timeout, 0.1):
            raise TimeoutError(f"topics {present} still present {timeout}s after deletion")
    port.ensure_topics(layout)
    first = next(iter(layout))
    ids: dict[str, str] = {}

    def created() -> bool:
        ids.update(port.topic_ids([first]))
        return first in ids

    if not wait_until(created, timeout, 0.1):
        raise TimeoutError(f"topic {first} has no id {timeout}s after creation")
    return ids[first]


_log = logging.getLogger(__name__)


class PollLoop:
    """`poll_once()` until stopped. Broker or database trouble is retried with back-off (the
    clients are discarded and rebuilt), never skipped. Subclasses provide `poll_once`,
    `_discard_clients` and `label` (for the log)."""

    label = "consumer"
    last_error: str | None = None
    _stop: threading.Event | None = None

    def poll_once(self) -> int:
        raise NotImplementedError

    def _discard_clients(self) -> None:
        raise NotImplementedError

    def run(self, stop: threading.Event) -> None:
        self._stop = stop
        backoff = 0.2
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                    self.last_error, backoff = None, 0.2
                except Exception as error:  # broker or database trouble: retry, never skip
                    self.last_error = f"{type(error).__name__}: {error}"
                    _log.warning("%s failed (%s); retrying", self.label, self.last_error)
                    self._discard_clients()
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
        finally:
            self.close()

    def close(self) -> None:
        self._discard_clients()
