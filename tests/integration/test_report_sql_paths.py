"""Report and card reads that count or bind in SQL must give what the generic reads give, on a
seeded bench history: the controls' overdue planned contacts (COUNT plus the first `limit`
rows, against every open one filtered in Python), and the card's prebuilt payment statements
(against the statements built per call)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Connection, and_, func, select

from bench import ingest
from bench.history import History
from bench.runner import SeededIds
from infra.bootstrap import Container, build
from infra.settings import Settings
from projections.activity import open_planned_contacts, planned_contacts
from projections.controls import controls_report
from projections.facts import known, percent
from projections.payments import (
    assignments,
    client_assignments,
    invoices,
    payment_regularity,
    payments,
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    path = tmp_path_factory.mktemp("sqlpaths") / "crm.db"
    container = build(Settings(database_url=f"sqlite:///{path}"), start_follower=False,
                      new_id=SeededIds(7))
    ingest.write_history(container, History(6000, 300, seed=7), ingest.BATCH)
    container.runner.catch_up()
    try:
        yield container
    finally:
        container.close()


def _moments(conn: Connection) -> list[tuple[datetime, datetime | None]]:
    t = planned_contacts.c
    first, last = conn.execute(select(func.min(t.due_at), func.max(t.due_at))).one()
    recorded = conn.execute(select(func.max(t.recorded_at))).scalar_one()
    middle = first + (last - first) / 2
    return [(last + timedelta(days=400), None), (middle, None), (middle, recorded),
            (last, first + (recorded - first) / 2 if recorded > first else recorded)]


def test_overdue_planned_contacts_counted_in_sql(store: Container) -> None:
    with store.engine.connect() as conn:
        specialists = [s for (s,) in conn.execute(
            select(planned_contacts.c.specialist_id).distinct().limit(3))]
        checked = 0
        for at, as_of in _moments(conn):
            for who in (None, *specialists):
                every = [r for r in open_planned_contacts(conn, at, as_of, due_before=at)
                         if who is None or r.specialist_id == who]
                for limit in (1, 7, 100_000):
                    section = controls_report(conn, at=at, as_of=as_of, specialist_id=who,
                                              limit=limit)["overdue_planned_contacts"]
                    assert section["count"] == len(every)
                    assert section["truncated"] == (len(every) > limit)
                    assert [i["planned_contact_id"] for i in section["items"]] == [
                        r.planned_contact_id for r in every[:limit]]
                checked += len(every)
        assert checked > 0  # the history has overdue planned contacts to compare


def test_card_payment_statements_bound_once(store: Container) -> None:
    with store.engine.connect() as conn:
        clients = [c for (c,) in conn.execute(select(invoices.c.client_id).distinct().limit(25))]
        assert clients
        for at, as_of in _moments(conn):
            for client in clients:
                assert payment_regularity(conn, client, at, as_of) == _regularity(
                    conn, client, at, as_of)
                one = assignments(conn, as_of, [client]).by_client
                rows = conn.execute(select(client_assignments).where(
                    client_assignments.c.client_id == client,
                    known(client_assignments.c.recorded_at, as_of))).all()
                assert one == ({client: sorted(
                    ((r.occurred_at, r.version, r.specialist_id) for r in rows),
                    key=lambda c: (c[0], c[1]))} if rows else {})


def _regularity(conn: Connection, client: object, at: datetime,
                as_of: datetime | None) -> dict[str, object]:
    """payment_regularity as it was written before: the statement built per call."""
    i, p = invoices, payments
    paid = func.coalesce(func.sum(p.c.amount_units), 0)
    in_time = and_(p.c.invoice_id == i.c.invoice_id, p.c.occurred_at <= i.c.due_at,
                   known(p.c.recorded_at, as_of))
    rows = conn.execute(
        select(i.c.invoice_id, i.c.amount_units, paid.label("paid"))
        .select_from(i.outerjoin(p, in_time))
        .where(i.c.client_id == client, i.c.due_at <= at, known(i.c.recorded_at, as_of))
        .group_by(i.c.invoice_id, i.c.amount_units)).all()
    on_time = sum(1 for r in rows if int(r.paid) >= r.amount_units)
    return {"on_time": on_time, "due": len(rows), "percent": percent(on_time, len(rows))}
