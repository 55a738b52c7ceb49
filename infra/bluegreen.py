"""Blue/green rebuilds: build a projection beside its live tables, check it, switch atomically.

1. Rebuild the projection (its current code) from the store into a shadow copy (a SQLite file
   attached for the switch, or a PostgreSQL schema) while the live tables keep serving.
2. Check it: an independent replay to the same position must give the same state digest (a
   nondeterministic projection never goes live).
3. Switch: with the live runner paused, catch the shadow up to the store's head, then in ONE
   transaction keep the live rows as `<table>__prev`, replace the live rows by the shadow's and set
   the tracking position. Readers see the old rows or the new ones, never an empty table.
`rollback()` puts the `__prev` copy back the same way. Tables must keep their shape; a version of
a projection that changes its tables' columns ships them under new table names.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, Engine, Table, text
from sqlalchemy import select as sql_select

from infra.bootstrap import Container
from infra.db import make_engine, scratch_target
from infra.eventstore import read_model_url
from infra.rebuild import naming_reader, select
from projections.base import (
    Projection,
    Runner,
    partition_tracking,
    positions,
    tracking,
    upsert,
)
from projections.replay import EventFailed, rebuild, state_digest


class SwitchRefused(Exception):
    """The rebuilt copy did not match an independent replay; the live tables are untouched."""


@dataclass(frozen=True)
class Switched:
    projection: str
    position: int
    previous_position: int
    digest: str


@contextmanager
def _shadow(container: Container) -> Iterator[tuple[Engine, str]]:
    """(engine writing the shadow tables, SQL prefix naming them from the live connection)."""
    url = read_model_url(container.settings)
    if url.startswith("sqlite"):
        live_file = Path(url.removeprefix("sqlite:///"))
        path = live_file.with_name(f"{live_file.stem}.shadow-{uuid.uuid4().hex[:8]}.db")
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield engine, f"sqlite:{path}"
        finally:
            engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    schema = f"shadow_{uuid.uuid4().hex[:12]}"
    with container.engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield container.engine.execution_options(schema_translate_map={None: schema}), schema
    finally:
        with container.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def _copy(conn: Connection, source: str, table: Table, *, keep_previous: bool) -> None:
    columns = ", ".join(f'"{c.name}"' for c in table.columns)
    if keep_previous:
        conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}__prev"'))
        conn.execute(text(f'CREATE TABLE "{table.name}__prev" AS SELECT * FROM "{table.name}"'))
    conn.execute(text(f'DELETE FROM "{table.name}"'))
    conn.execute(text(f'INSERT INTO "{table.name}" ({columns}) SELECT {columns} FROM {source}'))


def _switch(container: Container, projection: Projection, where: str, position: int) -> int:
    sqlite = where.startswith("sqlite:")
    with container.engine.connect() as conn:
        if sqlite:  # ATTACH cannot run inside a transaction
            conn.exec_driver_sql(f"ATTACH DATABASE '{where[7:]}' AS shadow")
            conn.commit()
        try:
            with conn.begin():
                previous = positions(conn, [projection.name], lock=True).get(projection.name, 0)
                for table in projection.tables:
                    source = f'shadow."{table.name}"' if sqlite else f'"{where}"."{table.name}"'
                    _copy(conn, source, table, keep_previous=True)
                upsert(conn, tracking, {"projection": projection.name + "__prev",
                                        "position": previous}, ["projection"])
                upsert(conn, tracking, {"projection": projection.name, "position": position},
                       ["projection"])
                _partitions_to(conn, projection.name, position)
        finally:
            if sqlite:
                conn.exec_driver_sql("DETACH DATABASE shadow")
                conn.commit()
    return previous


def _partitions_to(conn: Connection, name: str, position: int) -> None:
    """Read models fed per Kafka partition (docs/bus.md, "Partitions"): the copy switched in
    holds every event up to `position`, so each partition's position moves up to it (the
    consumers skip those events; their recorded offsets stay, and the records from there up
    to `position` are skipped by position). The rows are locked, so no consumer's page
    commits in between; one that has already applied past `position` refuses the switch."""
    pt = partition_tracking.c
    rows = conn.execute(sql_select(partition_tracking).where(pt.projection == name)
                        .with_for_update()).all()
    ahead = [r for r in rows if r.position > position]
    if ahead:
        raise SwitchRefused(f"{name}: the Kafka consumers applied partition "
                            f"{ahead[0].partition} up to {ahead[0].position}, past the rebuilt "
                            f"copy ({position}); run the rebuild again")
    conn.execute(partition_tracking.update().where(pt.projection == name)
                 .values(position=position))


def blue_green(container: Container, name: str,
               progress: Callable[[str, int], None] | None = None,
               on_park: Callable[[EventFailed], None] | None = None) -> Switched:
    """Rebuild, check, switch (see the module). `progress(phase, n)` counts events per phase;
    `on_park` hears of each event the rebuilt copy could not apply (parked, as live)."""
    projection = select([name], container.keyring)[0]
    reader = naming_reader(container.app)
    step = (lambda label: (lambda n: progress(label, n))) if progress else (lambda _l: None)
    with _shadow(container) as (shadow, where):
        built = rebuild(projection, reader, shadow, progress=step("rebuild"), on_park=on_park)
        with scratch_target(read_model_url(container.settings)) as check:
            fresh = select([name], container.keyring)[0]
            independent = rebuild(fresh, reader, check, stop=built.last_position,
                                  progress=step("check"))
        if independent.state_digest != built.state_digest:
            raise SwitchRefused(f"{name}: the rebuilt copy ({built.state_digest[:12]}) differs "
                                f"from an independent replay ({independent.state_digest[:12]})")
        shadow_runner = Runner(shadow, [projection], reader)
        with container.runner.paused():
            shadow_runner.catch_up(progress=step("catch up"))
            position = shadow_runner.position()
            with shadow.connect() as conn:
                digest = state_digest(conn, projection.tables)
            previous = _switch(container, projection, where, position)
    container.follower.notify(position)
    return Switched(name, position, previous, digest)


def rollback(container: Container, name: str) -> int:
    """Put back the copy the last switch replaced; the follower then catches it up."""
    projection = select([name], container.keyring)[0]
    with container.runner.paused(), container.engine.begin() as conn:
        previous = positions(conn, [name + "__prev"]).get(name + "__prev")
        if previous is None:
            raise SwitchRefused(f"{name}: there is no previous copy to roll back to")
        if conn.execute(sql_select(partition_tracking.c.position)
                        .where(partition_tracking.c.projection == name).limit(1)).first():
            # the consumers' offsets are past the previous copy's position: they would not
            # read its missing events again
            raise SwitchRefused(f"{name}: fed per Kafka partition, the previous copy cannot be "
                                "put back; rebuild it (crm rebuild) instead")
        for table in projection.tables:
            conn.execute(text(f'DELETE FROM "{table.name}"'))
            conn.execute(text(f'INSERT INTO "{table.name}" SELECT * FROM "{table.name}__prev"'))
        upsert(conn, tracking, {"projection": name, "position": previous}, ["projection"])
    container.follower.notify(previous)
    return previous
