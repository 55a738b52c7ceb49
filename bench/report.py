"""The bench's output: one rich table (figure, ours, baseline, ratio, unit, note) or JSON."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import orjson
from rich.console import Console
from rich.table import Table

from bench.figures import LOWER, Row


def _number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"


def _ratio(row: Row) -> str:
    ratio = row.ratio
    if ratio is None:
        return "—"
    text = f"{ratio:.3f}" if ratio < 10 else f"{ratio:.1f}"
    if row.met is True:
        return f"[green]{text}[/green]"
    if row.met is False:
        return f"[red]{text}[/red]"
    return text


def table(rows: Sequence[Row], title: str) -> Table:
    out = Table(title=title, show_lines=False)
    out.add_column("figure", overflow="fold")
    out.add_column("ours", justify="right")
    out.add_column("baseline", justify="right")
    out.add_column("ratio", justify="right")
    out.add_column("unit")
    out.add_column("note", overflow="fold")
    for row in rows:
        direction = "lower is better" if row.better == LOWER else ""
        goal = f"goal {row.goal}: {'met' if row.met else 'NOT met'}" if row.goal else ""
        note = "; ".join(x for x in (goal, direction, row.note) if x)
        out.add_row(f"{row.backend} · {row.figure}", _number(row.ours), _number(row.baseline),
                    _ratio(row), row.unit, note)
    return out


def print_table(rows: Sequence[Row], title: str) -> None:
    Console(width=220).print(table(rows, title))


def as_json(rows: Sequence[Row], config: dict[str, Any]) -> str:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and math.isnan(value) else value

    data = {"config": config,
            "rows": [{k: clean(v) for k, v in r.as_dict().items()} for r in rows]}
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
