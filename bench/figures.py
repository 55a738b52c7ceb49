"""Figures: one row of the benchmark table (ours against a baseline measured in the same run)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

# Higher is better for rates (events/s, requests/s); lower for latencies, times and memory.
HIGHER = "higher"
LOWER = "lower"


@dataclass(frozen=True)
class Row:
    figure: str
    backend: str
    ours: float | None
    baseline: float | None
    unit: str
    note: str = ""
    better: str = HIGHER  # which way `ours` should move
    goal: str = ""  # e.g. "ratio >= 0.30"; empty when the issue sets none
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.ours is None or self.baseline is None or self.baseline == 0:
            return None
        return self.ours / self.baseline

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def with_goal(row: Row, goal: str, met: bool | None) -> Row:
    return Row(row.figure, row.backend, row.ours, row.baseline, row.unit, row.note, row.better,
               goal, met)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


class Clock:
    """Wall-clock seconds of a block: `with timer() as t: ...; t.seconds`."""

    seconds = 0.0


@contextmanager
def timer() -> Iterator[Clock]:
    clock = Clock()
    start = time.perf_counter()
    try:
        yield clock
    finally:
        clock.seconds = time.perf_counter() - start


class Bars:
    """Rich progress bars on stderr for the long phases (quiet when stderr is not a terminal)."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(TextColumn("{task.description:<44}"), BarColumn(),
                                  MofNCompleteColumn(), TimeElapsedColumn(), console=console,
                                  transient=False)

    def __enter__(self) -> Bars:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    @contextmanager
    def task(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        """A bar for one phase; yields `advance(n)`."""
        task: TaskID = self._progress.add_task(description, total=total)
        try:
            yield lambda n: self._progress.advance(task, n)
        finally:
            self._progress.update(task, completed=total)

    def note(self, text: str) -> None:
        self._progress.console.print(f"[dim]{text}[/dim]")


def every(advance: Callable[[int], None], step: int = 1000) -> Callable[[int], None]:
    """A progress callback that forwards counts in chunks (per-event bar updates cost time)."""
    seen = [0]

    def tick(n: int) -> None:
        seen[0] += n
        if seen[0] >= step:
            advance(seen[0])
            seen[0] = 0

    return tick
