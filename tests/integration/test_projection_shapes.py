"""A projection whose tables change shape in a new version of the code is rebuilt at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from projections.base import Projection, Runner, positions
from projections.fold import FoldProjection, Rows

EVENTS = [(1, "a"), (2, "b"), (3, "c")]


def reader(start: int, limit: int) -> list[tuple[int, Any]]:
    return [e for e in EVENTS if e[0] >= start][:limit]


def make(version: int) -> Projection:
    columns = [Column("position", Integer, primary_key=True), Column("value", String(10))]
    if version == 2:
        columns.append(Column("upper", String(10)))
    table = Table("shape_demo", MetaData(), *columns)

    class Demo(FoldProjection):
        name = "shape_demo"
        tables = (table,)

        def fold(self, rows: Rows, event: Any, position: int) -> None:
            row = {"position": position, "value": event}
            if version == 2:
                row["upper"] = event.upper()
            rows.put(table, row)

    return Demo()


def test_a_changed_table_shape_drops_and_replays_that_projection(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    first = Runner(engine, [make(1)], reader)
    assert first.catch_up() == 3
    second = Runner(engine, [make(2)], reader)  # the code changed its table: start over
    with engine.connect() as conn:
        assert positions(conn)["shape_demo"] == 0
    assert second.catch_up() == 3
    table = second.projections[0].tables[0]
    with engine.connect() as conn:
        assert [tuple(r) for r in conn.execute(select(table).order_by(table.c.position))] == [
            (1, "a", "A"), (2, "b", "B"), (3, "c", "C")]
    third = Runner(engine, [make(2)], reader)  # same shape: kept as it is
    assert third.catch_up() == 0
