"""The satisfaction report's complaints counted per stage and local month in SQL must equal the
row-by-row count (`in_sql=False`), on a seeded bench history (the demo's) with extra complaints
filed on every day of it, in zones whose months start at different UTC instants, for whole
histories, periods and past knowledge."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from bench import ingest
from bench.history import END, History
from bench.runner import SeededIds
from commands.service import RegisterComplaint
from demo.words import STAGES
from domain.values import Channel
from infra.bootstrap import Container, build
from infra.settings import Settings
from projections.satisfaction import satisfaction_report
from projections.surveys import complaints


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    path = tmp_path_factory.mktemp("satsql") / "crm.db"
    container = build(Settings(database_url=f"sqlite:///{path}"), start_follower=False,
                      new_id=SeededIds(5))
    history = History(6000, 200, seed=5)
    ingest.write_history(container, history, ingest.BATCH)
    _extra_complaints(container, history, random.Random(5))
    container.runner.catch_up()
    try:
        yield container
    finally:
        container.close()


def _extra_complaints(container: Container, history: History, rng: random.Random) -> None:
    """The demo files a complaint every few hundred events: 80 more, some without a stage, at
    any hour of the history (month edges in every zone included)."""
    first = datetime.combine(history.start, time(), tzinfo=UTC)
    days = (datetime.combine(END, time(), tzinfo=UTC) - first).days
    commands = []
    for _ in range(80):
        at = first + timedelta(days=rng.randrange(7, days), seconds=rng.randrange(86_400))
        commands.append(RegisterComplaint(
            client_id=rng.choice(history.client_ids(before=at)),
            text="Not happy with the last visit.", stage=rng.choice((*STAGES, None)),
            channel=Channel.PHONE, occurred_at=at))
    container.app.execute(commands, ingest.ACTOR)


def test_complaints_per_month_in_sql_equal_the_row_count(store: Container) -> None:
    t = complaints.c
    with store.engine.connect() as conn:
        first, last, r_first, r_last, n = conn.execute(select(
            func.min(t.occurred_at), func.max(t.occurred_at), func.min(t.recorded_at),
            func.max(t.recorded_at), func.count())).one()
        assert n > 50  # the history files complaints over many months
        middle, r_middle = first + (last - first) / 2, r_first + (r_last - r_first) / 2
        far = datetime(2031, 1, 1, tzinfo=UTC)
        moments = [(far, far), (middle, r_last), (last, r_middle), (first, r_last)]
        periods = [(None, None), (first + timedelta(days=40), None),
                   (None, datetime(2025, 9, 1, tzinfo=UTC)),
                   (datetime(2025, 6, 30, 22, tzinfo=UTC), datetime(2026, 1, 31, 23, tzinfo=UTC))]
        months = 0
        for at, as_of in moments:
            for tz in ("UTC", "Pacific/Kiritimati", "America/Los_Angeles", "Europe/Berlin"):
                for start, end in periods:
                    fast, exact = (satisfaction_report(conn, at=at, as_of=as_of, tz=tz,
                                                       start=start, end=end, in_sql=in_sql,
                                                       from_tallies=False)
                                   for in_sql in (True, False))
                    assert fast == exact, (at, as_of, tz, start, end)
                    # and the tallies kept as surveys end (projections.satisfaction_tallies)
                    assert satisfaction_report(conn, at=at, as_of=as_of, tz=tz, start=start,
                                               end=end) == exact, (at, as_of, tz, start, end)
                    months += len(fast["months"])
        assert months > 100
