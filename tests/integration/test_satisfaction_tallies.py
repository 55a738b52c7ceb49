"""Satisfaction kept as tallies (projections.satisfaction_tallies, issue 16.1): the report read
from them equals the survey-by-survey count under every filter."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from infra.bootstrap import Container, build
from infra.export import import_lines
from infra.settings import Settings
from projections.satisfaction import satisfaction_report
from projections.satisfaction_tallies import sat_moves
from projections.surveys import assignments, surveys
from tests.integration.service_story import Station, station_container, t
from tests.support import fresh_pg_database

FIXTURES = Path(__file__).parent.parent / "fixtures"


def both(conn: Any, **options: Any) -> dict[str, Any]:
    kept, counted = (satisfaction_report(conn, from_tallies=flag, **options)
                     for flag in (True, False))
    assert kept == counted, options
    return kept


def test_a_reassignment_entered_later_moves_surveys_and_complaints_from_its_record_time(
        any_settings: Settings) -> None:
    with station_container(any_settings, "2026-03-01T08:00:00+00:00") as (container, clock):
        s = Station(container)
        petra, paul = s.specialist("Petra"), s.specialist("Paul")
        template = s.template()
        x = s.client("2026-01-01T00:00:00+00:00", specialist=petra)
        s.survey(s.visit(x, "2026-02-02T10:00:00+00:00"), template, "2026-02-06T10:00:00+00:00",
                 untick=("q2",))
        s.complaint(x, "2026-02-07T10:00:00+00:00", stage="repair")
        clock.set(t("2026-03-10T12:00:00+00:00"))
        s.reassign(x, paul, "2026-02-01T00:00:00+00:00")  # Paul's since February, entered now
        s.settled()
        with container.engine.connect() as conn:
            assert len(conn.execute(sat_moves.select()).all()) == 2
            at = t("2026-03-20T00:00:00+00:00")

            def seen(spec: UUID, as_of: str) -> tuple[int, int]:
                body = both(conn, at=at, as_of=t(as_of), tz="UTC", specialist=spec)
                return body["surveys"]["completed"], body["complaints"]["total"]

            assert seen(petra, "2026-03-10T11:00:00+00:00") == (1, 1)
            assert seen(paul, "2026-03-10T11:00:00+00:00") == (0, 0)
            assert seen(petra, "2026-03-10T12:00:00+00:00") == (0, 0)
            assert seen(paul, "2026-03-10T12:00:00+00:00") == (1, 1)
            paul_now = both(conn, at=at, as_of=at, tz="UTC", specialist=paul)
            assert paul_now["fully_satisfied"] == {"satisfied": 0, "answered": 1,
                                                   "percent": "0.0"}
            assert [(q["question_id"], q["satisfied"]) for q in paul_now["questions"]] == [
                ("q1", 1), ("q2", 0), ("q3", 1), ("q4", 1)]


def test_a_half_hour_zone_cuts_the_hour_its_month_starts_in(any_settings: Settings) -> None:
    with station_container(any_settings, "2026-03-20T08:00:00+00:00") as (container, _clock):
        s = Station(container)
        template = s.template()
        x = s.client("2026-01-01T00:00:00+00:00")
        # 1 March 00:00 in Kolkata (UTC+05:30) is 18:30 UTC on 28 February.
        s.survey(s.visit(x, "2026-02-24T10:00:00+00:00"), template, "2026-02-28T18:10:00+00:00")
        s.survey(s.visit(x, "2026-02-25T10:00:00+00:00"), template, "2026-02-28T18:50:00+00:00",
                 untick=("q1",))
        s.complaint(x, "2026-02-28T18:40:00+00:00", stage="booking")
        s.settled()
        with container.engine.connect() as conn:
            body = both(conn, at=t("2026-03-20T00:00:00+00:00"),
                        as_of=t("2026-03-20T08:00:00+00:00"), tz="Asia/Kolkata")
            assert [(m["month"], m["surveys"]["completed"], m["complaints"]["total"])
                    for m in body["months"]] == [("2026-02", 1, 0), ("2026-03", 1, 1)]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    key = (FIXTURES / "demo_history.master.key").read_text().strip()

    def load(url: str) -> Iterator[Container]:
        container = build(Settings(database_url=url, master_key=key), start_follower=False)
        try:
            with gzip.open(FIXTURES / "demo_history.jsonl.gz") as lines:
                import_lines(container, lines)
            container.runner.catch_up()
            yield container
        finally:
            container.close()

    if request.param == "sqlite":
        yield from load(f"sqlite:///{tmp_path}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield from load(url)


def test_tallies_equal_a_full_recount_at_20_random_moments_of_the_demo(
        demo: Container) -> None:
    rng = random.Random(161)
    with demo.engine.connect() as conn:
        ended = sorted(r.completed_at for r in conn.execute(surveys.select())
                       if r.completed_at is not None)
        recorded = sorted({r.completed_recorded_at for r in conn.execute(surveys.select())
                           if r.completed_recorded_at is not None})
        specialists = sorted({r.specialist_id for r in conn.execute(assignments.select())
                              if r.specialist_id is not None}, key=str)
        first, last = ended[0], ended[-1] + timedelta(days=10)
        counted = 0
        for _ in range(20):
            at = first + (last - first) * rng.random()
            as_of = rng.choice([at + timedelta(days=3650), rng.choice(recorded),
                                rng.choice(recorded) + timedelta(seconds=rng.randrange(3600))])
            start = rng.choice([None, first + (at - first) * rng.random()])
            end = rng.choice([None, at, at - timedelta(days=rng.randrange(60))])
            if start is not None and end is not None and end <= start:
                end = None
            body = both(conn, at=at, as_of=as_of,
                        tz=rng.choice(["UTC", "Europe/London", "Asia/Kolkata",
                                       "America/New_York"]),
                        start=start, end=end,
                        specialist=rng.choice([None, None, *specialists]))
            counted += body["surveys"]["attempted"]
        assert counted > 100  # the moments counted real surveys, not empty reports
