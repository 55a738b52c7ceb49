"""The page-fold writer stores what each column's bind processor gives, on both backends: on
PostgreSQL it binds a page's rows column by column as arrays, and a column whose values mix
Python types goes row by row instead (one array has one element type)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import JSON, Column, Engine, MetaData, Numeric, String, Table, Uuid, select

from infra.db import make_engine
from projections.base import UtcDateTime
from projections.fold import Rows
from tests.support import fresh_pg_database

meta = MetaData()
things = Table(
    "fold_writer_things", meta,
    Column("id", Uuid, primary_key=True),
    Column("label", String(20)),
    Column("amount", Numeric(18, 4)),
    Column("data", JSON),
    Column("at", UtcDateTime),
)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    def made(url: str) -> Iterator[Engine]:
        engine = make_engine(url)
        meta.create_all(engine)
        try:
            yield engine
        finally:
            engine.dispose()

    if request.param == "sqlite":
        yield from made(f"sqlite:///{tmp_path}/fold.db")
    else:
        with fresh_pg_database() as url:
            yield from made(url)


def _write(engine: Engine, rows: list[dict[str, object]]) -> None:
    held = Rows([things])
    for row in rows:
        held.put(things, row)
    with engine.begin() as conn:
        held.write(conn)


def test_a_page_of_rows_reads_back_as_written(engine: Engine) -> None:
    at = datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=2)))
    rows = [{"id": uuid.uuid5(uuid.NAMESPACE_URL, str(n)), "label": f"r{n}" if n % 3 else None,
             "amount": Decimal(n) / 8 if n % 4 else None,
             "data": {"n": n, "list": [n, "x"]} if n % 5 else None,
             "at": at + timedelta(seconds=n) if n % 2 else None} for n in range(50)]
    _write(engine, rows)
    _write(engine, [{**rows[1], "label": "changed"}])  # an upsert replaces the row
    with engine.connect() as conn:
        found = {r.id: r._asdict() for r in conn.execute(select(things))}
    assert len(found) == 50
    assert found[rows[1]["id"]]["label"] == "changed"  # type: ignore[index]
    for row in rows[2:]:
        stored = found[row["id"]]  # type: ignore[index]
        assert stored["label"] == row["label"] and stored["amount"] == row["amount"]
        assert stored["data"] == row["data"]
        assert stored["at"] == row["at"]
        if stored["at"] is not None:
            assert stored["at"].tzinfo == UTC


def test_a_column_mixing_python_types_is_still_written(engine: Engine) -> None:
    rows = [{"id": uuid.uuid4(), "label": "a", "amount": 3, "data": None, "at": None},
            {"id": uuid.uuid4(), "label": "b", "amount": Decimal("2.5"), "data": None,
             "at": None}]
    _write(engine, rows)
    with engine.connect() as conn:
        amounts = sorted(r.amount for r in conn.execute(select(things.c.amount)))
    assert amounts == [Decimal("2.5"), Decimal("3")]
