"""`crm bench`: runs the chosen benchmarks on each backend and returns their rows.

Per backend: a fresh store (temp SQLite file, or a fresh PostgreSQL database dropped after),
the demo history (`crm demo`'s generator, sized by bench/history.py) written through the command
layer (timed: benchmark 1), a client with 1,000
events for the as-of card, the projections rebuilt in a child process (benchmark 3), the audit
figures (benchmark 5), then the API against `crm serve` in a subprocess (benchmark 2) and the bus
(benchmark 4). `--scaling` repeats ingest, rebuild and verify at growing sizes (benchmark 6).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from bench import audit, goals, ingest, rebuild
from bench.backends import BACKENDS, Store, fresh_store
from bench.figures import Bars, Row
from bench.history import History
from infra.bootstrap import Container, build

PHASES = ("ingest", "rebuild", "audit", "api", "bus")
ONLY_NAMES = (*PHASES, "scaling")  # `--only scaling`: the scaling curve alone
# (events, clients) asked of the demo generator, which writes the shortest history of whole months
# holding them: ~8 events a client in one month, so small and medium get a month of half the
# clients (~760 and ~5,100), large two months of 100k clients (~1M events: the figures).
# small is the default (under 5 minutes on 2 cores for both backends).
SIZES: dict[str, tuple[int, int]] = {
    "small": (6_000, 1_500),
    "medium": (40_000, 10_000),
    "large": (1_000_000, 100_000),
}
DEFAULT_SIZE = "small"
SCALING: dict[str, tuple[int, ...]] = {
    "small": (10_000, 100_000),
    "medium": (10_000, 100_000),
    "large": (10_000, 100_000, 1_000_000),
}


@dataclass(frozen=True)
class Config:
    size: str = DEFAULT_SIZE
    events: int | None = None
    only: tuple[str, ...] = ()
    backends: tuple[str, ...] = BACKENDS
    scaling: bool = False
    seed: int = 7
    clients_override: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_events(self) -> int:
        return self.events if self.events is not None else SIZES[self.size][0]

    @property
    def clients(self) -> int:
        if self.clients_override is not None:
            return self.clients_override
        if self.events is not None:
            return max(10, self.events // 5)
        return SIZES[self.size][1]

    @property
    def history(self) -> History:
        """The history this run writes (a fresh one each time: it records clients as written)."""
        return History(self.total_events, self.clients, seed=self.seed)

    def wants(self, phase: str) -> bool:
        return not self.only or phase in self.only

    def as_dict(self) -> dict[str, Any]:
        size = self.history.size
        return {"size": self.size, "events": self.total_events, "clients": self.clients,
                "history": {"generator": "demo", "clients": size.clients,
                            "months": size.months, "estimated_events": size.events},
                "only": list(self.only) or list(PHASES), "backends": list(self.backends),
                "scaling": self.scaling, "seed": self.seed}


class SeededIds:
    """Deterministic ids for what the command layer creates (situations opened by complaints)."""

    def __init__(self, seed: int) -> None:
        import random

        self._rng = random.Random(seed)

    def __call__(self) -> uuid.UUID:
        return uuid.UUID(int=self._rng.getrandbits(128), version=4)


def run(config: Config, console: Console) -> list[Row]:
    unknown = [p for p in config.only if p not in ONLY_NAMES]
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(ONLY_NAMES)}")
    rows: list[Row] = []
    with Bars(console) as bars:
        for backend in config.backends:
            rows += _backend(config, backend, bars)
            if config.scaling or "scaling" in config.only:
                from bench import scaling

                rows += scaling.run(config.seed, backend, SCALING[config.size], bars)
    return goals.judge(rows)


def _backend(config: Config, backend: str, bars: Bars) -> list[Row]:
    rows: list[Row] = []
    if any(config.wants(p) for p in PHASES if p != "bus"):
        with fresh_store(backend) as store:
            rows += _main_store(config, store, bars)
    if config.wants("bus"):
        from bench import bus

        rows += bus.run(lambda: fresh_store(backend), backend, config.total_events,
                        config.seed, bars)
    return rows


def _main_store(config: Config, store: Store, bars: Bars) -> list[Row]:
    """Ingest, rebuild, audit and API figures on one store holding the history."""
    rows: list[Row] = []
    backend = store.backend
    container = build(store.settings, start_follower=False, new_id=SeededIds(config.seed))
    history = config.history
    try:
        if config.wants("ingest"):
            rows += ingest.run(container, store, history, config.seed, bars)
        else:
            _load(container, history, backend, bars)
        heavy = None
        if config.wants("audit") or config.wants("api"):
            heavy = audit.write_heavy_client(container, config.seed, ingest.ACTOR)
        total = container.store_position()
        if config.wants("rebuild"):
            rows += rebuild.run(store.settings, backend, total, bars)
        elif config.wants("audit") or config.wants("api"):
            with bars.task(f"{backend}: project (not timed)", total) as advance:
                container.runner.catch_up(progress=advance)
        if config.wants("audit"):
            rows += audit.verify(container, backend, total, bars)
            assert heavy is not None
            rows += audit.as_of_card(container, backend, heavy)
            from bench import personal

            rows += personal.run(container, backend)
        found = None
        if config.wants("api"):
            from bench import api_load

            found = api_load.probe(container.engine)
    finally:
        container.close()
    if config.wants("api"):
        from bench import api_load

        rows += api_load.run(store, history.client_ids(), heavy, bars, found)
    return rows


def _load(container: Container, history: History, backend: str, bars: Bars) -> None:
    with bars.task(f"{backend}: write history (not timed)", history.expected) as advance:
        ingest.write_history(container, history, ingest.BATCH, advance)


__all__: Sequence[str] = ("ONLY_NAMES", "PHASES", "SIZES", "Config", "run")
