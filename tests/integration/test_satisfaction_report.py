"""The satisfaction report (GET /v1/reports/satisfaction) against a hand-computed history."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from infra.settings import Settings
from projections.report_time import percent
from tests.integration.service_story import QUESTIONS, Station, station_container, t
from tests.support import Api

PERIOD = {"from": "2026-01-01T00:00:00+00:00", "to": "2026-03-01T00:00:00+00:00",
          "at": "2026-04-01T00:00:00+00:00"}


@contextmanager
def built_story(settings: Settings) -> Iterator[tuple[Api, dict[str, Any]]]:
    """Client X (specialist P1, then P2 from Feb 1) and Y (P2); template revised before S3.

    S1 Jan 10 all ticked | S2 Jan 20 q3 unticked | S3 Feb 5 q1 q3 q4 unticked (X)
    S4 Feb 10 unreachable | S5 Feb 12 refused (Y) | S6 Mar 2 completed (after the period, X)
    S7 started Feb 14, never ended (Y). Complaints: Jan 15 repair (X), Feb 20 reception (Y),
    Feb 21 without stage (Y), Mar 5 repair (X, after the period).
    """
    with station_container(settings, "2026-03-20T00:00:00+00:00") as (container, clock):
        s = Station(container)
        p1, p2 = s.specialist("Petra"), s.specialist("Paul")
        x = s.client("2025-12-01T00:00:00+00:00", specialist=p1)
        y = s.client("2025-12-01T00:00:00+00:00", specialist=p2)
        s.reassign(x, p2, "2026-02-01T00:00:00+00:00")
        template = s.template()
        s.survey(s.visit(x, "2026-01-06T10:00:00+00:00"), template, "2026-01-10T10:00:00+00:00")
        s.survey(s.visit(x, "2026-01-16T10:00:00+00:00"), template, "2026-01-20T10:00:00+00:00",
                 untick=("q3",))
        revised = [{**q, "text": "Was booking easy online?"} if q["id"] == "q1" else q
                   for q in QUESTIONS]
        s.template(revised, template_id=template)
        clock.set(t("2026-03-25T00:00:00+00:00"))  # S3's completion is recorded late
        s.survey(s.visit(x, "2026-02-01T10:00:00+00:00"), template, "2026-02-05T10:00:00+00:00",
                 untick=("q1", "q3", "q4"))
        clock.set(t("2026-03-26T00:00:00+00:00"))
        s.survey(s.visit(y, "2026-02-06T10:00:00+00:00"), template, "2026-02-10T10:00:00+00:00",
                 outcome="unreachable")
        s.survey(s.visit(y, "2026-02-08T10:00:00+00:00"), template, "2026-02-12T10:00:00+00:00",
                 outcome="refused")
        s.survey(s.visit(x, "2026-02-27T10:00:00+00:00"), template, "2026-03-02T10:00:00+00:00")
        s.start(s.visit(y, "2026-02-10T10:00:00+00:00"), template, "2026-02-14T10:00:00+00:00")
        s.complaint(x, "2026-01-15T10:00:00+00:00", stage="repair")
        s.complaint(y, "2026-02-20T10:00:00+00:00", stage="reception")
        s.complaint(y, "2026-02-21T10:00:00+00:00")
        s.complaint(x, "2026-03-05T10:00:00+00:00", stage="repair")
        s.settled()
        yield Api(container), {"template": template, "p1": p1, "p2": p2}


@pytest.fixture
def story(sqlite_settings: Settings) -> Iterator[tuple[Api, dict[str, Any]]]:
    with built_story(sqlite_settings) as built:
        yield built


@pytest.fixture
def any_story(any_settings: Settings) -> Iterator[tuple[Api, dict[str, Any]]]:
    """The same story on SQLite and on PostgreSQL."""
    with built_story(any_settings) as built:
        yield built


def _share(satisfied: int, answered: int, pct: str | None) -> dict[str, Any]:
    return {"satisfied": satisfied, "answered": answered, "percent": pct}


def _stage(name: str, satisfied: int, answered: int, pct: str | None,
           complaints: int) -> dict[str, Any]:
    return {"stage": name, **_share(satisfied, answered, pct), "complaints": complaints}


def test_report_counts_reach_satisfaction_per_question_and_stage_and_complaints(
        any_story: tuple[Api, dict[str, Any]]) -> None:
    api, ids = any_story
    report = api.ok("GET", "/v1/reports/satisfaction", params=PERIOD, as_="analyst")
    assert report["surveys"] == {"attempted": 5, "completed": 3, "reach_percent": "60.0"}
    assert report["fully_satisfied"] == _share(1, 3, "33.3")
    template = str(ids["template"])
    assert [(q["template_id"], q["question_id"], q["stage"], q["text"], q["satisfied"],
             q["answered"], q["percent"]) for q in report["questions"]] == [
        (template, "q1", "booking", "Was booking easy online?", 2, 3, "66.7"),
        (template, "q2", "reception", "Were you welcomed?", 3, 3, "100.0"),
        (template, "q3", "repair", "Was the fault fixed?", 1, 3, "33.3"),
        (template, "q4", "repair", "Was the car clean?", 2, 3, "66.7")]
    booking, reception, repair = (_stage("booking", 2, 3, "66.7", 0),
                                  _stage("reception", 3, 3, "100.0", 1),
                                  _stage("repair", 3, 6, "50.0", 1))
    assert report["stages"] == [booking, reception, repair]
    assert report["stages_worst_first"] == [repair, booking, reception]
    assert report["complaints"] == {"total": 3, "without_stage": 1,
                                    "by_stage": {"reception": 1, "repair": 1}}


def test_monthly_trend_repeats_the_figures_per_completion_month(
        story: tuple[Api, dict[str, Any]]) -> None:
    api, _ids = story
    months = api.ok("GET", "/v1/reports/satisfaction", params=PERIOD)["months"]
    assert [m["month"] for m in months] == ["2026-01", "2026-02"]
    january, february = months
    assert january["surveys"] == {"attempted": 2, "completed": 2, "reach_percent": "100.0"}
    assert january["fully_satisfied"] == _share(1, 2, "50.0")
    assert january["stages"] == [_stage("booking", 2, 2, "100.0", 0),
                                 _stage("reception", 2, 2, "100.0", 0),
                                 _stage("repair", 3, 4, "75.0", 1)]
    assert february["surveys"] == {"attempted": 3, "completed": 1, "reach_percent": "33.3"}
    assert february["fully_satisfied"] == _share(0, 1, "0.0")
    # booking and repair tie at 0.0: ranked by name.
    assert [s["stage"] for s in february["stages_worst_first"]] == [
        "booking", "repair", "reception"]
    assert february["complaints"] == {"total": 2, "without_stage": 1,
                                      "by_stage": {"reception": 1}}


def test_specialist_filter_follows_the_assignment_when_each_survey_ended(
        story: tuple[Api, dict[str, Any]]) -> None:
    api, ids = story
    p1 = api.ok("GET", "/v1/reports/satisfaction", params={**PERIOD, "specialist": ids["p1"]})
    assert p1["surveys"] == {"attempted": 2, "completed": 2, "reach_percent": "100.0"}
    assert p1["complaints"]["by_stage"] == {"repair": 1}
    p2 = api.ok("GET", "/v1/reports/satisfaction", params={**PERIOD, "specialist": ids["p2"]})
    assert p2["surveys"] == {"attempted": 3, "completed": 1, "reach_percent": "33.3"}
    assert p2["complaints"] == {"total": 2, "without_stage": 1, "by_stage": {"reception": 1}}
    nobody = api.ok("GET", "/v1/reports/satisfaction",
                    params={**PERIOD, "specialist": str(UUID(int=7))})
    assert nobody["surveys"] == {"attempted": 0, "completed": 0, "reach_percent": None}
    assert nobody["stages"] == [] and nobody["months"] == []


def test_as_of_leaves_out_a_completion_recorded_later(story: tuple[Api, dict[str, Any]]) -> None:
    api, _ids = story
    then = api.ok("GET", "/v1/reports/satisfaction",
                  params={**PERIOD, "as_of": "2026-03-24T00:00:00+00:00"})
    # S3 ended on Feb 5 in business time but was only entered on Mar 25; Y's surveys later.
    assert then["surveys"] == {"attempted": 2, "completed": 2, "reach_percent": "100.0"}
    assert then["stages_worst_first"][0] == _stage("repair", 3, 4, "75.0", 0)
    # `at` before the period's end cuts the period at that business moment.
    early = api.ok("GET", "/v1/reports/satisfaction",
                   params={**PERIOD, "at": "2026-01-15T00:00:00+00:00"})
    assert early["surveys"] == {"attempted": 1, "completed": 1, "reach_percent": "100.0"}


def test_report_roles_and_bad_parameters(story: tuple[Api, dict[str, Any]]) -> None:
    api, _ids = story
    for role in ("operator", "manager", "auditor", "analyst", "admin"):
        assert api.get("/v1/reports/satisfaction", as_=role).status_code == 200, role
    assert api.get("/v1/reports/satisfaction", as_=None).status_code == 401
    for field, params in (("from", {"from": "2026-01-01T00:00:00"}),
                          ("to", {**PERIOD, "to": PERIOD["from"]}),
                          ("specialist", {"specialist": "p1"}), ("tz", {"tz": "Nowhere/Else"}),
                          ("to", {"to": "9999-12-31T23:00:00-05:00"})):
        response = api.get("/v1/reports/satisfaction", params=params)
        assert response.status_code == 422, params
        assert response.json()["errors"][0]["field"] == f"query.{field}", params


@pytest.mark.parametrize(("part", "whole", "expected"), [
    (0, 0, None), (0, 1, "0.0"), (1, 1, "100.0"), (2, 3, "66.7"), (1, 3, "33.3"),
    (1, 16, "6.3"), (1, 8, "12.5"), (7, 9, "77.8"), (1, 2000, "0.1"), (1, 2001, "0.0")])
def test_percent_rounds_the_exact_ratio_half_up_to_one_decimal(
        part: int, whole: int, expected: str | None) -> None:
    assert percent(part, whole) == expected


def test_satisfaction_by_client_segment_at_the_report_moment(any_settings: Settings) -> None:
    """A: visits Jan 2025 and Feb 2026 (active on 2026-04-01); B: last visit 2025-03-06
    (at_risk: between D-13m and D-12m); C: last visit 2025-06-06 (low_active), a complaint."""
    with station_container(any_settings, "2026-03-20T00:00:00+00:00") as (container, _clock):
        s = Station(container)
        template = s.template()
        a = s.client("2024-12-01T00:00:00+00:00")
        b = s.client("2024-12-01T00:00:00+00:00")
        c = s.client("2024-12-01T00:00:00+00:00")
        s.survey(s.visit(a, "2025-01-06T10:00:00+00:00"), template, "2025-01-10T10:00:00+00:00")
        s.survey(s.visit(a, "2026-02-01T10:00:00+00:00"), template, "2026-02-05T10:00:00+00:00",
                 untick=("q3",))
        s.survey(s.visit(b, "2025-03-06T10:00:00+00:00"), template, "2025-03-10T10:00:00+00:00",
                 untick=("q1",))
        s.survey(s.visit(c, "2025-06-06T10:00:00+00:00"), template, "2025-06-10T10:00:00+00:00")
        s.complaint(c, "2025-06-12T10:00:00+00:00", stage="repair")
        s.settled()
        api = Api(container)
        params = {"from": "2025-01-01T00:00:00+00:00", "to": "2026-03-01T00:00:00+00:00",
                  "at": "2026-04-01T00:00:00+00:00"}
        body = api.ok("GET", "/v1/reports/satisfaction", as_="analyst",
                      params={**params, "by_segment": "true"})
        by = {g["segment"]: g for g in body["by_segment"]}
        assert list(by) == ["active", "low_active", "at_risk", "lost", "never"]
        active = by["active"]
        assert active["surveys"] == {"attempted": 2, "completed": 2, "reach_percent": "100.0"}
        assert active["fully_satisfied"] == _share(1, 2, "50.0")
        assert [(x["stage"], x["satisfied"], x["answered"]) for x in active["stages"]] == [
            ("booking", 2, 2), ("reception", 2, 2), ("repair", 3, 4)]
        assert by["at_risk"]["fully_satisfied"] == _share(0, 1, "0.0")
        assert by["at_risk"]["stages"][0] == _stage("booking", 0, 1, "0.0", 0)
        assert by["low_active"]["fully_satisfied"] == _share(1, 1, "100.0")
        assert by["low_active"]["complaints"] == {"total": 1, "without_stage": 0,
                                                  "by_stage": {"repair": 1}}
        assert by["lost"]["surveys"]["attempted"] == by["never"]["surveys"]["attempted"] == 0
        # The whole report is unchanged by the breakdown.
        assert body["surveys"]["completed"] == 4 and body["fully_satisfied"] == _share(
            2, 4, "50.0")
        only = api.ok("GET", "/v1/reports/satisfaction", as_="analyst",
                      params={**params, "segment": "at_risk"})
        assert (only["segment"], only["by_segment"]) == ("at_risk", None)
        assert only["surveys"]["completed"] == 1
        assert [(q["question_id"], q["satisfied"]) for q in only["questions"]] == [
            ("q1", 0), ("q2", 1), ("q3", 1), ("q4", 1)]
        # A year earlier, B was active: the segment is the one at `at`.
        earlier = api.ok("GET", "/v1/reports/satisfaction", as_="analyst", params={
            **params, "at": "2025-04-01T00:00:00+00:00", "segment": "active"})
        assert earlier["surveys"]["completed"] == 2  # A's January and B's March surveys
        bad = api.get("/v1/reports/satisfaction", as_="analyst", params={"segment": "gold"})
        assert bad.status_code == 422 and "query.segment" in bad.text
