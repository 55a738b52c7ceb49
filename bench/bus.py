"""Benchmark 4, the bus: relay and projection consumer against raw kafka-python clients.

A private Tansu broker (or the one CRM_TEST_KAFKA_BOOTSTRAP names) and a fresh store holding a
history of its own. Ours: the relay (`consumers.relay.Relay`, store -> crm.events.v1, acknowledged
and its position recorded) and the projection consumer (`consumers.projector.Projector`, topic ->
every projection in fresh tables), in events/s, the consumer timed from its first record (a group
join is left out); then end-to-end lag (write returned -> the consumer's read models hold it) with
writes paced at `RATE` events/s, relay and consumer running in threads of this process.
Baselines (issue 14.5: the same producer and consumer settings on both sides): a tuned raw
producer (`port.producer`: idempotent, acks=all, gzip, 1 MiB batches, 50 ms linger) sending the
very keys and CloudEvents bytes the relay published, already encoded, with one flush at the end
(the relay flushes when caught up); a raw consumer (the same consumer settings, assigned to the
partition without a group, timed from its first poll; ours from its group assignment) reading
those messages; and the producer -> consumer lag of raw messages paced the same way, flushed after
each paced write as the relay flushes after each page it finds.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.backends import Store
from bench.figures import LOWER, Bars, Row, percentile
from bench.history import History
from bench.ingest import ACTOR, BATCH, write_history
from commands.activity import LogContact
from domain.values import Channel, Direction
from infra.bootstrap import Container, build
from infra.db import scratch_target
from infra.eventstore import read_model_url

RATE = 500  # events/s for the lag measurement (the steady load)
TICK = 0.05  # seconds between paced writes: RATE * TICK events per write
LAG_SECONDS = 5.0
BUS_EVENTS = 10_000  # the bus store's history (capped by --events): a relay page is 2,000


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def not_measured(backend: str, why: str) -> list[Row]:
    note = f"not yet measured: {why}"
    return [Row(name, backend, None, None, unit, note, better)
            for name, unit, better in (("relay vs raw producer", "events/s", "higher"),
                                       ("consumer vs raw consumer", "events/s", "higher"),
                                       ("end-to-end lag p50", "ms", LOWER),
                                       ("end-to-end lag p99", "ms", LOWER),
                                       ("consumer, 2 processes vs 1 (2 partitions)",
                                        "events/s", "higher"))]


def run(store_factory: Callable[[], Any], backend: str, events: int, seed: int,
        bars: Bars) -> list[Row]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from consumers.bus import Topics
            from consumers.main import kafka_port, sealed_reader
            from consumers.projector import Projector
            from consumers.relay import Relay
        from bench.broker import kafka_broker

        context = kafka_broker()
        bootstrap = context.__enter__()
    except (ImportError, FileNotFoundError, RuntimeError, TimeoutError) as error:
        return not_measured(backend, f"{type(error).__name__}: {error}")
    try:
        with store_factory() as store:
            container = build(store.settings, start_follower=False)
            try:
                size = min(events, BUS_EVENTS)
                history = History(size, max(10, size // 5), seed=seed)
                with bars.task(f"{backend}: bus history (not timed)",
                               history.expected) as advance:
                    write_history(container, history, BATCH, advance)
                port = kafka_port(bootstrap)
                rows = _measure(store, container, port, Topics, Relay, Projector,
                                sealed_reader, history, backend, bars)
                from bench import bus_scaling  # issue 19: 1 and 2 consumer processes

                return rows + bus_scaling.measure(store.settings, container, port, bootstrap,
                                                  backend, bars)
            finally:
                container.close()
    finally:
        context.__exit__(None, None, None)


def _measure(store: Store, container: Container, port: Any, topics_cls: Any, relay_cls: Any,
             projector_cls: Any, sealed_reader: Any, history: History,
             backend: str, bars: Bars) -> list[Row]:
    from projections.base import Runner
    from projections.registry import all_projections

    base = f"bench-{uuid.uuid4().hex[:8]}"
    topics = topics_cls.named(f"{base}.events")
    # The periodic broker check is pushed past the run: as measured, it compares against the
    # high watermark its probe consumer fetched at the previous check, takes the writes since
    # for lost data and re-publishes everything (reported; the first check still runs).
    relay = relay_cls(container.engine, sealed_reader(container), port, topics,
                      checkpoint_seconds=5.0, verify_seconds=3600.0)
    total = container.store_position()
    relay.ready()  # topics created, producer connected: not timed (nor is the raw producer's)
    with bars.task(f"{backend}: relay", total) as advance:
        start = time.perf_counter()
        relay.run_until_caught_up(timeout=3600)
        relayed = Rate(sum(p.tally.count for p in relay.state.partitions.values()),
                       time.perf_counter() - start)
        advance(total)
    # The baseline sends what the relay sent: the same keys and bytes, so the same compression.
    messages = [(r.key, r.value) for r in _read_all(port, topics.events, relayed.count)]
    message = int(sum(len(v) for _k, v in messages) / max(len(messages), 1))
    raw_topic = f"{base}.raw"
    port.ensure_topics({raw_topic: 1})
    with bars.task(f"{backend}: raw producer", relayed.count) as advance:
        produced = _raw_produce(port, raw_topic, messages, advance)
    with scratch_target(read_model_url(store.settings)) as target:
        runner = Runner(target, all_projections(container.keyring), lambda _s, _n: [])
        projector = projector_cls(runner, port, topics, group_id=f"{base}-projections")
        stop = threading.Event()
        threads = [threading.Thread(target=projector.run, args=(stop,), daemon=True)]
        threads[0].start()
        try:
            with bars.task(f"{backend}: consumer (all projections)", total) as advance:
                consumed = _until(lambda: _assigned(projector.consumer),
                                  lambda: runner.position() >= relay.position, advance,
                                  lambda: runner.position())
            with bars.task(f"{backend}: raw consumer", relayed.count) as advance:
                raw_consumed = _raw_consume(port, raw_topic, relayed.count, advance)
            container.app.saved_listeners.append(relay.notify)
            threads.append(threading.Thread(target=relay.run, args=(stop,), daemon=True))
            threads[1].start()
            with bars.task(f"{backend}: lag at {RATE} events/s", int(LAG_SECONDS * RATE)) as adv:
                lags, achieved = _paced_writes(container, runner, history, adv)
            with bars.task(f"{backend}: raw lag at {RATE} msg/s", int(LAG_SECONDS * RATE)) as adv:
                raw_lags = _raw_lag(port, raw_topic, f"{base}-lag", message, adv)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
    note = f"{relayed.count} events, ~{message} B messages, one partition"
    return [
        Row("relay vs raw producer", backend, relayed.per_second, produced.per_second, "events/s",
            f"{note}; raw: the relay's bytes pre-encoded, same producer (gzip, 1 MiB batches, "
            "acks=all idempotent), one flush"),
        Row("consumer vs raw consumer", backend, consumed.per_second, raw_consumed.per_second,
            "events/s", f"{note}; all projections into fresh tables; from assignment (raw: "
            "assigned, from its first poll)"),
        Row("end-to-end lag p50", backend, percentile(lags, 50), percentile(raw_lags, 50), "ms",
            f"writes paced at {RATE}/s, achieved {achieved:.0f}/s; {len(lags)} writes; raw: "
            "producer -> consumer", better=LOWER),
        Row("end-to-end lag p99", backend, percentile(lags, 99), percentile(raw_lags, 99), "ms",
            "write returned -> read model has it", better=LOWER),
    ]


def _until(started: Callable[[], bool], done: Callable[[], bool], advance: Callable[[int], None],
           position: Callable[[], int], timeout: float = 3600) -> Rate:
    deadline = time.monotonic() + timeout
    while not started():
        if time.monotonic() > deadline:
            raise TimeoutError("the consumer received nothing")
        time.sleep(0.005)
    first, seen = time.perf_counter(), position()
    begin = seen
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError("the consumer did not catch up")
        now = position()
        advance(now - seen)
        seen = now
        time.sleep(0.01)
    advance(position() - seen)
    return Rate(position() - begin, time.perf_counter() - first)


def _assigned(consumer: Any) -> bool:
    """The projection consumer has joined its group (read from the bench thread: a set copy)."""
    return consumer is not None and bool(consumer.assignment())


def _read_all(port: Any, topic: str, count: int) -> list[Any]:
    """The first `count` records of partition 0 of `topic` (not timed)."""
    from kafka import TopicPartition

    consumer = port.consumer(None, "bench-copy", None)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + 120
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return records[:count]
    finally:
        consumer.close()


def _raw_produce(port: Any, topic: str, messages: list[tuple[bytes, bytes]],
                 advance: Callable[[int], None]) -> Rate:
    producer = port.producer("bench-raw-producer")
    try:
        producer.send(topic, key=b"warm-up", value=b"{}", partition=0)  # connected, id assigned
        producer.flush()
        start = time.perf_counter()
        for n, (key, value) in enumerate(messages):
            producer.send(topic, key=key, value=value, partition=0)
            if n % 1000 == 999:
                advance(1000)
        producer.flush()
        return Rate(len(messages), time.perf_counter() - start)
    finally:
        producer.close()


def _raw_consume(port: Any, topic: str, count: int, advance: Callable[[int], None]) -> Rate:
    from kafka import TopicPartition

    consumer = port.consumer(None, "bench-raw-consumer", None)
    try:
        consumer.assign([TopicPartition(topic, 0)])
        consumer.seek_to_beginning()
        received = 0
        start = time.perf_counter()
        deadline = time.monotonic() + 600
        while received < count and time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=200)
            for records in batch.values():
                received += len(records)
                advance(len(records))
        return Rate(received, time.perf_counter() - start)
    finally:
        consumer.close()


def _paced_writes(container: Container, runner: Any, history: History,
                  advance: Callable[[int], None]) -> tuple[list[float], float]:
    """Contacts written `RATE * TICK` per write every `TICK` s; lag of each write in ms."""
    clients = history.client_ids()
    per_write = max(1, int(RATE * TICK))
    pending: list[tuple[int, float]] = []
    lags: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def watch() -> None:
        while not done.is_set() or pending:
            reached, now = runner.position(), time.perf_counter()
            with lock:
                while pending and pending[0][0] <= reached:
                    lags.append((now - pending.pop(0)[1]) * 1000)
            time.sleep(0.002)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    start = time.perf_counter()
    written, n = 0, 0
    while time.perf_counter() - start < LAG_SECONDS:
        due = start + n * TICK
        time.sleep(max(0.0, due - time.perf_counter()))
        commands = [LogContact(client_id=clients[(n * per_write + i) % len(clients)],
                               channel=Channel.PHONE, direction=Direction.INBOUND,
                               topic="Paced call")
                    for i in range(per_write)]
        position = container.app.execute(commands, ACTOR).position
        with lock:
            pending.append((position, time.perf_counter()))
        written += per_write
        n += 1
        advance(per_write)
    achieved = written / (time.perf_counter() - start)
    done.set()
    watcher.join(timeout=60)
    return lags, achieved


def _raw_lag(port: Any, topic: str, group: str, size: int,
             advance: Callable[[int], None]) -> list[float]:
    """Raw messages paced like the writes; producer send -> consumer receipt, in ms."""
    lag_topic = f"{topic}.lag"
    port.ensure_topics({lag_topic: 1})
    consumer = port.consumer(group, "bench-lag-consumer", [lag_topic])
    producer = port.producer("bench-lag-producer")
    per_write = max(1, int(RATE * TICK))
    expected = int(LAG_SECONDS / TICK) * per_write
    lags: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        while not stop.is_set() and len(lags) < expected:
            for records in consumer.poll(timeout_ms=100).values():
                now = time.perf_counter()
                lags.extend((now - float(r.value[:24].decode())) * 1000 for r in records)

    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment() and time.monotonic() < deadline:
            consumer.poll(timeout_ms=100)  # join the group before the clock starts
        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        padding = os.urandom(max(0, size - 24))
        start = time.perf_counter()
        for n in range(int(LAG_SECONDS / TICK)):
            time.sleep(max(0.0, start + n * TICK - time.perf_counter()))
            for _ in range(per_write):
                stamp = f"{time.perf_counter():<24.6f}".encode()
                producer.send(lag_topic, key=b"k", value=stamp + padding, partition=0)
            producer.flush()  # as the relay flushes each page it finds
            advance(per_write)
        producer.flush()
        thread.join(timeout=60)
    finally:
        stop.set()
        producer.close()
        consumer.close()
    return lags
