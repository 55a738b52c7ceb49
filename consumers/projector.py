"""The projection consumer (`crm consume`): crm.events.v1 -> the same projections as embedded mode.

The group gives each consumer process some of the topic's partitions; each partition's records
come in store order. Progress is the projections' own tracked store position *per partition*
(projection_partitions), written in the read-model transaction with the offset after the page
(Runner.apply_page). When the group assigns a partition, the consumer seeks it to that recorded
offset; Kafka's committed offsets are only a hint for partitions never applied here. Anything
delivered again (restart, rebalance, a re-published run) is at or below the partition's tracked
position and changes nothing. After its pages a consumer raises the projections' global position
to the common watermark: every event up to it is applied, whatever its partition (docs/bus.md,
"Partitions").

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
from sqlalchemy import func, select

from consumers import dlq, relay_state
from consumers.bus import KafkaPort, PollLoop, Topics, close_quietly
from consumers.cloudevents import CloudEventError, from_cloudevent
from consumers.dlq import Parked, RetryPolicy, backoff_sleep, is_transient
from domain.base import event_id_of
from projections.base import Partition, Runner, partition_tracking, raise_position

log = logging.getLogger(__name__)

APPLIED = Counter("crm_projector_events_total", "Events the projection consumer applied")
REWINDS = Counter("crm_projector_rewinds_total", "Times the consumer rewound a re-created log")

Item = tuple[int, Any, Any]  # (position, domain event, Kafka record)


class TopicMissing(RuntimeError):
    """The events topic is not there yet: retried (PollLoop) until the relay creates it."""


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
        relay_state.create(runner.engine)  # read for the watermark (empty without a relay here)
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
        self._partitions = 0  # the topic's partition count (read once per consumer)
        self._tracked: dict[Any, int] = {}  # assigned partition -> its tracked position
        self._watermark_at = float("-inf")
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
            # Subscribed to a topic that does not exist yet, a client would learn of it only at
            # its next metadata refresh (minutes): wait for the relay to create it instead.
            if self.topics.events not in self.port.topic_ids([self.topics.events]):
                raise TopicMissing(f"{self.topics.events} does not exist yet (crm relay "
                                   "creates it)")
            self.consumer = self.port.consumer(self.group_id, self.client_id, [self.topics.events])
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
        sought = self._follow_assignment()
        handled = 0
        for tp, records in batches.items():
            if tp in sought or tp not in self._tracked:
                continue  # fetched before the seek to its recorded offset: read again from there
            handled += self._handle(tp, records)
        self._check_watermarks()
        if batches:
            self._commit()
        self._raise_watermark(False)  # when idle: the relay may have saved since
        return handled

    # -- the partitions the group gives this process -------------------------------------------

    def _partition(self, tp: Any) -> Partition:
        return Partition(tp.topic, tp.partition, self._partitions)

    def _follow_assignment(self) -> set[Any]:
        """Seek each newly assigned partition to the offset its tracking rows recorded (the
        read models are the truth; a committed offset is used only where they have none) and
        forget partitions given to others. Returns the partitions sought."""
        assigned = set(self.consumer.assignment())
        for tp in set(self._tracked) - assigned:
            del self._tracked[tp]
            self._rewound.discard(tp)
        fresh = assigned - set(self._tracked)
        if fresh and not self._partitions:
            self._partitions = len(self.consumer.partitions_for_topic(self.topics.events) or ())
        sought = set()
        for tp in sorted(fresh, key=lambda t: t.partition):
            position, offset = self.runner.partition_position(self._partition(tp))
            self._tracked[tp] = position
            if offset is not None:
                self.consumer.seek(tp, offset)
                sought.add(tp)
            log.info("applying %s from offset %s (position %d)", tp,
                     "committed" if offset is None else offset, position)
        return sought

    # -- one partition's records ---------------------------------------------------------------

    def _handle(self, tp: Any, records: Sequence[Any]) -> int:
        self.received += len(records)
        partition = self._partition(tp)
        tracked = self._tracked[tp]
        items: list[Item] = []
        for record in records:
            try:
                ce = orjson.loads(record.value)
                position, prev = int(ce["position"]), ce.get("prevposition")
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as error:
                self._apply(partition, items)
                items = []
                self._park_unreadable(record, f"not a CloudEvent: {error}")
                continue
            if position <= tracked:
                continue  # applied before: a redelivery or a re-published run
            if prev is not None and prev > tracked:
                self._apply(partition, items)
                items = []
                # another consumer may have moved on (a partition that moved and came back)
                tracked = self.runner.partition_position(partition)[0]
                self._tracked[tp] = tracked
                if prev > tracked:
                    self._rewind(tp, f"record at offset {record.offset} follows position {prev}, "
                                     f"but the read models are at {tracked}")
                    return len(records)
            try:
                _position, event = from_cloudevent(ce)
                if self.unseal is not None:
                    event = self.unseal(event)
            except CloudEventError as error:
                self._apply(partition, items)
                items = []
                self._park_every_projection(partition, position, ce, record, str(error))
                tracked = self._tracked[tp] = position
                continue
            items.append((position, event, record))
            tracked = position
        self._apply(partition, items)
        self._rewound.discard(tp)  # the log's start was read: a later hole is a new one
        return len(records)

    def _apply(self, partition: Partition, items: list[Item]) -> None:
        for start in range(0, len(items), self.page_size):
            page = items[start:start + self.page_size]
            next_offset = page[-1][2].offset + 1
            try:
                self._transient_retry(partial(self.runner.apply_page,
                                              [(p, e) for p, e, _r in page], partition,
                                              next_offset))
            except Exception as error:
                if is_transient(error):
                    raise
                self._apply_slowly(partition, page)  # some event of the page fails: find it
            self._tracked[_tp_of(page[-1][2])] = page[-1][0]
            self._raise_watermark(True)
            self.applied += len(page)
            APPLIED.inc(len(page))
            if self.after_page is not None:
                self.after_page(page[-1][0])

    def _apply_slowly(self, partition: Partition, page: list[Item]) -> None:
        """Per projection, event by event: the poison one is retried, then parked."""
        for name, single in self._singles.items():
            try:
                self._transient_retry(partial(single.apply_page,
                                              [(p, e) for p, e, _r in page], partition,
                                              page[-1][2].offset + 1))
                continue
            except Exception as error:
                if is_transient(error):
                    raise
            for position, event, record in page:
                self._apply_one(name, single, partition, position, event, record)

    def _apply_one(self, name: str, single: Runner, partition: Partition, position: int,
                   event: Any, record: Any) -> None:
        error: Exception | None = None
        delays = [*self.retry.delays(), None]
        for delay in delays:
            try:
                self._transient_retry(partial(single.apply_page, [(position, event)],
                                              partition, record.offset + 1))
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
                          self._source(record)), partition, record.offset + 1)

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

    def _park_every_projection(self, partition: Partition, position: int, ce: dict[str, Any],
                               record: Any, error: str) -> None:
        for name in self._singles:
            self._park(Parked(name, str(ce.get("id") or position), position, ce.get("type"),
                              error, 1, record.value, self._source(record)),
                       partition, record.offset + 1)

    def _park(self, parked: Parked, partition: Partition | None = None,
              next_offset: int | None = None) -> None:
        if self._producer is None:
            self._producer = self.port.producer(self.client_id + "-dlq")
        key = None if parked.position is None else str(parked.position).encode()
        self._producer.send(self.topics.dlq, key=key, value=parked.dlq_value(self.group_id))
        self._producer.flush(timeout=15)
        with self.runner.engine.begin() as conn:
            dlq.record(conn, parked, self.clock(), partition, next_offset)
        self.parked += 1
        log.error("parked event %s for %s after %d attempts: %s", parked.event_ref,
                  parked.projection, parked.attempts, parked.error)

    @staticmethod
    def _source(record: Any) -> dict[str, Any]:
        return {"topic": record.topic, "partition": record.partition, "offset": record.offset}

    # -- the log under us ----------------------------------------------------------------------

    def _raise_watermark(self, applied: bool) -> None:
        """Raise the projections' global position to the common watermark W: every event up
        to W is applied in every partition. With the relay's state in this database (it saves
        `relay_position` R and, per partition, the last position it published there), a
        partition applied up to its last published position is complete up to R; otherwise
        up to its own tracked position. W is the least of these. Without the relay's state, W
        is the least tracked position of all partitions. Recomputed after pages, and at most
        every second when idle (the relay may save after the events were applied)."""
        if not self._partitions:
            self._partitions = len(self.consumer.partitions_for_topic(self.topics.events) or ())
        now = time.monotonic()
        if not self._partitions or (not applied and now - self._watermark_at < 1.0):
            return
        self._watermark_at = now
        try:
            self._raise_watermark_now()
        except Exception as error:  # a hint for readers: the next page raises it again
            if not is_transient(error):
                raise
            log.info("global position not raised this time (%s)", error)

    def _raise_watermark_now(self) -> None:
        names = [p.name for p in self.runner.projections]
        relay = relay_state.load(self.runner.engine, self.topics.events)
        pt = partition_tracking.c
        with self.runner.engine.begin() as conn:
            tracked: dict[int, int] = {}
            for row in conn.execute(
                    select(pt.partition, func.min(pt.position))
                    .where(pt.topic == self.topics.events, pt.projection.in_(names),
                           pt.partitions == self._partitions)
                    .group_by(pt.partition)
                    .having(func.count() == len(names))):
                tracked[row[0]] = row[1]
            if len(tracked) < self._partitions:
                return  # a partition no consumer has started yet
            if relay.position:
                last = {p: s.tally.last_position for p, s in relay.partitions.items()}
                watermark = min(relay.position if applied_to >= last.get(p, 0) else applied_to
                                for p, applied_to in tracked.items())
            else:
                watermark = min(tracked.values())
            raise_position(conn, names, watermark)

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
        self._tracked.clear()
        self._partitions = 0
        close_quietly(consumer)
        close_quietly(producer, timeout=1)


def _tp_of(record: Any) -> Any:
    from kafka import TopicPartition

    return TopicPartition(record.topic, record.partition)


def wait_for_position(runner: Runner, position: int, timeout: float) -> bool:
    """Block until the read models reach `position` (scripts and tests)."""
    deadline = time.monotonic() + timeout
    while runner.position() < position:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
