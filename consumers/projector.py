"""The projection consumer (`crm consume`): crm.events.v1 -> the same projections as embedded mode.

Progress is the projections' own tracked store position, written in the read-model transaction
(Runner.apply_page); Kafka offsets are committed only after that commit and serve as a hint.
Anything delivered again (restart, rebalance, a re-published run) is at or below the tracked
position and changes nothing. The tracked position is global, so this consumer needs the store's
global order: the topic has ONE partition (docs/bus.md, "Partitioning"); more consumer processes
in the group are hot standbys that take over on a rebalance.

It never reads past a hole: each record names the previous position in its partition
(`prevposition`); one above the tracked position means records were skipped (a re-created log
read from a stale offset), and the consumer rewinds to the start of the log. So does a fetch
position past the log's high watermark (Tansu does not report out-of-range offsets).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
from prometheus_client import Counter

from consumers import dlq
from consumers.bus import KafkaPort, PollLoop, Topics, close_quietly
from consumers.cloudevents import CloudEventError, from_cloudevent
from consumers.dlq import Parked, RetryPolicy, backoff_sleep, is_transient
from domain.base import event_id_of
from projections.base import Runner

log = logging.getLogger(__name__)

APPLIED = Counter("crm_projector_events_total", "Events the projection consumer applied")
REWINDS = Counter("crm_projector_rewinds_total", "Times the consumer rewound a re-created log")

Item = tuple[int, Any, Any]  # (position, domain event, Kafka record)


class GapError(RuntimeError):
    """The log lacks events the read models have not applied; `crm replay` can backfill them."""


def _no_reader(_start: int, _limit: int) -> list[tuple[int, Any]]:
    return []  # pages come from Kafka, never from the store


class Projector(PollLoop):
    label = "projection consumer"

    def __init__(self, runner: Runner, port: KafkaPort, topics: Topics | None = None, *,
                 group_id: str = "crm-projections", client_id: str = "crm-projector",
                 page_size: int = 2000, retry: RetryPolicy | None = None,
                 poll_timeout_ms: int = 200, clock: Callable[[], datetime] | None = None,
                 unseal: Callable[[Any], Any] | None = None,
                 after_page: Callable[[int], None] | None = None) -> None:
        self.topics = topics or Topics()
        if self.topics.partitions != 1:
            raise ValueError("the projection consumer needs the store's global order: "
                             f"{self.topics.events} must have one partition")
        self.runner = runner
        self.port = port
        self.group_id = group_id
        self.client_id = client_id
        self.page_size = page_size
        self.retry = retry or RetryPolicy()
        self.poll_timeout_ms = poll_timeout_ms
        self.clock = clock or (lambda: datetime.now(UTC))
        # Opens the sealed personal fields (the process main passes the keyring's); None leaves
        # events as published.
        self.unseal = unseal
        self.after_page = after_page  # a test hook: called after each read-model commit
        dlq.create(runner.engine)
        # One runner per projection for the slow path, so one projection's poison event does
        # not hold back the others.
        self._singles = {p.name: Runner(runner.engine, [p], _no_reader) for p in runner.projections}
        runner.parks = False  # failures come back here: retried, then parked and published
        for single in self._singles.values():
            single.parks = False
            single.after_page = runner.after_page  # e.g. scrubbing freed pages after an erasure
        self.consumer: Any = None
        self._producer: Any = None
        self._rewound: set[Any] = set()
        self._checked_layout = False
        self._stop: threading.Event | None = None
        self.received = 0  # records read, repeats included
        self.applied = 0  # events handed to the projections (parked ones included)
        self.parked = 0
        self.rewinds = 0
        self.last_error: str | None = None

    # -- the loop ------------------------------------------------------------------------------

    def poll_once(self) -> int:
        """One poll: apply what came, rewind a re-created log, then commit offsets."""
        if self.consumer is None:
            self.consumer = self.port.consumer(self.group_id, self.client_id, [self.topics.events])
            self._checked_layout = False
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
        self._check_layout()
        handled = 0
        for tp, records in batches.items():
            handled += self._handle(tp, records)
        self._check_watermarks()
        if batches:
            self._commit()
        return handled

    # -- one partition's records ---------------------------------------------------------------

    def _handle(self, tp: Any, records: Sequence[Any]) -> int:
        self.received += len(records)
        tracked = self.runner.position()
        items: list[Item] = []
        for record in records:
            try:
                ce = orjson.loads(record.value)
                position, prev = int(ce["position"]), ce.get("prevposition")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                self._apply(items)
                items = []
                self._park_unreadable(record, f"not a CloudEvent: {error}")
                continue
            if position <= tracked:
                continue  # applied before: a redelivery or a re-published run
            if prev is not None and prev > tracked:
                self._apply(items)
                items = []
                tracked = self.runner.position()  # another consumer may have moved on
                if prev > tracked:
                    self._rewind(tp, f"record at offset {record.offset} follows position {prev}, "
                                     f"but the read models are at {tracked}")
                    return len(records)
            try:
                _position, event = from_cloudevent(ce)
                if self.unseal is not None:
                    event = self.unseal(event)
            except CloudEventError as error:
                self._apply(items)
                items = []
                self._park_every_projection(position, ce, record, str(error))
                tracked = position
                continue
            items.append((position, event, record))
            tracked = position
        self._apply(items)
        self._rewound.discard(tp)  # the log's start was read: a later hole is a new one
        return len(records)

    def _apply(self, items: list[Item]) -> None:
        for start in range(0, len(items), self.page_size):
            page = items[start:start + self.page_size]
            try:
                self._transient_retry(partial(self.runner.apply_page,
                                              [(p, e) for p, e, _r in page]))
            except Exception as error:
                if is_transient(error):
                    raise
                self._apply_slowly(page)  # some event of the page fails: find it
            self.applied += len(page)
            APPLIED.inc(len(page))
            if self.after_page is not None:
                self.after_page(page[-1][0])

    def _apply_slowly(self, page: list[Item]) -> None:
        """Per projection, event by event: the poison one is retried, then parked."""
        for name, single in self._singles.items():
            try:
                self._transient_retry(partial(single.apply_page,
                                              [(p, e) for p, e, _r in page]))
                continue
            except Exception as error:
                if is_transient(error):
                    raise
            for position, event, record in page:
                self._apply_one(name, single, position, event, record)

    def _apply_one(self, name: str, single: Runner, position: int, event: Any,
                   record: Any) -> None:
        error: Exception | None = None
        delays = [*self.retry.delays(), None]
        for delay in delays:
            try:
                self._transient_retry(partial(single.apply_page, [(position, event)]))
                return
            except Exception as failure:
                if is_transient(failure):
                    raise
                error = failure
            if delay is not None:
                backoff_sleep(delay, self._stop)
        ref = str(event_id_of(event.originator_id, event.originator_version))
        self._park(Parked(name, ref, position, type(event).__name__,
                          f"{type(error).__name__}: {error}", len(delays), record.value,
                          self._source(record)))

    def _transient_retry(self, action: Callable[[], None]) -> None:
        delay = 0.2
        while True:
            try:
                action()
                return
            except Exception as error:
                if not is_transient(error) or (self._stop is not None and self._stop.is_set()):
                    raise
                log.warning("read-model database unavailable (%s); retrying", error)
                backoff_sleep(delay, self._stop)
                delay = min(delay * 2, 5.0)

    # -- parking -------------------------------------------------------------------------------

    def _park_unreadable(self, record: Any, error: str) -> None:
        ref = f"{record.topic}/{record.partition}/{record.offset}"
        self._park(Parked(dlq.ALL, ref, None, None, error, 1, record.value, self._source(record)))

    def _park_every_projection(self, position: int, ce: dict[str, Any], record: Any,
                               error: str) -> None:
        for name in self._singles:
            self._park(Parked(name, str(ce.get("id") or position), position, ce.get("type"),
                              error, 1, record.value, self._source(record)))

    def _park(self, parked: Parked) -> None:
        if self._producer is None:
            self._producer = self.port.producer(self.client_id + "-dlq")
        key = None if parked.position is None else str(parked.position).encode()
        self._producer.send(self.topics.dlq, key=key, value=parked.dlq_value(self.group_id))
        self._producer.flush(timeout=15)
        with self.runner.engine.begin() as conn:
            dlq.record(conn, parked, self.clock())
        self.parked += 1
        log.error("parked event %s for %s after %d attempts: %s", parked.event_ref,
                  parked.projection, parked.attempts, parked.error)

    @staticmethod
    def _source(record: Any) -> dict[str, Any]:
        return {"topic": record.topic, "partition": record.partition, "offset": record.offset}

    # -- the log under us ----------------------------------------------------------------------

    def _check_layout(self) -> None:
        if self._checked_layout or not self.consumer.assignment():
            return
        partitions = self.consumer.partitions_for_topic(self.topics.events) or set()
        if len(partitions) > 1:
            raise ValueError(f"{self.topics.events} has {len(partitions)} partitions; the "
                             "projection consumer needs one (docs/bus.md)")
        self._checked_layout = True

    def _check_watermarks(self) -> None:
        for tp in self.consumer.assignment():
            high = self.consumer.highwater(tp)
            if high is None or tp in self._rewound:
                continue
            position = self.consumer.position(tp, timeout_ms=1000)
            if position is not None and position > high:
                self._rewind(tp, f"fetch position {position} is past the high watermark {high}")

    def _rewind(self, tp: Any, reason: str) -> None:
        if tp in self._rewound:
            raise GapError(f"{reason}, even from the start of the log; "
                           "run `crm replay` to rebuild the read models from the store")
        log.warning("the log was re-created (%s): reading %s from its start", reason, tp)
        self._rewound.add(tp)
        self.rewinds += 1
        REWINDS.inc()
        self.consumer.seek_to_beginning(tp)

    def _commit(self) -> None:
        try:
            self.consumer.commit()
        except Exception as error:
            log.info("offset commit failed (%s); redelivery will be skipped by position", error)

    def _discard_clients(self) -> None:
        consumer, self.consumer = self.consumer, None
        producer, self._producer = self._producer, None
        self._rewound.clear()
        close_quietly(consumer)
        close_quietly(producer, timeout=1)


def wait_for_position(runner: Runner, position: int, timeout: float) -> bool:
    """Block until the read models reach `position` (scripts and tests)."""
    deadline = time.monotonic() + timeout
    while runner.position() < position:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
