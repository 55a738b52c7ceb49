"""On the demo history, on SQLite and PostgreSQL: replaying every projection gives the live
digests, and every page delivered a second time leaves every projection unchanged."""

from __future__ import annotations

from datetime import date

from demo import generate
from demo.load import Loader
from infra.bootstrap import Container
from infra.eventstore import notification_reader
from infra.rebuild import replay_and_compare
from projections.replay import state_digest

SMALL = {"seed": 11, "clients": 40, "months": 3, "start": date(2025, 10, 1)}


def _digests(container: Container) -> dict[str, str]:
    with container.engine.connect() as conn:
        return {p.name: state_digest(conn, p.tables) for p in container.runner.projections}


def test_demo_replay_matches_live_and_redelivery_changes_nothing(
        any_container: Container) -> None:
    stats = Loader(any_container.app, batch=100).load(generate(**SMALL))  # type: ignore[arg-type]
    assert stats.events > 500
    any_container.follower.wait_for(any_container.store_position(), 60)
    outcomes = replay_and_compare(any_container)
    assert [o.receipt.projection for o in outcomes if not o.matches] == [], [
        o.difference for o in outcomes if not o.matches]
    assert all(o.receipt.last_position == any_container.store_position() for o in outcomes)

    live = _digests(any_container)
    events = notification_reader(any_container.app)(1, 1_000_000)
    for start in range(0, len(events), 400):  # every event delivered again, page by page
        any_container.runner.apply_page(events[start:start + 400])
    assert _digests(any_container) == live
