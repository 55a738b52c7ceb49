"""The relay (`crm relay`): publishes the store's events to crm.events.v1 in store order.

At least once, never a gap: pages of the store are sent with the idempotent producer (acks=all),
and a position is saved (with the per-partition tallies, in one transaction) only once the broker
has acknowledged every event up to it. Sending runs one page ahead of saving: while the broker
acknowledges page N, page N+1 is read, encoded and sent (store order holds: one producer, one
connection, idempotent sequence numbers). A page that is not full (the relay has caught up) is
flushed and saved at once, with everything before it. A crash
re-publishes what was sent after the saved position (at most the pages in flight); consumers
recognise the repeats by position. Before publishing (and every `verify_seconds`) the relay checks
the broker still holds what it published: the topic exists, has the id recorded at creation, and
its fetch high watermark is not below the recorded next offset; an acknowledged offset behind the
recorded one also counts. If not, the broker lost data: the topics are re-created and everything
is re-published from the start of the store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from prometheus_client import Counter, Gauge
from sqlalchemy import Engine

from consumers import relay_state
from consumers.bus import KafkaPort, Topics, close_quietly, recreate_topics
from consumers.checkpoints import Checkpoint
from consumers.cloudevents import is_published, key_of, to_value
from consumers.relay_state import PartitionState, RelayState

log = logging.getLogger(__name__)

PUBLISHED = Counter("crm_relay_published_total", "Events the relay published (with repeats)")
RECOVERIES = Counter("crm_relay_recoveries_total",
                     "Times the relay found the broker had lost data and re-published")
POSITION = Gauge("crm_relay_position", "Store position the relay has published up to")

Reader = Callable[[int, int], Sequence[tuple[int, Any]]]
# Positions -> the tamper-evidence hash of each (§7); positions without one are left out.
HashLookup = Callable[[Sequence[int]], Mapping[int, str]]


def no_hashes(_positions: Sequence[int]) -> Mapping[int, str]:
    """The default hook: no `hash` extension until the store provides one."""
    return {}


def partition_of(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, as the Java client): downstream can predict it, and
    the relay knows each event's partition before sending (for `prevposition`)."""
    if partitions == 1:
        return 0
    from kafka.partitioner.default import murmur2

    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


class BrokerDataLoss(Exception):
    """The broker no longer holds what the relay recorded as published."""


@dataclass
class _Sent:
    """A page handed to the producer, not yet acknowledged and saved."""

    position: int  # the page's last store position
    records: list[tuple[int, str, str, Any]]  # (position, event id, type, future)
    previous: dict[int, int]  # partition -> the last position sent to it, this page included


