"""Reference data reads (issue 18.5): specialists, survey templates, calendars, SLA targets and
plans, each as known at `as_of`, readable by the roles docs/access.md names."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from tests.integration.remote_world import t
from tests.support import Api

QUESTIONS = [{"id": "q1", "stage": "booking", "text": "Was booking easy?"},
             {"id": "q2", "stage": "repair", "text": "Was the fault fixed?"}]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2026-10-01 08:00"))


@pytest.fixture
def any_api(any_settings: Settings, clock: ManualClock) -> Iterator[Api]:
    container = build(any_settings, clock=clock)
    yield Api(container)
    container.close()


def test_reference_data_lists_what_was_known_at_as_of(any_api: Api, clock: ManualClock) -> None:
    ann = any_api.ok("POST", "/v1/specialists", {"name": "Ann Weber",
                                                 "email": "ann@example.com",
                                                 "user_id": "a.weber"}, as_="admin")["id"]
    template = any_api.ok("POST", "/v1/survey-templates", {
        "name": "After the visit", "questions": QUESTIONS}, as_="admin")["id"]
    any_api.ok("PUT", f"/v1/plans/{ann}/2026-10", {"amount": "1000", "currency": "EUR"},
               as_="admin")
    any_api.ok("PUT", "/v1/calendars/default", {
        "timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "17:00"]]},
        "holidays": ["2026-12-25"]}, as_="admin")
    any_api.ok("PUT", "/v1/sla-targets/complaint", {
        "first_reaction_seconds": 3600, "resolution_seconds": 86400}, as_="admin")
    clock.set(t("2026-10-02 08:00"))
    bob = any_api.ok("POST", "/v1/specialists", {"name": "Bob Alder"}, as_="admin")["id"]
    revised = [*QUESTIONS, {"id": "q3", "stage": "delivery", "text": "Was it on time?"}]
    last = any_api.ok("POST", "/v1/survey-templates", {
        "name": "After the visit (v2)", "questions": revised, "template_id": template},
        as_="admin")
    any_api.ok("PUT", f"/v1/plans/{ann}/2026-10", {"amount": "1200", "currency": "EUR"},
               as_="admin")
    wait = {"min_position": str(any_api.store_position())}

    people = any_api.ok("GET", "/v1/specialists", as_="manager", params=wait)["items"]
    assert [(p["specialist_id"], p["name"], p["email"]) for p in people] == [
        (ann, "Ann Weber", "ann@example.com"), (bob, "Bob Alder", None)]
    earlier = {**wait, "as_of": "2026-10-01T12:00:00+00:00"}
    assert [p["name"] for p in any_api.ok("GET", "/v1/specialists", as_="manager",
                                          params=earlier)["items"]] == ["Ann Weber"]

    [found] = any_api.ok("GET", "/v1/survey-templates", as_="analyst", params=wait)["items"]
    assert (found["template_id"], found["version"], found["name"]) == (
        template, last["version"], "After the visit (v2)")
    assert [q["id"] for q in found["questions"]] == ["q1", "q2", "q3"]
    assert [v["version"] for v in found["versions"]] == [1, 2]
    [then] = any_api.ok("GET", "/v1/survey-templates", as_="analyst", params=earlier)["items"]
    assert (then["version"], [q["id"] for q in then["questions"]]) == (1, ["q1", "q2"])

    plans = any_api.ok("GET", "/v1/plans", as_="analyst", params=wait)["items"]
    assert [(p["specialist_id"], p["month"], p["amount"]) for p in plans] == [
        (ann, "2026-10", "1200.00")]
    assert any_api.ok("GET", "/v1/plans", as_="analyst", params=earlier)["items"][0][
        "amount"] == "1000.00"
    assert any_api.ok("GET", "/v1/plans", as_="analyst", params={
        **wait, "month": "2026-11"})["items"] == []

    [calendar] = any_api.ok("GET", "/v1/calendars", as_="auditor", params=wait)["items"]
    assert (calendar["name"], calendar["definition"]["timezone"],
            calendar["definition"]["holidays"]) == ("default", "Europe/Berlin", ["2026-12-25"])
    [target] = any_api.ok("GET", "/v1/sla-targets", as_="operator", params=wait)["items"]
    assert (target["situation_kind"], target["first_reaction_seconds"],
            target["resolution_seconds"]) == ("complaint", 3600, 86400)

    # Specialists carry staff names and e-mail addresses: not for analysts.
    assert any_api.get("/v1/specialists", as_="analyst").status_code == 403
    assert any_api.get("/v1/survey-templates", as_=None).status_code == 401
    bad = any_api.get("/v1/plans", as_="analyst", params={"month": "2026-13"})
    assert bad.status_code == 422 and "query.month" in bad.text
