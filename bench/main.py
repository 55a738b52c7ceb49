"""Entry of `crm bench`: checks the options, runs the benchmarks, prints the table or JSON."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console

from bench.backends import BACKENDS
from bench.report import as_json, print_table
from bench.runner import ONLY_NAMES, PHASES, SIZES, Config, run


class BenchUsageError(ValueError):
    """A bad option: the message names it."""


def config_from(size: str, events: int | None, only: Sequence[str] | None,
                backends: Sequence[str] | None, scaling: bool) -> Config:
    if size not in SIZES:
        raise BenchUsageError(f"--size: one of {', '.join(SIZES)}, not {size!r}")
    if events is not None and events < 100:
        raise BenchUsageError("--events: at least 100")
    chosen = tuple(only or ())
    for name in chosen:
        if name not in ONLY_NAMES:
            raise BenchUsageError(f"--only: one of {', '.join(ONLY_NAMES)}, not {name!r}")
    stores = tuple(backends or BACKENDS)
    for name in stores:
        if name not in BACKENDS:
            raise BenchUsageError(f"--backend: one of {', '.join(BACKENDS)}, not {name!r}")
    return Config(size=size, events=events, only=chosen, backends=stores, scaling=scaling)


def main(*, size: str, events: int | None, only: Sequence[str] | None,
         backends: Sequence[str] | None, scaling: bool, as_json_output: bool) -> int:
    """Returns the exit status (2 for a bad option)."""
    console = Console(stderr=True)
    try:
        config = config_from(size, events, only, backends, scaling)
    except BenchUsageError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    started = time.perf_counter()
    rows = run(config, console)
    elapsed = time.perf_counter() - started
    settings = config.as_dict() | {"seconds": round(elapsed, 1)}
    if as_json_output:
        print(as_json(rows, settings))
    else:
        fitted = config.history.size
        print_table(rows, f"crm bench: demo history, ~{config.total_events:,} events, "
                          f"{fitted.clients:,} clients x {fitted.months} mo, "
                          f"{', '.join(config.only or PHASES)} "
                          f"({elapsed:.0f} s; ratio = ours / baseline)")
    return 0
