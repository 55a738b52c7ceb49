"""The reaction report measures settled situations from the clock summaries the situations
projection keeps; on seeded random histories it must equal the report measured from the events,
at several `at` and `as_of` (some before a situation's last event) and both calendar bases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from domain.catalogue import jsonable
from infra.settings import Settings
from projections.reaction_times import AS_MEASURED, BASES, reaction_report
from projections.situations import quiet_groups, settled_rows
from tests.integration.test_reaction_fast_path import _history
from tests.reaction_support import Desk, berlin, berlin_container


@pytest.fixture
def desk(sqlite_settings: Settings) -> Iterator[Desk]:
    with berlin_container(sqlite_settings, berlin(1, 5, 8)) as (container, clock):
        yield Desk(container, clock)


def _reads(desk: Desk, moments: list[datetime], *, stored: bool) -> list[Any]:
    assert desk.container.alerts is not None
    policy = desk.container.alerts.policy
    end = desk.clock()
    n = len(moments)
    out = []
    with desk.container.engine.connect() as conn:
        for at, as_of in ((end + timedelta(days=40), end), (end, end), (moments[n // 3], end),
                          (end, moments[2 * n // 3]), (moments[3 * n // 4], moments[n // 2])):
            for basis in BASES:
                for limit in (None, 1, 3):
                    out.append(jsonable(reaction_report(conn, policy, at=at, as_of=as_of,
                                                        basis=basis, ids_limit=limit,
                                                        stored=stored)))
            out.append(jsonable(reaction_report(
                conn, policy, at=at, as_of=as_of, kind="complaint",
                opened_from=moments[n // 5], opened_before=moments[4 * n // 5], stored=stored)))
    return out


def _untargeted(desk: Desk, rng: random.Random, moments: list[datetime]) -> None:
    """Situations of kinds no SLA target covers, some of them reacted to or resolved."""
    client = desk.client(desk.specialist("Cy"))
    t = desk.clock()
    for step in range(12):
        t += timedelta(minutes=rng.randint(30, 900))
        situation = desk.manual(client, rng.choice(("other", "payment_delay")), t)
        if step % 3 == 1:
            desk.acknowledge(situation, t + timedelta(minutes=20))
        elif step % 3 == 2:
            desk.resolve(situation, t + timedelta(hours=2))
        moments.append(desk.clock())
    desk.settle()


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_stored_summaries_give_the_report_measured_from_events(desk: Desk, seed: int) -> None:
    rng = random.Random(seed)
    moments = _history(desk, rng)
    _untargeted(desk, rng, moments)
    stored = _reads(desk, moments, stored=True)
    assert stored == _reads(desk, moments, stored=False)
    with desk.container.engine.connect() as conn:
        end = desk.clock()
        settled = settled_rows(conn, as_of=end, at=end + timedelta(days=40))
        early = settled_rows(conn, as_of=moments[len(moments) // 2],
                             at=moments[3 * len(moments) // 4])
        quiet = quiet_groups(conn, as_of=end, at=end, targeted={"complaint", "low_usage"},
                             ids_limit=None)
    assert len(settled) == stored[0]["totals"]["count"] > 10  # every situation is settled
    assert len(early) > 0  # some are settled at earlier moments, so both paths ran
    assert sum(n for n, _ids in quiet.values()) >= 4  # some are only counted
    assert stored[0]["calendar"] == AS_MEASURED and stored[0]["ids_truncated"] is False


def test_bounded_id_lists_are_the_first_ids_of_the_full_lists(desk: Desk) -> None:
    moments = _history(desk, random.Random(5))
    _untargeted(desk, random.Random(5), moments)
    assert desk.container.alerts is not None
    policy = desk.container.alerts.policy
    end = desk.clock()
    with desk.container.engine.connect() as conn:
        full = jsonable(reaction_report(conn, policy, at=end, as_of=end))
        cut = jsonable(reaction_report(conn, policy, at=end, as_of=end, ids_limit=2))
    assert full["totals"]["count"] > 2 and cut["ids_truncated"] is True
    for whole, part in zip([full["totals"], *full["groups"]], [cut["totals"], *cut["groups"]],
                           strict=True):
        assert part["situation_ids"] == whole["situation_ids"][:2]
        for clock in ("first_reaction", "resolution"):
            assert (part[clock]["breached_situation_ids"]
                    == whole[clock]["breached_situation_ids"][:2])
            assert part[clock]["breached"] == whole[clock]["breached"]
        assert part["count"] == whole["count"]
