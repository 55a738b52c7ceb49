"""Issue 19: projection consumer throughput with 1 and 2 consumer processes on a 2-partition topic.

The bus history is published once to a topic of 2 partitions. Then, for 1 and for 2 processes,
into fresh read-model tables each time: that many `Projector` processes (this module's
`consumer_process`, the same code `crm consume` runs) join one group and apply the topic. A run
is timed from the moment every process has been given partitions (the group has settled: the
join and the rebalance are left out) to the moment every partition's tracked position has
reached its last event; events applied before that moment are not counted. Events applied are
read from the tracking rows (`projection_partitions`) and the positions of each partition's
events. The ratio is 2 processes / 1 process.

The same window's CPU use is sampled from /proc: the consumer processes', and the whole
machine's (broker and database included), to tell the cores from the design as the limit.
"""

from __future__ import annotations

import bisect
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from bench.figures import Bars, Row

PARTITIONS = 2
DEADLINE_S = 1800.0


@dataclass(frozen=True)
class Run:
    processes: int
    events: int  # applied inside the timed window
    seconds: float
    consumers_cpu: float  # CPU seconds of the consumer processes in the window
    database_cpu: float  # of every PostgreSQL process (all databases: other work included)
    broker_cpu: float  # of the Tansu broker
    busy_cores: float  # the machine's average busy cores in the window
    cores: int

    @property
    def per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def measure(settings: Any, container: Any, port: Any, bootstrap: str, backend: str,
            bars: Bars) -> list[Row]:
    """Publish the store to a 2-partition topic, then time 1 and 2 consumer processes."""
    if backend != "postgres":  # consumer processes share one PostgreSQL read-model database
        return [Row("consumer, 2 processes vs 1 (2 partitions)", backend, None, None,
                    "events/s", "PostgreSQL only: SQLite has one writer at a time")]
    from bench.backends import PG_ADMIN, fresh_pg_database
    from consumers.bus import Topics
    from consumers.cloudevents import is_published, key_of
    from consumers.main import sealed_reader
    from consumers.relay import Relay, partition_of
    from infra.db import make_engine
    from projections.base import Runner
    from projections.registry import all_projections

    topics = Topics.named(f"bench-{uuid.uuid4().hex[:8]}.scaling", PARTITIONS)
    relay = Relay(container.engine, sealed_reader(container), port, topics,
                  checkpoint_seconds=5.0, verify_seconds=3600.0)
    relay.run_until_caught_up(timeout=3600)
    relay.close()
    positions: dict[int, list[int]] = defaultdict(list)  # partition -> its events' positions
    for position, event in sealed_reader(container)(1, 100_000_000):
        if is_published(event):
            positions[partition_of(key_of(event), PARTITIONS)].append(position)
    total = sum(len(p) for p in positions.values())
    runs: dict[int, Run] = {}
    for processes in (1, 2):
        # A database of its own (not a scratch schema: the processes connect by URL alone).
        with fresh_pg_database(PG_ADMIN) as url:
            target = make_engine(url)
            try:
                # tables and indexes made here: the processes would race to make them
                Runner(target, all_projections(container.keyring), lambda _s, _n: []).catch_up()
                with bars.task(f"{backend}: consumer, {processes} process(es), "
                               f"{PARTITIONS} partitions", total) as advance:
                    runs[processes] = _run(settings, target, url, bootstrap, topics.events,
                                           f"{topics.events}-g{processes}", processes,
                                           positions, advance)
            finally:
                target.dispose()
    one, two = runs[1], runs[2]
    note = (f"{total} events on {PARTITIONS} partitions, all projections into fresh tables, "
            f"timed from the settled group; 1 process: {one.events} events in "
            f"{one.seconds:.1f} s, {_shares(one)}; 2 processes: {two.events} events in "
            f"{two.seconds:.1f} s, {_shares(two)}")
    return [Row("consumer, 2 processes vs 1 (2 partitions)", backend, two.per_second,
                one.per_second, "events/s", note)]


def _shares(run: Run) -> str:
    """CPU in cores over the timed window: consumers, database, broker, the whole machine."""
    return (f"cores used: consumers {run.consumers_cpu / run.seconds:.2f}, PostgreSQL "
            f"{run.database_cpu / run.seconds:.2f}, Tansu {run.broker_cpu / run.seconds:.2f}, "
            f"machine {run.busy_cores:.2f} of {run.cores}")


