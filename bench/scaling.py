"""Benchmark 6, scaling: ingest, rebuild and verify rates at growing history sizes.

Each size gets a fresh store and the same seeded history (clients = events / 10). A row compares
the rate at a size with the rate at the smallest size: a ratio well below 1 means the cost per
event grows with the history (super-linear total time); rows under `FLAG` are flagged.
"""

from __future__ import annotations

from collections.abc import Sequence

from bench import rebuild
from bench.backends import fresh_store
from bench.figures import LOWER, Bars, Row, every, timer
from bench.history import History
from bench.ingest import BATCH, write_history
from infra.bootstrap import build
from infra.chain import verify_store

FLAG = 0.7  # per-event cost grew by more than ~40%
VERIFY_PASSES = 3


def run(seed: int, backend: str, sizes: Sequence[int], bars: Bars) -> list[Row]:
    rates: dict[int, dict[str, float]] = {}
    for size in sizes:
        rates[size] = _measure(backend, size, seed, bars)
    base = sizes[0]
    rows = []
    for size in sizes[1:]:
        for figure in ("ingest", "rebuild", "verify"):
            ours, first = rates[size][figure], rates[base][figure]
            ratio = ours / first if first else 0.0
            flag = "SUPER-LINEAR: " if ratio < FLAG else ""
            rows.append(Row(f"scaling {figure} at {size:,} vs at {base:,} events", backend,
                            ours, first, "events/s",
                            f"{flag}rate at {size:,} / rate at {base:,}; flagged below {FLAG}"))
        rows.append(Row(f"scaling rebuild peak RSS at {size:,} vs at {base:,} events", backend,
                        rates[size]["rss"], rates[base]["rss"], "MiB",
                        "rebuild child's own peak RSS, VmHWM (interpreter and imports included)",
                        better=LOWER))
    return rows


def _measure(backend: str, size: int, seed: int, bars: Bars) -> dict[str, float]:
    with fresh_store(backend) as store:
        container = build(store.settings, start_follower=False)
        try:
            history = History(size, max(10, size // 10), seed=seed)
            with bars.task(f"{backend}: scaling ingest {size:,}", size) as advance:
                written = write_history(container, history, BATCH, advance)
            total = container.store_position()
            with bars.task(f"{backend}: scaling rebuild {size:,}", total) as advance:
                rebuilt = rebuild.measure(store.settings, "apply", 500, advance)
            # Verifying is quick (a fraction of a second at 10k): best of three passes.
            verified = []
            with bars.task(f"{backend}: scaling verify {size:,} (x{VERIFY_PASSES})",
                           total * VERIFY_PASSES) as advance:
                for _ in range(VERIFY_PASSES):
                    with timer() as clock:
                        verdict = verify_store(container.app, progress=every(advance))
                    verified.append(verdict.events / clock.seconds if clock.seconds else 0.0)
            return {"ingest": written.rate, "rebuild": rebuilt.rate, "verify": max(verified),
                    "rss": rebuilt.peak_rss_mib}
        finally:
            container.close()
