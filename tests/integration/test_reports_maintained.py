"""Issue 16.1 for reaction times and segments: the fast paths (stored clock summaries and the
per-rule-version memo of stopped clocks' figures; segments classified in SQL) give the report
a full recomputation from events gives, on the demo history at 20 random moments with random
filters, on SQLite and PostgreSQL; the second read of each (memo filled) too."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from infra.bootstrap import Container, build
from infra.export import import_lines
from infra.settings import Settings
from projections import reaction_times
from projections.reaction_times import (
    breached_situations,
    list_situations,
    reaction_report,
    summary,
)
from projections.segment_report import segments_report
from projections.situations import clock_rows, situation_rows
from tests.support import fresh_pg_database

FIXTURES = Path(__file__).parent.parent / "fixtures"
MASTER_KEY = (FIXTURES / "demo_history.master.key").read_text().strip()


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    def load(url: str) -> Iterator[Container]:
        container = build(Settings(database_url=url, master_key=MASTER_KEY),
                          start_follower=False)
        try:
            with gzip.open(FIXTURES / "demo_history.jsonl.gz") as lines:
                import_lines(container, lines)
            container.runner.catch_up()
            yield container
        finally:
            container.close()

    if request.param == "sqlite":
        yield from load(f"sqlite:///{tmp_path_factory.mktemp('reports')}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield from load(url)


def _moments(demo: Container, n: int, seed: int) -> list[tuple[datetime, datetime]]:
    rng = random.Random(seed)
    with demo.engine.connect() as conn:
        c = clock_rows.c
        first, last = conn.execute(select(func.min(c.occurred_at),
                                          func.max(c.occurred_at))).one()
        r_first, r_last = conn.execute(select(func.min(c.recorded_at),
                                              func.max(c.recorded_at))).one()
    out = []
    for i in range(n):
        at = first + (last + timedelta(days=20) - first) * rng.random()
        as_of = r_last if i % 4 == 0 else r_first + (r_last - r_first) * rng.random()
        out.append((at, as_of))
    return out


def test_reaction_report_equals_measuring_every_situation_at_20_random_moments(
        demo: Container) -> None:
    assert demo.alerts is not None
    policy = demo.alerts.policy
    rng = random.Random(161)
    reaction_times._STOPPED_FIGURES.clear()
    with demo.engine.connect() as conn:
        kinds = sorted(set(conn.execute(select(situation_rows.c.kind)).scalars()))
        specialists = sorted({s for s in conn.execute(select(situation_rows.c.specialist_id))
                              .scalars() if s is not None}, key=str)
        stopped = 0
        for at, as_of in _moments(demo, 20, 161):
            options: dict[str, Any] = {
                "at": at, "as_of": as_of, "basis": rng.choice(["as_measured", "current"]),
                "kind": rng.choice([None, *kinds]),
                "specialist": rng.choice([None, None, *specialists]), "ids_limit": 5}
            if rng.random() < 0.3:
                options["opened_from"] = at - timedelta(days=rng.randint(10, 200))
            full = reaction_report(conn, policy, stored=False, **options)
            assert reaction_report(conn, policy, **options) == full, options
            assert reaction_report(conn, policy, **options) == full, options  # memo filled
            stopped += full["totals"]["first_reaction"]["stopped"]
    assert stopped > 0 and reaction_times._STOPPED_FIGURES  # figures were there to remember


def test_segments_in_sql_equal_classifying_every_client_at_20_random_moments(
        demo: Container) -> None:
    rng = random.Random(163)
    with demo.engine.connect() as conn:
        for at, as_of in _moments(demo, 20, 163):
            options: dict[str, Any] = {"at": at, "as_of": as_of,
                                       "tz": rng.choice(["UTC", "Europe/Berlin"]),
                                       "segment": rng.choice([None, "active", "lost"]),
                                       "limit": 1000}
            assert segments_report(conn, **options) == segments_report(conn, in_sql=False,
                                                                       **options), options


def test_controls_breaches_equal_the_situation_list_at_20_random_moments(
        demo: Container) -> None:
    assert demo.alerts is not None
    policy = demo.alerts.policy
    rng = random.Random(164)
    with demo.engine.connect() as conn:
        specialists = sorted({s for s in conn.execute(select(situation_rows.c.specialist_id))
                              .scalars() if s is not None}, key=str)
        seen = 0
        for at, as_of in _moments(demo, 20, 164):
            specialist = rng.choice([None, None, *specialists])
            every, _next = list_situations(conn, policy, at=at, as_of=as_of, breached=True,
                                           specialist=specialist, limit=10 ** 6)
            for limit in (3, 10 ** 6):
                count, page, more = breached_situations(conn, policy, at=at, as_of=as_of,
                                                        specialist=specialist, limit=limit)
                assert count == len(every)
                assert [summary(m) for m in page] == [summary(m) for m in every[:limit]]
                last = every[limit - 1].facts if len(every) > limit else None
                assert more == (None if last is None else (last.opened_at, last.situation_id))
            seen += len(every)
    assert seen > 0