def _run(settings: Any, target: Engine, url: str, bootstrap: str, topic: str, group: str,
         processes: int, positions: dict[int, list[int]], advance: Callable[[int], None]) -> Run:
    total = sum(len(p) for p in positions.values())
    logs = Path(tempfile.mkdtemp(prefix="crm-bench-scaling-"))
    children = []
    for n in range(processes):
        with (logs / f"consumer-{n}.log").open("wb") as log:
            children.append(subprocess.Popen(
                [sys.executable, "-c", "from bench.bus_scaling import consumer_process; "
                 "consumer_process()", settings.model_dump_json(), url, bootstrap, topic, group],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + DEADLINE_S

        def settled() -> bool:
            for n, child in enumerate(children):
                if child.poll() is not None:
                    raise RuntimeError(f"consumer {n} exited: "
                                       + (logs / f"consumer-{n}.log").read_text()[-2000:])
            return all("applying TopicPartition" in (logs / f"consumer-{n}.log").read_text()
                       for n in range(processes))

        while not settled():
            if time.monotonic() > deadline:
                raise TimeoutError("the consumers were never given partitions")
            time.sleep(0.01)
        start, begin = time.perf_counter(), _applied(target, topic, positions)
        cpu_start, machine_start = _cpu(children), _machine()
        others_start = _cpu_by_name()
        advance(begin)
        seen = begin
        while seen < total:
            if time.monotonic() > deadline:
                raise TimeoutError("the consumers did not catch up")
            time.sleep(0.02)
            now = _applied(target, topic, positions)
            advance(now - seen)
            seen = now
        seconds = time.perf_counter() - start
        busy, cores = _busy(machine_start, _machine())
        others = _cpu_by_name()
        database = sum(others.get(p, 0.0) - others_start.get(p, 0.0)
                       for p, name in _names().items() if name == "postgres")
        broker = sum(others.get(p, 0.0) - others_start.get(p, 0.0)
                     for p, name in _names().items() if name == "tansu")
        return Run(processes, total - begin, seconds, _cpu(children) - cpu_start, database,
                   broker, busy, cores)
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


def _applied(target: Engine, topic: str, positions: dict[int, list[int]]) -> int:
    """Events every projection has applied: per partition, those at or below its position."""
    from projections.base import partition_tracking

    pt = partition_tracking.c
    with target.connect() as conn:
        reached = dict(conn.execute(select(pt.partition, func.min(pt.position))
                                    .where(pt.topic == topic).group_by(pt.partition)).all())
    return sum(bisect.bisect_right(found, reached.get(p, 0)) for p, found in positions.items())


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of a process so far (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _cpu(children: list[subprocess.Popen[bytes]]) -> float:
    return sum(_cpu_of(child.pid) for child in children)


def _names() -> dict[int, str]:
    """pid -> command name, for the database and broker processes."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                name = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if name in ("postgres", "tansu"):
                found[int(entry.name)] = name
    return found


def _cpu_by_name() -> dict[int, float]:
    return {pid: _cpu_of(pid) for pid in _names()}


def _machine() -> tuple[float, float]:
    """(busy, all) jiffies of the whole machine."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return float(sum(values) - idle), float(sum(values))


def _busy(before: tuple[float, float], after: tuple[float, float]) -> tuple[float, int]:
    cores = os.cpu_count() or 1
    busy, every = after[0] - before[0], after[1] - before[1]
    return (busy / every * cores if every else 0.0), cores


def consumer_process() -> None:
    """One consumer process of a scaling run (argv: settings JSON, read-model URL, bootstrap,
    topic, group): the projection consumer `crm consume` runs, into the given tables."""
    import logging

    from consumers.bus import Topics
    from consumers.main import kafka_port, stop_on_signals
    from consumers.projector import Projector
    from infra.bootstrap import build
    from infra.db import make_engine
    from infra.settings import Settings
    from projections.base import Runner
    from projections.registry import all_projections

    settings_json, url, bootstrap, topic, group = sys.argv[1:6]
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("consumers").setLevel(logging.INFO)
    stop = stop_on_signals()
    container = build(Settings.model_validate_json(settings_json), start_follower=False)
    try:
        runner = Runner(make_engine(url), all_projections(container.keyring),
                        lambda _s, _n: [])
        projector = Projector(runner, kafka_port(bootstrap), Topics.named(topic, PARTITIONS),
                              group_id=group, client_id=f"bench-consumer-{os.getpid()}")
        projector.run(stop)
    finally:
        container.close()
