"""Reaction times through the command layer and the situations projection, on a manual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest

from domain.catalogue import jsonable
from infra.db import scratch_target
from infra.eventstore import notification_reader, read_model_url
from infra.settings import Settings
from projections.base import Runner
from projections.reaction_times import (
    AS_MEASURED,
    CURRENT,
    evidence,
    list_situations,
    reaction_report,
)
from projections.replay import state_digest
from projections.situations import SituationFactsProjection
from tests.reaction_support import Desk, berlin, berlin_container

FRIDAY_1730, MONDAY_0915 = berlin(3, 6, 17, 30), berlin(3, 9, 9, 15)


@pytest.fixture
def desk(sqlite_settings: Settings) -> Iterator[Desk]:
    with berlin_container(sqlite_settings, berlin(3, 2, 8)) as (container, clock):
        yield Desk(container, clock)


@pytest.fixture
def any_desk(any_settings: Settings) -> Iterator[Desk]:
    with berlin_container(any_settings, berlin(3, 2, 8)) as (container, clock):
        yield Desk(container, clock)


def read(desk: Desk, situation_id: UUID, *, at: datetime, as_of: datetime | None = None,
         basis: str = AS_MEASURED) -> dict[str, Any]:
    desk.settle()
    assert desk.container.alerts is not None
    with desk.container.engine.connect() as conn:
        found = evidence(conn, desk.container.alerts.policy, situation_id, at=at,
                         as_of=as_of or desk.clock(), basis=basis)
    assert found is not None
    return found["clocks"]  # type: ignore[no-any-return]


def test_complaint_friday_1730_answered_monday_0915_on_the_default_calendar(
        any_desk: Desk) -> None:
    client = any_desk.client()
    situation = any_desk.complaint(client, FRIDAY_1730)
    any_desk.contact(client, situation, MONDAY_0915)
    first = read(any_desk, situation, at=berlin(3, 9, 12))["first_reaction"]
    assert (first["business_seconds"], first["wall_seconds"]) == (2700, 229_500)
    assert first["calendar"]["source"] == "built-in default"
    assert first["calendar"]["definition"]["timezone"] == "Europe/Berlin"


def test_monday_holiday_answer_on_tuesday_is_still_45_business_minutes(desk: Desk) -> None:
    desk.calendar(berlin(3, 5, 12), holidays=[date(2026, 3, 9)])
    client = desk.client()
    situation = desk.complaint(client, FRIDAY_1730)
    desk.acknowledge(situation, berlin(3, 10, 9, 15))
    first = read(desk, situation, at=berlin(3, 10, 12))["first_reaction"]
    assert (first["business_seconds"], first["wall_seconds"]) == (2700, 315_900)
    assert first["calendar"]["definition"]["holidays"] == ["2026-03-09"]


def test_paused_time_is_excluded_from_both_clocks(desk: Desk) -> None:
    client = desk.client()
    situation = desk.manual(client, "payment_delay", berlin(3, 9, 16))
    desk.pause(situation, berlin(3, 9, 17))
    desk.resume(situation, berlin(3, 10, 10))
    desk.acknowledge(situation, berlin(3, 10, 11))
    desk.resolve(situation, berlin(3, 10, 12))
    clocks = read(desk, situation, at=berlin(3, 11, 9))
    assert (clocks["first_reaction"]["wall_seconds"],
            clocks["first_reaction"]["business_seconds"]) == (7200, 7200)
    assert (clocks["resolution"]["wall_seconds"],
            clocks["resolution"]["business_seconds"]) == (3 * 3600, 3 * 3600)


def test_reopen_resumes_resolution_and_keeps_the_first_reaction(desk: Desk) -> None:
    client = desk.client()
    situation = desk.complaint(client, berlin(3, 9, 10))
    desk.acknowledge(situation, berlin(3, 9, 10, 30))
    desk.resolve(situation, berlin(3, 9, 12))
    desk.reopen(situation, berlin(3, 10, 10))
    desk.acknowledge(situation, berlin(3, 10, 10, 10))
    desk.resolve(situation, berlin(3, 10, 11))
    clocks = read(desk, situation, at=berlin(3, 11, 9))
    assert clocks["first_reaction"]["business_seconds"] == 1800
    assert clocks["resolution"]["business_seconds"] == 3 * 3600  # 10-12 Monday, 10-11 Tuesday
    assert [x["reason"] for x in clocks["resolution"]["excluded"]] == ["resolved"]


def test_daylight_saving_change_in_the_calendar_time_zone(desk: Desk) -> None:
    client = desk.client()
    situation = desk.complaint(client, berlin(3, 27, 17))
    desk.contact(client, situation, berlin(3, 30, 10))
    first = read(desk, situation, at=berlin(3, 30, 12))["first_reaction"]
    assert (first["business_seconds"], first["wall_seconds"]) == (7200, 64 * 3600)


def test_calendar_changed_after_the_fact_gives_both_figures(any_desk: Desk) -> None:
    any_desk.sla(berlin(3, 5, 12), "complaint", first_reaction=2400, resolution=36000)
    client = any_desk.client()
    situation = any_desk.complaint(client, FRIDAY_1730)
    any_desk.contact(client, situation, MONDAY_0915)
    # On Wednesday the Monday is declared a holiday, after the answer was measured.
    any_desk.calendar(berlin(3, 11, 12), holidays=[date(2026, 3, 9)])
    at = berlin(3, 12, 9)
    then = read(any_desk, situation, at=at, basis=AS_MEASURED)["first_reaction"]
    now = read(any_desk, situation, at=at, basis=CURRENT)["first_reaction"]
    assert (then["business_seconds"], then["status"]) == (2700, "breached")
    assert then["calendar"]["source"] == "built-in default"
    assert (now["business_seconds"], now["status"]) == (1800, "met")
    assert now["calendar"]["version"] == 1
    before_change = read(any_desk, situation, at=at, as_of=berlin(3, 11, 11), basis=CURRENT)
    assert before_change["first_reaction"]["business_seconds"] == 2700


def test_as_of_shows_a_late_entered_answer_as_not_yet_known(desk: Desk) -> None:
    client = desk.client()
    situation = desk.complaint(client, FRIDAY_1730)
    desk.contact(client, situation, MONDAY_0915, entered_after=timedelta(hours=5))
    known_then = read(desk, situation, at=berlin(3, 9, 12), as_of=berlin(3, 9, 12))
    assert known_then["first_reaction"]["state"] == "running"
    assert known_then["first_reaction"]["business_seconds"] == 1800 + 3 * 3600
    known_now = read(desk, situation, at=berlin(3, 9, 12))
    assert known_now["first_reaction"]["business_seconds"] == 2700


def test_list_filters_by_status_and_breach(desk: Desk) -> None:
    desk.sla(berlin(3, 5, 12), "complaint", first_reaction=3600, resolution=36000)
    client = desk.client()
    slow = desk.complaint(client, berlin(3, 9, 9))
    quick = desk.complaint(client, berlin(3, 9, 10))
    desk.acknowledge(quick, berlin(3, 9, 10, 20))
    desk.resolve(quick, berlin(3, 9, 11))
    desk.settle()
    assert desk.container.alerts is not None
    policy = desk.container.alerts.policy
    with desk.container.engine.connect() as conn:
        def ids(**filters: Any) -> list[UUID]:
            found, _next = list_situations(conn, policy, at=berlin(3, 9, 12),
                                           as_of=desk.clock(), **filters)
            return [m.facts.situation_id for m in found]

        assert ids() == [slow, quick]
        assert ids(status="open") == [slow]
        assert ids(status="resolved") == [quick]
        assert ids(breached=True) == [slow]
        assert ids(breached=False) == [quick]
        page, cursor = list_situations(conn, policy, at=berlin(3, 9, 12), as_of=desk.clock(),
                                       limit=1)
        assert [m.facts.situation_id for m in page] == [slow] and cursor is not None
        rest, end = list_situations(conn, policy, at=berlin(3, 9, 12), as_of=desk.clock(),
                                    after=cursor)
        assert [m.facts.situation_id for m in rest] == [quick] and end is None


def _report(desk: Desk, engine: Any) -> dict[str, Any]:
    assert desk.container.alerts is not None
    with engine.connect() as conn:
        return jsonable(reaction_report(  # type: ignore[no-any-return]
            conn, desk.container.alerts.policy, at=berlin(3, 20, 12),
            as_of=berlin(3, 20, 12), basis=AS_MEASURED))


def test_replay_into_a_fresh_database_gives_the_same_report(any_desk: Desk,
                                                            any_settings: Settings) -> None:
    any_desk.sla(berlin(3, 5, 12), "complaint", first_reaction=3600, resolution=4 * 3600)
    ann, bob = any_desk.specialist("Ann"), any_desk.specialist("Bob")
    for specialist, start in ((ann, berlin(3, 9, 9)), (bob, berlin(3, 10, 9))):
        client = any_desk.client(specialist_id=specialist)
        for minutes in (15, 45, 90):
            situation = any_desk.complaint(client, start)
            any_desk.acknowledge(situation, start + timedelta(minutes=minutes))
        any_desk.manual(client, "low_usage", start + timedelta(hours=3))
    any_desk.calendar(berlin(3, 12, 9), holidays=[date(2026, 3, 10)])
    any_desk.settle()
    live = _report(any_desk, any_desk.container.engine)
    ann_complaints = next(g for g in live["groups"]
                          if g["specialist_id"] == str(ann) and g["kind"] == "complaint")
    first = ann_complaints["first_reaction"]
    assert ann_complaints["count"] == 3
    assert first["business_seconds"]["median"]["seconds"] == 45 * 60
    assert first["business_seconds"]["p90"]["seconds"] == 90 * 60
    assert (first["decided"], first["breached"], first["breach_rate"]) == (3, 1, 0.3333)

    projection = SituationFactsProjection()
    with scratch_target(read_model_url(any_settings)) as fresh:
        Runner(fresh, [projection], notification_reader(any_desk.container.app)).catch_up()
        assert _report(any_desk, fresh) == live
        with fresh.connect() as rebuilt, any_desk.container.engine.connect() as original:
            assert state_digest(rebuilt, projection.tables) == state_digest(
                original, projection.tables)