class Relay:
    def __init__(self, engine: Engine, reader: Reader, port: KafkaPort,
                 topics: Topics | None = None, *, client_id: str = "crm-relay",
                 batch_size: int = 2000, in_flight_pages: int = 1, poll_seconds: float = 0.2,
                 checkpoint_seconds: float = 5.0, verify_seconds: float = 2.0,
                 watermark_seconds: float = 30.0, flush_timeout: float = 15.0,
                 hash_of: HashLookup = no_hashes,
                 after_publish: Callable[[RelayState], None] | None = None,
                 store_head: Callable[[], int] | None = None,
                 progress_seconds: float = 60.0) -> None:
        self.engine = engine
        self.reader = reader
        self.port = port
        self.topics = topics or Topics()
        # The partition count to create the topic with; an existing topic keeps its own count
        # (adopted when the producer starts), until the topic is re-created.
        self.partitions = self.topics.partitions
        self.client_id = client_id
        # Store pages of batch_size events; up to in_flight_pages of them sent and not yet saved
        # while the next one is read and sent (0: each page is flushed and saved before the next).
        self.batch_size = batch_size
        self.in_flight_pages = in_flight_pages
        self.poll_seconds = poll_seconds
        self.checkpoint_seconds = checkpoint_seconds
        # Topic ids are checked every verify_seconds; watermarks (a fetch) less often.
        self.verify_seconds = verify_seconds
        self.watermark_seconds = watermark_seconds
        self.flush_timeout = flush_timeout
        self.hash_of = hash_of
        # A test hook between "the broker acknowledged the batch" and "the position is saved".
        self.after_publish = after_publish
        relay_state.create(engine)
        self.state = relay_state.load(engine, self.topics.events)
        self.recoveries = 0
        self.last_error: str | None = None
        self._producer: Any = None
        self._in_flight: deque[_Sent] = deque()
        self._ahead: tuple[int, Future[Sequence[tuple[int, Any]]]] | None = None
        self._reader_thread: ThreadPoolExecutor | None = None
        self._verified_at = float("-inf")
        self._watermarks_at = float("-inf")
        self._checkpointed_at = float("-inf")
        self._dirty = True  # publish a checkpoint soon after start, even with nothing new
        self._wake = threading.Event()
        # Progress (position, rate, lag) is logged every progress_seconds by run(), healthy or
        # not; store_head gives the lag (the store's last position), when known.
        self.store_head = store_head
        self.progress_seconds = progress_seconds
        self.published = 0  # events acknowledged and saved by this relay (repeats included)
        self._progress: tuple[float, int] | None = None  # (when, published) at the last line

    @property
    def position(self) -> int:
        return self.state.position

    def ready(self) -> None:
        """Check the broker (creating the topics on a first start) and open the producer: what
        the first step does anyway (benchmarks time publishing without it)."""
        self._ensure_ready()

    def notify(self, *_saved: Any) -> None:
        """Wake the loop now (hooked to the application's saves when in the same process)."""
        self._wake.set()

    # -- the loop ------------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = self.poll_seconds
        try:
            while not stop.is_set():
                try:
                    published = self.step()
                    self.last_error, backoff = None, self.poll_seconds
                except Exception as error:  # a broker or store hiccup: retry, never skip
                    self.last_error = f"{type(error).__name__}: {error}"
                    log.warning("relay step failed (%s); retrying", self.last_error)
                    self._discard_clients()
                    self._verified_at = float("-inf")
                    stop.wait(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                self._log_progress()
                if published == 0:
                    self._wake.wait(self.poll_seconds)
                    self._wake.clear()
        finally:
            self.close()

    def _log_progress(self) -> None:
        """One INFO line at start and every progress_seconds: the position published and saved,
        the rate since the last line, the lag behind the store and the broker's topic id."""
        now, position = time.monotonic(), self.state.position
        if self._progress is not None and now - self._progress[0] < self.progress_seconds:
            return
        since, before = self._progress or (now, self.published)
        rate = (self.published - before) / (now - since) if now > since else 0.0
        head = None
        if self.store_head is not None:
            try:
                head = self.store_head()
            except Exception as error:  # a store hiccup: the next step will say more
                log.debug("no store head for the progress line: %s", error)
        lag = "unknown" if head is None else f"{max(head - position, 0):,} positions"
        log.info("relay progress: position %d published and saved to %s (topic id %s), "
                 "%.1f events/s over the last %.0f s, lag %s, recoveries %d",
                 position, self.topics.events, self.state.topic_id, rate, now - since, lag,
                 self.recoveries)
        self._progress = (now, self.published)

    def close(self) -> None:
        """Leave a last checkpoint if the broker is reachable, then let go of the clients."""
        if self._producer is not None:
            try:
                self._settle(keep=0)
                self._checkpoint(force=True)
            except Exception as error:
                log.info("no final checkpoint: %s", error)
        self._discard_clients()
        reader, self._reader_thread = self._reader_thread, None
        if reader is not None:
            reader.shutdown(wait=True)

    def step(self) -> int:
        """Send the next page and save what the broker has acknowledged (everything, when caught
        up, then a checkpoint if due); returns the events read."""
        self._ensure_ready()
        sent = self._in_flight[-1].position if self._in_flight else self.state.position
        page = self._read(sent + 1)
        try:
            # Only a full page is worth running ahead of: a partial one means the relay has
            # caught up, and waiting out the producer's linger for it would be lag.
            full = len(page) >= self.batch_size
            if full:
                self._prefetch(page[-1][0] + 1)
            if page:
                self._send(page)
            self._settle(keep=self.in_flight_pages if full else 0)
        except BrokerDataLoss as loss:
            self._recover(str(loss))
            return len(page)
        self._checkpoint()
        return len(page)

    def _read(self, start: int) -> Sequence[tuple[int, Any]]:
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == start:
            return ahead[1].result()
        return self.reader(start, self.batch_size)

    def _prefetch(self, start: int) -> None:
        """Read the next page in a thread while this one is encoded and sent: the store query
        waits on the database (PostgreSQL) without holding the GIL. Used by the next step only
        if it starts there; a failed read raises there."""
        if self.in_flight_pages <= 0:
            return
        if self._reader_thread is None:
            self._reader_thread = ThreadPoolExecutor(1, thread_name_prefix="relay-read")
        self._ahead = (start, self._reader_thread.submit(self.reader, start, self.batch_size))

    def run_until_caught_up(self, timeout: float = 30.0) -> None:
        """Publish everything in the store now (scripts and tests)."""
        deadline = time.monotonic() + timeout
        while self.step():
            if time.monotonic() > deadline:
                raise TimeoutError("the relay did not catch up in time")
        self._checkpoint(force=True)

    # -- publishing ----------------------------------------------------------------------------

    def _send(self, page: Sequence[tuple[int, Any]]) -> None:
        """Encode the page and hand it to the producer (no flush: the sender thread compresses
        and ships full batches while the relay goes on)."""
        wanted = [(p, e) for p, e in page if is_published(e)]
        hashes = self.hash_of([p for p, _e in wanted]) if wanted else {}
        # The last position sent to each partition (prevposition), acknowledged or not.
        previous = (dict(self._in_flight[-1].previous) if self._in_flight else
                    {p: s.tally.last_position for p, s in self.state.partitions.items()})
        partitions = self.topics.partitions
        encoded = []
        for position, event in wanted:
            key = key_of(event)
            partition = partition_of(key, partitions)
            event_id, type_, value = to_value(position, event,
                                              prev_position=previous.get(partition, 0),
                                              hash_=hashes.get(position))
            previous[partition] = position
            encoded.append((position, event_id, type_, key, value, partition))
        # Encoded first, sent in one tight loop: the producer's partition lock is held while a
        # full batch is compressed and checksummed, so interleaving would only wait on it.
        topic, send = self.topics.events, self._producer.send
        records = [(position, event_id, type_, send(topic, key=key, value=value,
                                                    partition=partition))
                   for position, event_id, type_, key, value, partition in encoded]
        self._in_flight.append(_Sent(page[-1][0], records, previous))

    def _settle(self, keep: int) -> None:
        """Wait for the broker's acknowledgements of all but the last `keep` pages in flight,
        then save the new position and tallies in one transaction (one save for all of them)."""
        if len(self._in_flight) <= keep:
            return
        if keep == 0:
            self._producer.flush(timeout=self.flush_timeout)
        done = [self._in_flight.popleft() for _ in range(len(self._in_flight) - keep)]
        new = self.state.copy()
        count = 0
        for page in done:
            for position, event_id, type_, future in page.records:
                meta = future.get(timeout=self.flush_timeout)
                part = new.partitions.setdefault(meta.partition, PartitionState())
                if meta.offset < part.next_offset:
                    raise BrokerDataLoss(f"partition {meta.partition} acknowledged offset "
                                         f"{meta.offset}, below the recorded {part.next_offset}")
                part.next_offset = meta.offset + 1
                part.tally.add(position, event_id, type_)
            count += len(page.records)
        new.position = done[-1].position
        if self.after_publish is not None:
            self.after_publish(new)
        relay_state.save(self.engine, self.topics.events, new)
        self.state = new
        self._dirty = True
        self.published += count
        PUBLISHED.inc(count)
        POSITION.set(new.position)

    def _checkpoint(self, force: bool = False) -> None:
        due = time.monotonic() - self._checkpointed_at >= self.checkpoint_seconds
        if (not self._dirty or self.state.topic_id is None or self._producer is None
                or not (force or due)):
            return
        for partition, part in sorted(self.state.partitions.items()):
            checkpoint = Checkpoint(
                self.topics.events, self.state.topic_id, partition, self.state.position,
                part.tally.last_position, part.tally.count, part.tally.digest)
            self._producer.send(self.topics.checkpoints, key=checkpoint.key(),
                                value=checkpoint.encode())
        self._producer.flush(timeout=self.flush_timeout)
        self._checkpointed_at = time.monotonic()
        self._dirty = False

    # -- is the broker still holding what we published? ----------------------------------------

    def _ensure_ready(self) -> None:
        if self._producer is None or time.monotonic() - self._verified_at >= self.verify_seconds:
            self._verify()
        if self._producer is None:
            # A broker that restarted forgets producer ids: always start from a fresh producer.
            self._producer = self.port.producer(self.client_id)
            self._adopt_partitions()

    def _adopt_partitions(self) -> None:
        """Publish with the topic's own partition count: a client's partition depends on it.
        A topic made by an earlier version (one partition) is used as it is; the way to more
        partitions is in docs/bus.md ("Changing the partition count")."""
        found = self._producer.partitions_for(self.topics.events)
        if found and len(found) != self.topics.partitions:
            if len(found) != self.partitions:
                log.warning("%s has %d partitions, not the %d configured: publishing to its %d "
                            "(docs/bus.md, \"Changing the partition count\")", self.topics.events,
                            len(found), self.partitions, len(found))
            self.topics = replace(self.topics, partitions=len(found))

    def _layout(self, ids: Mapping[str, str]) -> dict[str, int]:
        """The topics to ensure: an existing events topic is left as it is (its count)."""
        layout = self.topics.layout()
        if self.topics.events in ids:
            del layout[self.topics.events]
        return layout

    def _verify(self) -> None:
        layout = self.topics.layout()
        ids = self.port.topic_ids(list(layout))
        known = self.state.topic_id
        current = ids.get(self.topics.events)
        if known is None:
            # First start: adopt (or create) the topic; there is nothing recorded to lose.
            self.port.ensure_topics(self._layout(ids))
            self.state.topic_id = current or self.port.topic_ids([self.topics.events])[
                self.topics.events]
            relay_state.save(self.engine, self.topics.events, self.state)
        elif current is None:
            self._recover(f"topic {self.topics.events} is missing")
        elif current != known:
            self._recover(f"topic {self.topics.events} has a new id ({known} -> {current})")
        else:
            behind = None
            if time.monotonic() - self._watermarks_at >= self.watermark_seconds:
                behind = self._behind_watermarks()
                self._watermarks_at = time.monotonic()
            if behind:
                self._recover(behind)
            elif len(ids) < len(layout):
                self.port.ensure_topics(self._layout(ids))
        self._verified_at = time.monotonic()

    def _behind_watermarks(self) -> str | None:
        """Fetch each partition's high watermark (robust on Tansu and Kafka, unlike end_offsets).

        A new consumer each time: a reused one reports the watermark of its previous fetch."""
        from kafka import TopicPartition

        recorded = {p: s.next_offset for p, s in self.state.partitions.items() if s.next_offset}
        if not recorded:
            return None
        probe = self.port.consumer(None, self.client_id + "-probe", None)
        try:
            tps = {TopicPartition(self.topics.events, p): o for p, o in recorded.items()}
            probe.assign(list(tps))
            for tp, offset in tps.items():
                probe.seek(tp, offset - 1)
            deadline = time.monotonic() + self.flush_timeout
            while any(probe.highwater(tp) is None for tp in tps):
                if time.monotonic() > deadline:
                    raise TimeoutError("no high watermark from the broker")
                probe.poll(timeout_ms=100, max_records=1)
            for tp, offset in tps.items():
                high = probe.highwater(tp)
                if high < offset:
                    return (f"partition {tp.partition} high watermark {high} is below the "
                            f"recorded offset {offset}")
            return None
        finally:
            close_quietly(probe)

    def _recover(self, reason: str) -> None:
        log.warning("broker lost data (%s): re-creating topics and re-publishing from the store "
                    "start", reason)
        self.recoveries += 1
        RECOVERIES.inc()
        self._discard_clients()
        self.topics = replace(self.topics, partitions=self.partitions)  # as configured
        layout = {n: c for n, c in self.topics.layout().items() if n != self.topics.dlq}
        topic_id = recreate_topics(self.port, layout)
        # the DLQ is kept if it survived
        self.port.ensure_topics({n: c for n, c in self.topics.layout().items()
                                 if n != self.topics.events})
        self.state = RelayState(position=0, topic_id=topic_id)
        relay_state.save(self.engine, self.topics.events, self.state)
        self._dirty = True

    def _discard_clients(self) -> None:
        """Drop the producer and what it had not acknowledged: sending resumes from the saved
        position."""
        self._in_flight.clear()
        self._ahead = None
        producer, self._producer = self._producer, None
        close_quietly(producer, timeout=1)
