"""Benchmark 3, projection rebuild: every registered projection from the store into fresh tables.

Each measurement runs in its own child process (spawned), so its peak RSS is its own: the child
reports its VmHWM at the end (ru_maxrss is inherited from the parent), which covers the
interpreter and imports as well as the work (the read-only baseline child shows that floor).
Ours: the projection Runner (page by page, one transaction per page, all projections) applying
into the store's empty read-model tables. Baseline: reading the same events from the store with
the same reader and page size (decoded and unsealed), without applying them; a second row
compares against the raw notification rows (no decoding) to show what decoding costs.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.figures import LOWER, Bars, Row
from infra.bootstrap import build
from infra.eventstore import notification_reader
from infra.settings import Settings

MODES = ("apply", "read", "select")


@dataclass(frozen=True)
class Pass:
    events: int
    seconds: float
    peak_rss_mib: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def _child(settings: Settings, mode: str, page_size: int, out: Any) -> None:
    container = build(settings, start_follower=False)
    # Everything built so far is long-lived: keep it out of the collector's full passes, so
    # both passes are timed on their own work, not on when a full collection happens to land.
    gc.freeze()
    try:
        report: Callable[[int], None] = lambda n: out.put(("progress", n))  # noqa: E731
        start = time.perf_counter()
        if mode == "apply":
            container.runner.page_size = page_size
            events = container.runner.catch_up(progress=report)
        else:
            events = 0
            read = notification_reader(container.app)
            select = container.app.recorder.select_notifications
            position = 1
            while True:
                if mode == "read":
                    page = read(position, page_size)
                    count, last = len(page), (page[-1][0] if page else 0)
                else:
                    rows = select(start=position, limit=page_size)
                    count, last = len(rows), (rows[-1].id if rows else 0)
                if not count:
                    break
                events += count
                position = last + 1
                report(count)
        seconds = time.perf_counter() - start
        peak = _peak_rss_mib()
        out.put(("done", events, seconds, peak))
    finally:
        container.close()


def _peak_rss_mib() -> float:
    """This process's own high-water mark. Linux's ru_maxrss is inherited from the parent
    across fork and exec, so a child spawned by a bench that just wrote 1M events reported the
    parent's peak (1,691 MiB for both passes at 1M); VmHWM belongs to the child's own memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(settings: Settings, mode: str, page_size: int,
            advance: Callable[[int], None] | None = None, timeout: float = 3600) -> Pass:
    """Run one pass (`apply`, `read` or `select`) in a spawned child; progress via a queue."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_child, args=(settings, mode, page_size, out),
                            name=f"bench-rebuild-{mode}")
    child.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                message = out.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive():
                    raise RuntimeError(f"the {mode} child died (exit {child.exitcode})") from None
                continue
            if message[0] == "progress":
                if advance is not None:
                    advance(message[1])
                continue
            _tag, events, seconds, peak = message
            return Pass(events, seconds, peak)
        raise TimeoutError(f"the {mode} pass took longer than {timeout:.0f} s")
    finally:
        child.join(timeout=30)
        if child.is_alive():
            child.terminate()


def run(settings: Settings, backend: str, events: int, bars: Bars,
        page_size: int = 2000) -> list[Row]:
    """Rebuild rows; leaves the read models built (the API and audit benchmarks read them)."""
    with bars.task(f"{backend}: read events (no apply)", events) as advance:
        read = measure(settings, "read", page_size, advance)
    with bars.task(f"{backend}: raw notification rows", events) as advance:
        raw = measure(settings, "select", page_size, advance)
    with bars.task(f"{backend}: rebuild all projections", events) as advance:
        rebuilt = measure(settings, "apply", page_size, advance)
    return [
        Row("rebuild all projections vs reading events", backend, rebuilt.rate, read.rate,
            "events/s", f"{rebuilt.events} events, page {page_size}; read = decode+unseal, "
                        "same reader, no apply"),
        Row("reading events (decoded) vs raw rows", backend, read.rate, raw.rate, "events/s",
            "decoding + unsealing personal fields vs select_notifications only"),
        Row("rebuild peak RSS vs read-only peak RSS", backend, rebuilt.peak_rss_mib,
            read.peak_rss_mib, "MiB", "child process VmHWM (its own peak), includes the "
                                      "interpreter and imports", better=LOWER),
    ]
