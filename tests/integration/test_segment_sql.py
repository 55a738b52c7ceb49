"""The segments report counted in SQL (from the latest instants kept per client, or from the
activity rows of the clients active lately) must equal the report computed in Python from every
client's activity (`in_sql=False`), on seeded bench histories (the demo's, in GBP) with extra
visits in two currencies, amounts on the band edges, and contacts back-dated (to just after the
client's registration) or dated ahead of the history's end."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Connection, func, select

from bench import ingest
from bench.history import END, History
from bench.runner import SeededIds
from commands.activity import LogContact
from commands.service import CloseWorkOrder, OpenWorkOrder
from domain.errors import InvalidValueError
from domain.values import Channel, Direction
from infra.bootstrap import Container, build
from infra.settings import Settings
from projections.segment_report import (
    SEGMENTS,
    _classified,
    _Frame,
    segment_members,
    segments_report,
)
from projections.segments import segment_activity, segment_clients
from tests.support import TEST_MASTER_KEY, fresh_pg_database

ZONES = ("UTC", "Pacific/Chatham", "America/St_Johns", "Europe/Berlin")


def _extras(container: Container, history: History, seed: int) -> None:
    """Visits with awkward amounts (some in USD for seed 11) and contacts far back or ahead."""
    rng = random.Random(seed)
    start = datetime.combine(history.start, time(), tzinfo=UTC)
    end = datetime.combine(END, time(), tzinfo=UTC)
    commands: list[object] = []
    for n in range(40):
        when = start + timedelta(days=rng.randint(7, (end - start).days + 20),
                                 seconds=rng.randint(0, 86_399))
        client = rng.choice(history.client_ids(before=when))
        order = history.new_id("extra-order")
        amount = rng.choice(("166.6666", "166.6667", "500.00", "0.1", "0.2", "1999.9999",
                             "2000", "4999.99"))
        currency = "USD" if seed == 11 and n % 5 == 0 else "GBP"
        commands += [OpenWorkOrder(id=order, client_id=client, asset=f"extra {n}",
                                   occurred_at=when),
                     CloseWorkOrder(work_order_id=order, amount=amount, currency=currency,
                                    occurred_at=when + timedelta(hours=rng.randint(0, 30)))]
    registered = history.registered()
    for n in range(30):
        client = rng.choice(history.client_ids())
        back = registered[client] + timedelta(hours=1 + n)
        when = rng.choice((back, back, max(back, end - timedelta(days=30 - n)),
                           end + timedelta(days=35 + n), end + timedelta(days=75 + n)))
        commands.append(LogContact(client_id=client, channel=Channel.PHONE,
                                   direction=Direction.OUTBOUND, topic="extra", summary="x",
                                   occurred_at=when))
    for command in commands:
        container.app.execute([command], ingest.ACTOR)  # type: ignore[list-item]


@pytest.fixture(scope="module", params=[("sqlite", 7), ("sqlite", 11), ("postgresql", 11)],
                ids=lambda p: f"{p[0]}-{p[1]}")
def store(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    backend, seed = request.param
    with ExitStack() as stack:
        url = (stack.enter_context(fresh_pg_database()) if backend == "postgresql" else
               f"sqlite:///{tmp_path_factory.mktemp('segsql') / 'crm.db'}")
        container = build(Settings(database_url=url, master_key=TEST_MASTER_KEY),
                          start_follower=False, new_id=SeededIds(seed))
        stack.callback(container.close)
        history = History(5000 if backend == "sqlite" else 2500, 300, seed=seed)
        ingest.write_history(container, history, ingest.BATCH)
        _extras(container, history, seed)
        container.runner.catch_up()
        yield container


def _moments(conn: Connection) -> list[tuple[datetime, datetime]]:
    t = segment_activity.c
    first, last = conn.execute(select(func.min(t.occurred_at), func.max(t.occurred_at))).one()
    r_first, r_last = conn.execute(select(func.min(t.recorded_at),
                                          func.max(t.recorded_at))).one()
    middle, r_middle = first + (last - first) / 2, r_first + (r_last - r_first) / 2
    on_a_visit = conn.execute(select(t.occurred_at).where(t.kind == "visit")
                              .order_by(t.occurred_at).limit(1).offset(20)).scalar_one()
    far = datetime(2031, 1, 1, tzinfo=UTC)
    return [(far, far), (last, r_last), (middle, r_last), (middle, r_middle), (far, r_middle),
            (on_a_visit, r_last), (on_a_visit + timedelta(days=31), r_last),
            (first + timedelta(days=200), r_first + (r_last - r_first) / 10),
            (datetime(2026, 3, 31, 23, 30, tzinfo=UTC), r_last)]


def _both(conn: Connection, **kw: object) -> tuple[object, object]:
    out: list[object] = []
    for in_sql in (True, False):
        try:
            out.append(segments_report(conn, in_sql=in_sql, **kw))  # type: ignore[arg-type]
        except InvalidValueError as error:
            out.append((error.field, error.message))
    return out[0], out[1]


def test_sql_report_equals_the_python_report(store: Container) -> None:
    with store.engine.connect() as conn:
        for at, as_of in _moments(conn):
            for tz in ZONES:
                for currency in (None, "GBP", "USD"):
                    fast, exact = _both(conn, at=at, as_of=as_of, tz=tz, currency=currency)
                    assert fast == exact, (at, as_of, tz, currency)
                fast, exact = _both(conn, at=at, as_of=as_of, tz=tz, currency="GBP",
                                    visit_bands=(2, 3), revenue_bands=(
                                        Decimal("0.3"), Decimal("500"), Decimal("500.0001")))
                assert fast == exact


def test_segment_pages_and_members_equal_the_python_lists(store: Container) -> None:
    with store.engine.connect() as conn:
        for at, as_of in _moments(conn)[:5]:
            for tz in ("UTC", "Pacific/Chatham"):
                for segment in SEGMENTS:
                    every = segments_report(conn, at=at, as_of=as_of, tz=tz, currency="GBP",
                                            segment=segment, limit=10**9,
                                            in_sql=False)["clients"]["items"]
                    assert segment_members(conn, at=at, as_of=as_of, tz=tz,
                                           segment=segment) == every
                    for after in (None, *every[:1], *every[len(every) // 2:][:1]):
                        for limit in (1, 7, 100_000):
                            fast, exact = _both(conn, at=at, as_of=as_of, tz=tz,
                                                currency="GBP", segment=segment,
                                                after=after, limit=limit)
                            assert fast == exact


def test_both_sql_parts_are_exercised(store: Container) -> None:
    """The moments classify some clients from their rows and some from their activity."""
    stored = counted = 0
    with store.engine.connect() as conn:
        for at, as_of in _moments(conn):
            parts = _classified(_Frame.of(at, as_of, "UTC")).selects
            stored += conn.execute(select(func.count())
                                   .select_from(parts[0].subquery())).scalar_one()
            counted += conn.execute(select(func.count())
                                    .select_from(parts[1].subquery())).scalar_one()
        assert conn.execute(select(func.count()).select_from(segment_clients)
                            .where(segment_clients.c.last_at.is_(None))).scalar_one() > 0
    assert stored > 0 and counted > 0
