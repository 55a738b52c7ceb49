"""The controls report: overdue contacts and agreements, late entry, card gaps, unrated work."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine

from commands import activity as act
from commands import clients as cl
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.activity import Activity
from projections.base import Runner
from projections.clients import ClientDirectory
from projections.controls import controls_report
from tests.integration.remote_world import World, snapshot, t
from tests.support import Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-03-01"))


@pytest.fixture
def world(sqlite_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(sqlite_settings, clock=clock)
    yield World(container)
    container.close()


def controls(world: World, at: str, *, as_of: str | None = None, **options: Any) -> Any:
    with world.conn() as conn:
        return controls_report(conn, at=t(at), as_of=None if as_of is None else t(as_of),
                               **options)


def ids(section: dict[str, Any], key: str) -> list[Any]:
    assert (section["count"], section["truncated"]) == (len(section["items"]), False)
    return [item[key] for item in section["items"]]


def test_overdue_planned_contacts_are_open_ones_due_before_at(
        world: World, clock: ManualClock) -> None:
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    beta = world.client("Beta", specialist=bob, at="2028-02-01")
    open_one = world.planned(acme, "regular", due="2028-03-05 10:00", at="2028-02-20")
    done = world.planned(acme, "contract_renewal", due="2028-03-06 10:00", at="2028-02-20")
    cancelled = world.planned(acme, "regular", due="2028-03-07 10:00", at="2028-02-20")
    world.planned(acme, "regular", due="2028-03-25 10:00", at="2028-02-20")  # not yet due
    bobs = world.planned(beta, "low_usage", due="2028-03-08 10:00", at="2028-02-20")
    clock.set(t("2028-03-09 12:00"))
    world.contact(acme, "Renewal talk", "2028-03-06 10:30", planned_contact_id=done)
    world.run(act.CancelPlannedContact(planned_contact_id=cancelled,
                                       occurred_at=t("2028-03-07 09:00")))

    report = controls(world, "2028-03-10 00:00")
    section = report["overdue_planned_contacts"]
    assert ids(section, "planned_contact_id") == [open_one, bobs]
    assert section["items"][0]["overdue_seconds"] == 4 * 86400 + 14 * 3600
    assert section["items"][0]["specialist_id"] == ann
    # Known on the 8th: the completion and the cancellation were entered on the 9th.
    earlier = controls(world, "2028-03-10 00:00", as_of="2028-03-08 00:00")
    assert ids(earlier["overdue_planned_contacts"], "planned_contact_id") == [
        open_one, done, cancelled, bobs]
    capped = controls(world, "2028-03-10 00:00", limit=1)["overdue_planned_contacts"]
    assert (capped["count"], len(capped["items"]), capped["truncated"]) == (2, 1, True)
    mine = controls(world, "2028-03-10 00:00", specialist_id=bob)
    assert ids(mine["overdue_planned_contacts"], "planned_contact_id") == [bobs]


def test_late_data_entry_measures_recorded_minus_occurred_against_the_threshold(
        world: World, clock: ManualClock) -> None:
    acme = world.client("Acme", at="2028-02-01")
    clock.set(t("2028-03-09 11:00"))
    late = world.contact(acme, "Late call", "2028-03-08 10:00")  # entered 25 h later
    world.contact(acme, "Prompt call", "2028-03-09 10:00")  # 1 h later
    old = world.contact(acme, "Ancient call", "2028-01-01 10:00")  # outside the 30-day window

    report = controls(world, "2028-03-10 00:00")
    items = report["late_data_entry"]["items"]
    assert [(i["type"], i["entity_id"], i["delay_seconds"], i["actor"]) for i in items] == [
        ("ContactLogged", late, 25 * 3600, "tester")]
    strict = controls(world, "2028-03-10 00:00", late_entry_hours=0.5)
    assert [i["delay_seconds"] for i in strict["late_data_entry"]["items"]] == [
        25 * 3600, 3600]
    wide = controls(world, "2028-03-10 00:00", period=timedelta(days=90))
    assert ids(wide["late_data_entry"], "entity_id") == [old, late]
    assert controls(world, "2028-03-10 00:00", as_of="2028-03-09 10:59")[
        "late_data_entry"]["items"] == []


def test_card_completeness_lists_incomplete_clients_with_missing_field_names(
        world: World) -> None:
    org = world.client("Acme GmbH", phones=["+49 30 1234"], emails=["info@acme.example"])
    person = world.client("Ann Lee", form="person", phones=["+49 30 9999"], address="Main 1",
                          tax_id="DE1")
    bare = world.client("Bo", form="person")
    report = controls(world, "2028-03-10 00:00")
    items = report["card_completeness"]["items"]
    assert [(i["client_id"], i["score"], i["missing"]) for i in items] == [
        (org, "42.86", ["address", "tax_id", "decision_maker", "decision_maker_phone"]),
        (bare, "25.00", ["phone_or_email", "address", "tax_id"])]
    assert person not in ids(report["card_completeness"], "client_id")
    world.run(cl.AddContactPerson(client_id=org, name="Eve Boss", role="decision_maker",
                                  occurred_at=t("2028-02-01")))
    after = controls(world, "2028-03-10 00:00")["card_completeness"]["items"][0]
    assert (after["score"], after["missing"]) == ("57.14", ["address", "tax_id",
                                                            "decision_maker_phone"])
    assert "Acme" not in str(after) and "Eve" not in str(after)


def test_overdue_agreements_and_work_without_feedback(world: World,
                                                     clock: ManualClock) -> None:
    clock.set(t("2028-03-09 12:00"))
    acme = world.client("Acme", at="2028-02-01")
    overdue = world.agreement(acme, "Send the contract", due="2028-03-05", at="2028-02-20")
    kept = world.agreement(acme, "Call back", due="2028-03-06", at="2028-02-20")
    world.agreement(acme, "Visit", due="2028-03-20", at="2028-02-20")
    world.run(act.FulfilAgreement(agreement_id=kept, occurred_at=t("2028-03-06")))
    unrated = world.work(acme, "Set up the ledger", at="2028-02-20")
    rated = world.work(acme, "Migrate data", at="2028-02-20")
    recent = world.work(acme, "Train staff", at="2028-02-20")
    world.run(act.CompleteWork(work_id=unrated, occurred_at=t("2028-03-01 10:00")))
    world.run(act.CompleteWork(work_id=rated, occurred_at=t("2028-03-01 10:00")))
    world.run(act.GiveFeedback(work_id=rated, rating=5, occurred_at=t("2028-03-04")))
    world.run(act.CompleteWork(work_id=recent, occurred_at=t("2028-03-08 10:00")))

    report = controls(world, "2028-03-10 00:00")
    assert ids(report["overdue_agreements"], "agreement_id") == [overdue]
    assert report["overdue_agreements"]["items"][0]["overdue_seconds"] == 5 * 86400
    assert ids(report["work_without_feedback"], "work_id") == [unrated]
    assert ids(controls(world, "2028-03-10 00:00", feedback_days=1)["work_without_feedback"],
               "work_id") == [unrated, recent]
    # On the 5th the kept agreement was not due yet and the rated work had its feedback.
    on_5th = controls(world, "2028-03-05 12:00", feedback_days=3)
    assert ids(on_5th["overdue_agreements"], "agreement_id") == [overdue]
    assert ids(on_5th["work_without_feedback"], "work_id") == [unrated]
    assert report["reaction_time_breaches"] is None


def test_replaying_a_page_twice_leaves_activity_and_directory_tables_unchanged(
        world: World, tmp_path: Any) -> None:
    acme = world.client("Acme", phones=["+49 30 1234"])
    world.run(cl.AddContactPerson(client_id=acme, name="Eve", role="decision_maker",
                                  occurred_at=t("2028-02-01")))
    planned = world.planned(acme, "regular", due="2028-02-10", at="2028-02-01")
    world.contact(acme, "Call", "2028-02-10 10:00", planned_contact_id=planned)
    agreement = world.agreement(acme, "Send", due="2028-02-20", at="2028-02-10")
    world.run(act.BreakAgreement(agreement_id=agreement, occurred_at=t("2028-02-21")))
    projections = [ClientDirectory(world.container.keyring), Activity()]
    page = world.container.runner.reader(1, 10_000)
    fresh = Runner(create_engine(f"sqlite:///{tmp_path}/scratch.db"), projections,
                   world.container.runner.reader)
    fresh.apply_page(page)
    with fresh.engine.connect() as conn:
        first = [snapshot(conn, p) for p in projections]
    fresh.apply_page(page)
    with fresh.engine.begin() as conn:
        assert [snapshot(conn, p) for p in projections] == first
        conn.exec_driver_sql("UPDATE projection_tracking SET position = 0")
    fresh.apply_page(page)  # every event applied a second time
    with fresh.engine.connect() as conn:
        assert [snapshot(conn, p) for p in projections] == first
    assert [len(rows) for rows in first[1].values()] == [1, 1, 1, 0]


def test_controls_through_the_api_for_an_analyst_without_personal_data(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "organisation",
                                            "name": "Acme GmbH", "phones": ["+49 30 1234"],
                                            "occurred_at": "2026-10-01T09:00:00+00:00"})
    planned = api.ok("POST", f"/v1/clients/{client['id']}/planned-contacts", {
        "purpose": "regular", "due_at": "2026-10-05T09:00:00+00:00",
        "note": "Ask Eve about the ledger", "occurred_at": "2026-10-01T09:00:00+00:00"})
    result = api.ok("GET", "/v1/reports/controls", as_="analyst", params={
        "at": "2026-10-06T09:00:00+00:00", "min_position": planned["position"]})
    assert ids(result["overdue_planned_contacts"], "planned_contact_id") == [planned["id"]]
    assert ids(result["card_completeness"], "client_id") == [client["id"]]
    text = str(result)
    assert "Acme" not in text and "Eve" not in text and "+49" not in text
    assert api.get("/v1/reports/controls", as_="analyst",
                   params={"late_entry_hours": "0"}).status_code == 422
    assert api.get("/v1/reports/controls", as_="analyst",
                   params={"as_of": "2026-10-06T09:00:00"}).status_code == 422


def test_controls_list_reaction_time_breaches(api: Api) -> None:
    api.ok("PUT", "/v1/sla-targets/complaint", {"first_reaction_seconds": 3600,
                                                "resolution_seconds": 86400,
                                                "business_hours": False}, as_="admin")
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "B"})
    late = api.ok("POST", "/v1/complaints", {"client_id": client["id"], "text": "no answer",
                                             "occurred_at": "2026-01-05T10:00:00+00:00"})
    api.ok("POST", "/v1/complaints", {"client_id": client["id"], "text": "fresh"})
    report = api.ok("GET", "/v1/reports/controls",
                    params={"min_position": api.store_position()}, as_="analyst")
    breaches = report["reaction_time_breaches"]
    assert breaches["count"] == 1
    assert (breaches["truncated"], breaches["next_cursor"]) == (False, None)
    assert breaches["items"][0]["situation_id"] == late["links"]["situation_id"]


def test_controls_sections_are_pages_with_a_cursor_and_a_chosen_order(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Ann",
                                            "occurred_at": "2026-10-01T09:00:00+00:00"})
    planned = [api.ok("POST", f"/v1/clients/{client['id']}/planned-contacts", {
        "purpose": "regular", "due_at": f"2026-10-0{day}T09:00:00+00:00",
        "occurred_at": "2026-10-01T09:00:00+00:00"}) for day in (2, 3, 4)]
    at = {"at": "2026-10-06T09:00:00+00:00", "min_position": planned[-1]["position"]}
    report = api.ok("GET", "/v1/reports/controls", as_="analyst", params={**at, "limit": 1})
    first = report["overdue_planned_contacts"]
    assert (first["count"], first["truncated"], first["sort"]) == (3, True, "due_at")
    assert [i["planned_contact_id"] for i in first["items"]] == [planned[0]["id"]]
    seen = [planned[0]["id"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        page = api.ok("GET", "/v1/reports/controls/overdue_planned_contacts", as_="analyst",
                      params={**at, "limit": 1, "cursor": cursor})
        assert (page["section"], page["count"]) == ("overdue_planned_contacts", 3)
        seen += [i["planned_contact_id"] for i in page["items"]]
        cursor = page["next_cursor"]
    assert seen == [p["id"] for p in planned]
    newest = api.ok("GET", "/v1/reports/controls/overdue_planned_contacts", as_="analyst",
                    params={**at, "sort": "-due_at"})
    assert [i["planned_contact_id"] for i in newest["items"]] == [p["id"] for p in
                                                                   reversed(planned)]
    wrong = api.get("/v1/reports/controls/overdue_planned_contacts", as_="analyst",
                    params={**at, "sort": "-delay_seconds"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "query.sort"
    foreign = api.get("/v1/reports/controls/overdue_agreements", as_="analyst",
                      params={**at, "cursor": first["next_cursor"]})
    assert foreign.status_code == 422 and foreign.json()["errors"][0]["field"] == "query.cursor"
    assert api.get("/v1/reports/controls/everything", as_="analyst").status_code == 422
