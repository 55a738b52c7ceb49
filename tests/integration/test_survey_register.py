"""The survey register (GET /v1/work-orders): statuses by local-day age, filters, pages, as_of."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

import pytest

from infra.settings import Settings
from tests.integration.service_story import Station, station_container, t, utc
from tests.support import Api

AT = "2026-06-10T12:00:00+00:00"


@contextmanager
def built_register(settings: Settings) -> Iterator[tuple[Api, dict[str, UUID]]]:
    """Work orders A..K opened in letter order on 2026-05-20, each showing one case at AT."""
    with station_container(settings, "2026-06-15T00:00:00+00:00") as (container, _clock):
        s = Station(container)
        client = s.client("2026-01-01T00:00:00+00:00")
        template = s.template()
        o: dict[str, UUID] = {}
        for hour, name in enumerate("ABCDEFGHIJ", start=1):
            o[name] = s.open(client, f"2026-05-20T{hour:02d}:00:00+00:00", asset=f"car {name}")
        s.close(o["B"], "2026-06-08T09:00:00+00:00")   # age 2: not due yet
        s.close(o["C"], "2026-06-07T00:00:00+00:00")   # age 3: due
        s.close(o["D"], "2026-06-06T23:59:00+00:00")   # age 4: still due
        s.close(o["E"], "2026-06-05T10:00:00+00:00")   # age 5: overdue
        for name in "FGHI":
            s.close(o[name], "2026-06-01T10:00:00+00:00")
        s.survey(o["F"], template, "2026-06-04T10:00:00+00:00")
        s.survey(o["G"], template, "2026-06-04T10:00:00+00:00", outcome="unreachable")
        s.survey(o["H"], template, "2026-06-04T10:00:00+00:00", outcome="unreachable")
        s.survey(o["H"], template, "2026-06-05T10:00:00+00:00")
        s.survey(o["I"], template, "2026-06-04T10:00:00+00:00", outcome="refused")
        s.start(o["I"], template, "2026-06-05T10:00:00+00:00")  # a new call, still running
        s.close(o["J"], "2026-06-11T10:00:00+00:00")   # closed after AT: open at AT
        o["K"] = s.open(client, "2026-06-11T10:00:00+00:00")  # opened after AT: not listed
        o["client"] = client
        s.settled()
        yield Api(container), o


@pytest.fixture
def register_story(sqlite_settings: Settings) -> Iterator[tuple[Api, dict[str, UUID]]]:
    with built_register(sqlite_settings) as built:
        yield built


@pytest.fixture
def any_register_story(any_settings: Settings) -> Iterator[tuple[Api, dict[str, UUID]]]:
    """The same register on SQLite and on PostgreSQL."""
    with built_register(any_settings) as built:
        yield built


def _rows(api: Api, **params: Any) -> list[dict[str, Any]]:
    return api.ok("GET", "/v1/work-orders", params={"at": AT, **params})["items"]  # type: ignore[no-any-return]


def test_register_gives_each_work_order_its_survey_status_and_local_day_age(
        any_register_story: tuple[Api, dict[str, UUID]]) -> None:
    api, o = any_register_story
    rows = _rows(api)
    name_of = {str(v): k for k, v in o.items()}
    assert [(name_of[r["work_order_id"]], r["status"], r["age_days"]) for r in rows] == [
        ("A", "open", None), ("B", "not_due", 2), ("C", "due", 3), ("D", "due", 4),
        ("E", "overdue", 5), ("F", "done", 9), ("G", "unreachable", 9), ("H", "done", 9),
        ("I", "overdue", 9), ("J", "open", None)]
    h = rows[7]
    assert h == {
        "work_order_id": str(o["H"]), "client_id": str(o["client"]), "asset": "car H",
        "opened_at": utc("2026-05-20T08:00:00+00:00"),
        "closed_at": utc("2026-06-01T10:00:00+00:00"), "age_days": 9, "status": "done",
        "survey": {"attempts": 2, "last_outcome": "completed",
                   "completed_at": utc("2026-06-05T10:00:00+00:00")}}
    assert rows[8]["survey"] == {"attempts": 2, "last_outcome": "in_progress",
                                 "completed_at": None}
    assert rows[9]["closed_at"] is None  # its closing lies after `at`


def test_register_filters_by_status_and_pages_with_a_cursor(
        register_story: tuple[Api, dict[str, UUID]]) -> None:
    api, o = register_story
    expected = {"open": "AJ", "not_due": "B", "due": "CD", "overdue": "EI", "done": "FH",
                "unreachable": "G"}
    for status, names in expected.items():
        assert [r["work_order_id"] for r in _rows(api, survey_status=status)] == [
            str(o[n]) for n in names], status
    seen: list[str] = []
    cursor = None
    for _page in range(5):
        params = {"at": AT, "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", "/v1/work-orders", params=params)
        seen += [r["work_order_id"] for r in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(o[n]) for n in "ABCDEFGHIJ"]
    first = api.ok("GET", "/v1/work-orders",
                   params={"at": AT, "survey_status": "overdue", "limit": 1})
    assert [r["work_order_id"] for r in first["items"]] == [str(o["E"])]
    second = api.ok("GET", "/v1/work-orders", params={
        "at": AT, "survey_status": "overdue", "limit": 1, "cursor": first["next_cursor"]})
    assert [r["work_order_id"] for r in second["items"]] == [str(o["I"])]
    assert second["next_cursor"] is None


def test_age_counts_calendar_days_in_the_configured_time_zone(sqlite_settings: Settings) -> None:
    # 22:30 UTC on May 27 is already May 28 in Berlin (UTC+2 in summer).
    berlin = sqlite_settings.model_copy(update={"timezone": "Europe/Berlin"})
    with station_container(berlin, "2026-06-15T00:00:00+00:00") as (container, _clock):
        s = Station(container)
        order = s.open(s.client("2026-01-01T00:00:00+00:00"), "2026-05-27T08:00:00+00:00")
        s.close(order, "2026-05-27T22:30:00+00:00")
        s.settled()
        api = Api(container)
        at = "2026-05-30T12:00:00+00:00"
        default = api.ok("GET", "/v1/work-orders", params={"at": at})
        assert default["timezone"] == "Europe/Berlin"
        assert [(r["status"], r["age_days"]) for r in default["items"]] == [("not_due", 2)]
        in_utc = api.ok("GET", "/v1/work-orders", params={"at": at, "tz": "UTC"})
        assert [(r["status"], r["age_days"]) for r in in_utc["items"]] == [("due", 3)]


def test_as_of_shows_the_register_as_known_then_including_late_entered_closings(
        sqlite_settings: Settings) -> None:
    with station_container(sqlite_settings, "2026-06-01T09:00:00+00:00") as (container, clock):
        s = Station(container)
        template = s.template()
        order = s.open(s.client("2026-01-01T00:00:00+00:00"), "2026-06-01T08:00:00+00:00")
        clock.set(t("2026-06-12T09:00:00+00:00"))
        s.close(order, "2026-06-02T10:00:00+00:00")  # entered ten days late
        clock.set(t("2026-06-13T09:00:00+00:00"))
        s.survey(order, template, "2026-06-13T08:00:00+00:00")
        s.settled()
        api = Api(container)

        def status(at: str, as_of: str) -> tuple[str, int | None]:
            row = _rows(api, at=at, as_of=as_of)[0]
            return row["status"], row["age_days"]

        assert status(AT, "2026-06-11T00:00:00+00:00") == ("open", None)
        assert status(AT, "2026-06-12T09:00:00+00:00") == ("overdue", 8)
        assert status("2026-06-14T00:00:00+00:00", "2026-06-12T09:00:00+00:00") == (
            "overdue", 12)
        assert status("2026-06-14T00:00:00+00:00", "2026-06-13T09:00:00+00:00") == ("done", 12)
        # Before the work order's opening was recorded, the register does not list it.
        assert _rows(api, as_of="2026-06-01T08:59:59+00:00") == []


def test_register_is_for_personal_data_readers_and_checks_its_parameters(
        sqlite_settings: Settings) -> None:
    with station_container(sqlite_settings, "2026-06-15T00:00:00+00:00") as (container, _c):
        api = Api(container)
        assert api.get("/v1/work-orders", as_="analyst").status_code == 403
        assert api.get("/v1/work-orders", as_=None).status_code == 401
        for role in ("operator", "manager", "auditor", "admin"):
            assert api.get("/v1/work-orders", as_=role).status_code == 200, role
        bad = [{"at": "2026-06-10T12:00:00"}, {"as_of": "yesterday"},
               {"survey_status": "late"}, {"cursor": "12"}, {"tz": "Mars/Olympus"},
               {"limit": 0}, {"at": "0001-01-01T00:00:00+05:00"},
               {"cursor": "9" * 20 + "_" + "0" * 32}]
        for params in bad:
            response = api.get("/v1/work-orders", params=params)
            assert response.status_code == 422, params
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["errors"][0]["field"] == "query." + next(iter(params))
