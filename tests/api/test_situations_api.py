"""GET /v1/situations, /v1/situations/{id}/evidence and /v1/reports/reaction-times over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest

from domain.business_calendar import (
    BusinessCalendar,
    business_seconds_excluding,
    wall_seconds_excluding,
)
from infra.settings import Settings
from tests.reaction_support import Desk, berlin, berlin_container
from tests.support import Api

AT = berlin(3, 20, 12)


@pytest.fixture
def desk_api(sqlite_settings: Settings) -> Iterator[tuple[Desk, Api]]:
    with berlin_container(sqlite_settings, berlin(3, 2, 8)) as (container, clock):
        yield Desk(container, clock), Api(container)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, dict[str, Any]]]:
    """One story for the read-only tests of this module (built once: they only read)."""
    folder = tmp_path_factory.mktemp("situations-api")
    settings = Settings(database_url=f"sqlite:///{folder}/crm.db")
    with berlin_container(settings, berlin(3, 2, 8)) as (container, clock):
        yield Api(container), story(Desk(container, clock))


def story(desk: Desk) -> dict[str, Any]:
    """Three situations: one paused and reopened, one answered across a holiday, one open."""
    desk.sla(berlin(3, 5, 12), "complaint", first_reaction=3600, resolution=8 * 3600)
    ann = desk.specialist("Ann")
    client = desk.client(specialist_id=ann)
    winding = desk.complaint(client, berlin(3, 6, 17, 30))
    desk.pause(winding, berlin(3, 6, 17, 40))
    desk.resume(winding, berlin(3, 9, 9, 30))
    desk.contact(client, winding, berlin(3, 9, 9, 45))
    desk.resolve(winding, berlin(3, 9, 11))
    desk.reopen(winding, berlin(3, 10, 10))
    desk.acknowledge(winding, berlin(3, 10, 10, 5))
    desk.resolve(winding, berlin(3, 10, 12, 30))
    holiday = desk.complaint(client, berlin(3, 13, 17))
    desk.acknowledge(holiday, berlin(3, 16, 9, 30))
    open_one = desk.manual(client, "low_usage", berlin(3, 18, 10))
    # The Monday 16 March becomes a holiday after the fact.
    desk.calendar(berlin(3, 19, 8), holidays=[date(2026, 3, 16)])
    desk.clock.set(AT)
    desk.settle()
    return {"ann": ann, "client": client, "winding": winding, "holiday": holiday,
            "open": open_one}


def recompute(evidence: dict[str, Any], clock: str) -> tuple[int, int]:
    """The figure from the evidence JSON alone, by the documented rules (docs/reaction-times.md):
    both clocks start at the opening; the first reaction stops at the earliest acknowledgement or
    contact; resolution at the last resolve if nothing reopened it; paused and resolved spans
    are excluded; an open clock runs to `at`."""
    events = sorted(evidence["events"], key=lambda e: (e["counted_at"], e["position"]))
    at = lambda e: datetime.fromisoformat(e["counted_at"])  # noqa: E731
    start = at(next(e for e in events if e["type"] == "SituationOpened"))
    own = sorted((e for e in events if e["type"] != "ContactLogged"), key=lambda e: e["version"])
    stops: list[tuple[datetime, datetime | None]] = []
    for e in own:
        if e["type"] in ("SituationResumed", "SituationReopened", "SituationResolved") and stops \
                and stops[-1][1] is None:
            stops[-1] = (stops[-1][0], at(e))
        if e["type"] in ("SituationPaused", "SituationResolved"):
            stops.append((at(e), None))
    end = datetime.fromisoformat(evidence["at"])
    if clock == "first_reaction":
        reactions = [at(e) for e in events
                     if e["type"] in ("SituationAcknowledged", "ContactLogged")]
        end = min(reactions, default=end)
    elif own[-1]["type"] == "SituationResolved":
        end = at(own[-1])
    calendar = BusinessCalendar.from_dict(evidence["clocks"][clock]["calendar"]["definition"])
    return (wall_seconds_excluding(start, end, stops),
            business_seconds_excluding(calendar, start, end, stops))


def test_every_figure_recomputes_from_its_evidence_json_alone(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    checked = []
    for name in ("winding", "holiday", "open"):
        for basis in ("as_measured", "current"):
            response = api.get(f"/v1/situations/{ids[name]}/evidence",
                               params={"calendar": basis, "at": AT.isoformat()}, as_="auditor")
            assert response.status_code == 200, response.text
            evidence = json.loads(response.text)  # the JSON alone, nothing else
            for clock in ("first_reaction", "resolution"):
                reported = evidence["clocks"][clock]
                assert recompute(evidence, clock) == (
                    reported["wall_seconds"], reported["business_seconds"]), (name, basis, clock)
                checked.append((name, basis, clock, reported["business_seconds"]))
    assert ("winding", "as_measured", "first_reaction", 25 * 60) in checked  # 10 + 15 min
    assert ("winding", "as_measured", "resolution", 10 * 60 + 90 * 60 + 150 * 60) in checked
    assert ("holiday", "as_measured", "first_reaction", 90 * 60) in checked
    assert ("holiday", "current", "first_reaction", 60 * 60) in checked


def test_evidence_names_what_starts_stops_and_pauses_each_clock(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    evidence = api.ok("GET", f"/v1/situations/{ids['winding']}/evidence", as_="analyst")
    effects = [(e["type"], e["effects"]) for e in evidence["events"]]
    assert effects[:3] == [
        ("SituationOpened", ["starts first_reaction", "starts resolution"]),
        ("SituationPaused", ["halts first_reaction (paused)", "halts resolution (paused)"]),
        ("SituationResumed", ["resumes first_reaction", "resumes resolution"])]
    assert ("ContactLogged", ["stops first_reaction"]) in effects
    first = evidence["clocks"]["first_reaction"]
    assert first["arithmetic"]["business"] == "600 + 900 = 1500"
    assert first["sla_target"]["first_reaction_seconds"] == 3600
    assert first["rules_chosen_by"] == "recorded_at of the stop event"
    assert "Car scratched" not in json.dumps(evidence)  # no personal data in evidence


def test_situations_list_filters_and_pages(world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    params = {"at": AT.isoformat()}
    listed = api.ok("GET", "/v1/situations", params=params, as_="manager")
    assert [i["situation_id"] for i in listed["items"]] == [
        str(ids["winding"]), str(ids["holiday"]), str(ids["open"])]
    assert listed["items"][2]["first_reaction"]["state"] == "running"
    opened = api.ok("GET", "/v1/situations", params={**params, "status": "open"})
    assert [i["situation_id"] for i in opened["items"]] == [str(ids["holiday"]), str(ids["open"])]
    resolved = api.ok("GET", "/v1/situations", params={**params, "status": "resolved"})
    assert [i["situation_id"] for i in resolved["items"]] == [str(ids["winding"])]
    breached = api.ok("GET", "/v1/situations", params={**params, "breached": "true"})
    assert [i["situation_id"] for i in breached["items"]] == [str(ids["holiday"])]
    first_page = api.ok("GET", "/v1/situations", params={**params, "limit": 2})
    second_page = api.ok("GET", "/v1/situations", params={
        **params, "limit": 2, "cursor": first_page["next_cursor"]})
    assert [i["situation_id"] for i in second_page["items"]] == [str(ids["open"])]
    assert second_page["next_cursor"] is None
    earlier = api.ok("GET", "/v1/situations", params={"at": berlin(3, 13, 18).isoformat()})
    assert [i["status"] for i in earlier["items"]] == ["resolved", "open"]


def test_reaction_report_per_specialist_and_kind_for_analysts(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    report = api.ok("GET", "/v1/reports/reaction-times", as_="analyst", params={
        "at": AT.isoformat(), "from": berlin(3, 1, 0).isoformat(),
        "to": berlin(3, 31, 0).isoformat(), "kind": "complaint"})
    assert report["percentile_method"].startswith("nearest-rank")
    [group] = report["groups"]
    assert (group["specialist_id"], group["kind"], group["count"]) == (
        str(ids["ann"]), "complaint", 2)
    first = group["first_reaction"]
    median = first["business_seconds"]["median"]
    assert (median["seconds"], median["situation_id"]) == (25 * 60, str(ids["winding"]))
    assert first["business_seconds"]["p90"]["seconds"] == 90 * 60
    assert (first["breached"], first["breach_rate"]) == (1, 0.5)
    assert first["breached_situation_ids"] == [str(ids["holiday"])]
    current = api.ok("GET", "/v1/reports/reaction-times", as_="analyst", params={
        "at": AT.isoformat(), "kind": "complaint", "calendar": "current"})
    assert current["groups"][0]["first_reaction"]["breach_rate"] == 0.0
    assert "Ann" not in json.dumps(report) and "Car scratched" not in json.dumps(report)


def test_reads_refuse_naive_instants_unknown_ids_and_anonymous_callers(
        world: tuple[Api, dict[str, Any]]) -> None:
    api, ids = world
    naive = api.get("/v1/situations", params={"at": "2026-03-20T12:00:00"})
    assert naive.status_code == 422 and naive.json()["errors"][0]["field"] == "query.at"
    assert api.get("/v1/reports/reaction-times", params={
        "from": AT.isoformat(), "to": (AT - timedelta(days=1)).isoformat()}).status_code == 422
    assert api.get(f"/v1/situations/{ids['client']}/evidence").status_code == 404
    assert api.get(f"/v1/situations/{ids['open']}/evidence",
                   params={"at": berlin(3, 18, 9).isoformat()}).status_code == 404
    assert api.get("/v1/situations", as_=None).status_code == 401
    assert api.get("/v1/alerts/stream", as_="analyst").status_code == 403


def test_a_write_is_readable_with_min_position(desk_api: tuple[Desk, Api]) -> None:
    desk, api = desk_api
    client = desk.client()
    desk.clock.set(berlin(3, 9, 10))
    written = api.ok("POST", "/v1/complaints", {"client_id": str(client), "text": "Noise"})
    listed = api.ok("GET", "/v1/situations", params={"min_position": written["position"]})
    assert [i["situation_id"] for i in listed["items"]] == [written["links"]["situation_id"]]
