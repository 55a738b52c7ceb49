"""The reaction report and lists are computed with laid-out working-time arithmetic and lean
figures; on a seeded random history they must equal what the day-by-day calendar walk and full
figures give, at several `at`, `as_of` and both calendar bases."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

import domain.reaction as reaction
from domain import business_calendar as walk
from domain.catalogue import jsonable
from domain.errors import InvalidTransitionError
from infra.settings import Settings
from projections import reaction_times
from projections.reaction_times import AS_MEASURED, CURRENT, list_situations, reaction_report
from tests.reaction_support import Desk, berlin, berlin_container


@pytest.fixture
def desk(sqlite_settings: Settings) -> Iterator[Desk]:
    with berlin_container(sqlite_settings, berlin(1, 5, 8)) as (container, clock):
        yield Desk(container, clock)


def _history(desk: Desk, rng: random.Random) -> list[datetime]:
    """Situations over three months: reactions (some entered late), pauses, resolves, reopens,
    targets and a calendar changed on the way. Returns the recorded moments of the writes."""
    clients = [desk.client(desk.specialist(name)) for name in ("Ann", "Bob")]
    desk.sla(berlin(1, 5, 8, 30), "complaint", 2 * 3600, 3 * 86_400)
    moments = []
    t = berlin(1, 5, 9)
    open_ids: list[tuple[UUID, UUID]] = []
    for step in range(60):
        t += timedelta(minutes=rng.randint(20, 2000), seconds=rng.randint(0, 59))
        if step == 30:
            desk.calendar(t, holidays=[date(2026, 2, 16)])
            desk.sla(t + timedelta(seconds=1), "low_usage", 3600, 86_400, business_hours=False)
        client = rng.choice(clients)
        move = rng.random()
        if not open_ids or move < 0.3:
            open_ids.append((client, desk.complaint(client, t) if rng.random() < 0.7
                             else desk.manual(client, "low_usage", t)))
        else:
            owner, situation = rng.choice(open_ids)
            late = timedelta(hours=rng.choice((0, 0, 30)))
            action = rng.choice(("contact", "ack", "pause", "resume", "resolve", "reopen"))
            try:
                if action == "contact":
                    desk.contact(owner, situation, t, entered_after=late)
                elif action == "ack":
                    desk.acknowledge(situation, t)
                else:
                    getattr(desk, action)(situation, t)
            except InvalidTransitionError:  # a move the situation's state refuses
                continue
        moments.append(desk.clock())
    desk.settle()
    return moments


def _exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """The day-by-day walk and full figures, as the reports were computed before."""
    monkeypatch.setattr(reaction, "business_seconds", walk.business_seconds)
    monkeypatch.setattr(reaction, "business_seconds_excluding", walk.business_seconds_excluding)
    monkeypatch.setattr(reaction, "add_business_seconds", walk.add_business_seconds)
    full = reaction.figure
    monkeypatch.setattr(reaction_times, "figure",
                        lambda clock, cal, target, detail=True: full(clock, cal, target))


def _reads(desk: Desk, moments: list[datetime]) -> list[Any]:
    assert desk.container.alerts is not None
    policy = desk.container.alerts.policy
    out = []
    end = desk.clock()
    n = len(moments)
    with desk.container.engine.connect() as conn:
        for at, as_of in ((end + timedelta(days=40), end), (moments[n // 3], end),
                          (end, moments[2 * n // 3]), (moments[3 * n // 4], moments[n // 2])):
            for basis in (AS_MEASURED, CURRENT):
                out.append(jsonable(reaction_report(conn, policy, at=at, as_of=as_of,
                                                    basis=basis)))
                for breached in (True, False, None):
                    found, more = list_situations(conn, policy, at=at, as_of=as_of,
                                                  basis=basis, breached=breached, limit=15)
                    out.append(jsonable([reaction_times.summary(m) for m in found]))
                    out.append(jsonable(more))
    return out


@pytest.mark.parametrize("seed", [3, 11])
def test_fast_reports_equal_the_day_by_day_walk(desk: Desk, seed: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    moments = _history(desk, random.Random(seed))
    fast = _reads(desk, moments)
    _exact(monkeypatch)
    exact = _reads(desk, moments)
    assert fast == exact
    report = fast[0]
    assert report["totals"]["count"] > 10  # the history did produce situations to compare
    assert report["totals"]["first_reaction"]["stopped"] > 0
