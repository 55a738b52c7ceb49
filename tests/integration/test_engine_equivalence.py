"""The page-fold projection engine gives the answers of the engine it replaced.

`tests/fixtures/demo_history.*` were made with the per-statement engine (commit df90ca8): a demo
history of 150 clients over 12 months (5,315 events, four erasures among them), exported with
its data keys, and the replay receipt of every projection over it. Imported into an empty store
(SQLite and PostgreSQL), the history replayed by today's engine must give every projection the
same state digest and event digest, so receipts made before the change still verify.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from infra.bootstrap import Container, build
from infra.eventstore import notification_reader
from infra.export import import_lines
from infra.settings import Settings
from projections.base import Runner
from projections.replay import rebuild, state_digest
from tests.support import fresh_pg_database

FIXTURES = Path(__file__).parent.parent / "fixtures"
MASTER_KEY = (FIXTURES / "demo_history.master.key").read_text().strip()


def _golden() -> dict[str, Any]:
    return json.loads((FIXTURES / "demo_history.receipts.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def imported(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    def load(url: str) -> Iterator[Container]:
        container = build(Settings(database_url=url, master_key=MASTER_KEY),
                          start_follower=False)
        try:
            with gzip.open(FIXTURES / "demo_history.jsonl.gz") as lines:
                assert import_lines(container, lines) == _golden()["events"]
            yield container
        finally:
            container.close()

    if request.param == "sqlite":
        yield from load(f"sqlite:///{tmp_path}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield from load(url)


def test_live_follow_gives_the_old_engines_digests(imported: Container) -> None:
    golden = _golden()["receipts"]
    assert imported.runner.catch_up() == _golden()["events"]
    with imported.engine.connect() as conn:
        digests = {p.name: state_digest(conn, p.tables) for p in imported.runner.projections}
    assert digests == {name: r["state_digest"] for name, r in golden.items()}


def test_replay_receipts_made_before_the_change_still_verify(imported: Container,
                                                             tmp_path: Path) -> None:
    golden = _golden()["receipts"]
    for projection in imported.runner.projections:
        target = create_engine(f"sqlite:///{tmp_path}/replay-{projection.name}.db")
        try:
            receipt = rebuild(projection, notification_reader(imported.app), target).as_dict()
        finally:
            target.dispose()
        old = golden[projection.name]
        same = ("first_position", "last_position", "events", "events_digest", "state_digest")
        assert {k: receipt[k] for k in same} == {k: old[k] for k in same}, projection.name


def test_a_runner_that_holds_nothing_between_pages_gives_the_same_digests(
        imported: Container, tmp_path: Path) -> None:
    """Every page loads what its events declare they need (a memory budget of one row drops
    everything after each page): a need missing from some `needs()` would show here as a
    parked event or a different digest, not only at scale."""
    golden = _golden()["receipts"]
    target = create_engine(f"sqlite:///{tmp_path}/tight.db")
    try:
        runner = Runner(target, imported.runner.projections, notification_reader(imported.app),
                        page_size=97, budget_rows=1)
        assert runner.catch_up() == _golden()["events"]
        assert runner.parked == 0
        assert runner.loads > 0  # rows were loaded back, page after page
        with target.connect() as conn:
            digests = {p.name: state_digest(conn, p.tables) for p in runner.projections}
    finally:
        target.dispose()
    assert digests == {name: r["state_digest"] for name, r in golden.items()}
