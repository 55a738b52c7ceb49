"""Alerts about a client's follow-ups (issue 18.2) and visits (issue 18.1), on time, once."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import datetime

import pytest

from commands.situations import ResolveSituation
from consumers.alert_hub import Alert
from consumers.alerts import AlertScheduler
from consumers.client_alerts import client_alert_log
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.situations import situation_rows
from tests.integration.remote_world import World, t
from tests.integration.service_story import Station, station_container
from tests.support import Api


@pytest.fixture
def berlin_world(any_settings: Settings) -> Iterator[tuple[World, ManualClock]]:
    clock = ManualClock(t("2028-03-01 08:00"))
    container = build(any_settings.model_copy(update={"timezone": "Europe/Berlin"}),
                      clock=clock)
    yield World(container), clock
    container.close()


def scheduler(world: World) -> AlertScheduler:
    assert world.container.alerts is not None
    return world.container.alerts


def listen(world: World) -> queue.Queue[Alert]:
    received: queue.Queue[Alert] = queue.Queue()
    scheduler(world).hub.add_listener(received.put)
    return received


def scan(world: World, clock: ManualClock, at: str) -> None:
    """Move the clock and scan once. The scheduler's thread may scan too; either way, once this
    returns every alert due by `at` has been published (scans hold one lock)."""
    world.sync()
    clock.set(t(at))
    scheduler(world).run_once()


def drain(received: queue.Queue[Alert]) -> list[tuple[str, object, datetime]]:
    out = []
    while not received.empty():
        alert = received.get_nowait()
        out.append((alert.kind, alert.subject_id, alert.at))
    return sorted(out, key=lambda a: (a[2], a[0], str(a[1])))


def test_planned_contacts_and_agreements_alert_when_due_and_when_overdue(
        berlin_world: tuple[World, ManualClock]) -> None:
    world, clock = berlin_world
    received = listen(world)
    ann = world.specialist("Ann")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    call = world.planned(acme, "regular", due="2028-03-03 10:00", at="2028-03-01")
    promise = world.agreement(acme, "Send the act", due="2028-03-03 15:00", at="2028-03-01")
    done = world.planned(acme, "contract_renewal", due="2028-03-03 12:00", at="2028-03-01")
    world.planned(acme, "regular", due="2028-03-10 12:00", at="2028-03-01")  # later on

    scan(world, clock, "2028-03-02 22:59:58")
    assert drain(received) == []
    # The next alert falls due at Berlin midnight (23:00 UTC): the scheduler sleeps till then.
    assert scheduler(world).next_wait() == 2.0
    scan(world, clock, "2028-03-02 23:00")
    midnight = t("2028-03-02 23:00")
    assert set(drain(received)) == {("agreement_due", promise, midnight),
                                    ("planned_contact_due", call, midnight),
                                    ("planned_contact_due", done, midnight)}
    clock.set(t("2028-03-03 09:30"))
    world.contact(acme, "Renewal talk", "2028-03-03 09:30", planned_contact_id=done)
    scan(world, clock, "2028-03-03 10:00")
    assert drain(received) == []  # at its due instant a contact is not overdue yet
    assert scheduler(world).next_wait() == 1.0
    scan(world, clock, "2028-03-03 10:00:01")
    assert drain(received) == [("planned_contact_overdue", call, t("2028-03-03 10:00:01"))]
    scan(world, clock, "2028-03-03 15:00:05")
    # The completed contact raises nothing; the agreement is overdue.
    assert drain(received) == [("agreement_overdue", promise, t("2028-03-03 15:00:01"))]
    scan(world, clock, "2028-03-03 16:00")
    restarted = AlertScheduler(world.container.engine, clock, scheduler(world).policy,
                               timezone="Europe/Berlin")
    assert restarted.run_once() == []  # each alert once, across restarts
    assert drain(received) == []


def test_an_alert_carries_whom_to_tell_and_what(
        berlin_world: tuple[World, ManualClock]) -> None:
    world, clock = berlin_world
    received = listen(world)
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    world.planned(acme, "low_usage", due="2028-03-01 09:00", at="2028-03-01", specialist_id=bob)
    scan(world, clock, "2028-03-01 09:00:01")
    alert = received.get(timeout=10)
    assert (alert.kind, alert.specialist_id, alert.client_id, alert.deadline) == (
        "planned_contact_overdue", bob, acme, t("2028-03-01 09:00"))
    body = alert.to_json()
    assert (body["subject"], body["situation_id"], body["detail"]) == (
        "planned_contact", None, {"purpose": "low_usage",
                                  "due_at": "2028-03-01T09:00:00+00:00"})


def test_a_follow_up_entered_late_alerts_at_once_and_a_long_missed_one_never(
        berlin_world: tuple[World, ManualClock]) -> None:
    world, clock = berlin_world
    received = listen(world)
    acme = world.client("Acme", at="2028-02-01")
    clock.set(t("2028-03-05 12:00"))
    late = world.planned(acme, "regular", due="2028-03-03 10:00", at="2028-03-01")  # days ago
    scan(world, clock, "2028-03-05 12:00")
    assert drain(received) == [("planned_contact_overdue", late, t("2028-03-03 10:00:01"))]
    # Overdue on the 6th while no scheduler ran; started on the 9th, nothing is sent for it
    # (it fell due more than a day before anyone could know).
    missed = world.agreement(acme, "Pay", due="2028-03-06 10:00", at="2028-03-05")
    scan(world, clock, "2028-03-05 12:00")
    assert [kind for kind, _id, _at in drain(received)] == []  # its day has not begun
    scheduler(world).stop()
    clock.set(t("2028-03-09 12:00"))
    started = AlertScheduler(world.container.engine, clock, scheduler(world).policy,
                             timezone="Europe/Berlin")
    assert started.run_once() == []
    with world.conn() as conn:
        logged = {row.subject_id for row in conn.execute(client_alert_log.select())}
    assert logged == {late}
    assert missed not in logged


# -- reception (issue 18.1) ------------------------------------------------------------------

@pytest.fixture
def station(any_settings: Settings) -> Iterator[tuple[Station, ManualClock]]:
    with station_container(any_settings, "2028-06-01T12:00:00+00:00") as (container, clock):
        yield Station(container), clock


def next_reception(received: queue.Queue[Alert]) -> Alert:
    while True:
        alert = received.get(timeout=10)  # bounded: a missing alert fails, never hangs
        if alert.kind == "reception":
            return alert


def test_a_visit_of_a_client_dissatisfied_last_time_alerts_reception_at_once(
        station: tuple[Station, ManualClock]) -> None:
    desk, _clock = station
    assert desk.container.alerts is not None
    received: queue.Queue[Alert] = queue.Queue()
    desk.container.alerts.hub.add_listener(received.put)
    ann = desk.specialist("Ann")
    template = desk.template()
    client = desk.client("2028-01-01T09:00:00+00:00", specialist=ann)
    first = desk.visit(client, "2028-05-02T10:00:00+00:00")
    survey = desk.survey(first, template, "2028-05-05T10:00:00+00:00", untick=("q2", "q3"))
    desk.complaint(client, "2028-05-05T10:05:00+00:00", stage="reception", order=first)
    happy = desk.client("2028-01-01T09:00:00+00:00", name="Bo Happy")
    desk.visit(happy, "2028-05-02T10:00:00+00:00")

    desk.open(happy, "2028-06-01T11:00:00+00:00")
    order = desk.open(client, "2028-06-01T11:30:00+00:00")
    alert = next_reception(received)  # the scheduler's thread, woken by the save
    assert (alert.subject, alert.subject_id, alert.client_id, alert.specialist_id) == (
        "work_order", order, client, ann)
    detail = alert.detail
    assert detail is not None and detail["unresolved"] is True
    assert sorted(s["kind"] for s in detail["situations"]) == [
        "complaint", "survey_dissatisfaction"]
    assert detail["surveys"] == [{"survey_id": str(survey), "question_ids": ["q2", "q3"],
                                  "stages": ["reception", "repair"]}]
    assert [c["stage"] for c in detail["complaints"]] == ["reception"]
    assert "Rude" not in str(alert.to_json())  # no free text on the alert
    desk.settled()
    assert desk.container.alerts.run_once() == []  # the happy client's visit raised nothing


def test_a_resolved_dissatisfaction_alerts_for_90_days_then_no_more(
        station: tuple[Station, ManualClock]) -> None:
    desk, _clock = station
    assert desk.container.alerts is not None
    received: queue.Queue[Alert] = queue.Queue()
    desk.container.alerts.hub.add_listener(received.put)
    client = desk.client("2028-01-01T09:00:00+00:00")
    desk.complaint(client, "2028-02-01T10:00:00+00:00")
    desk.settled()
    with desk.container.engine.connect() as conn:
        situation = conn.execute(situation_rows.select()).one().situation_id
    desk.run(ResolveSituation(situation_id=situation, resolution="Refunded",
                              occurred_at=t("2028-03-01T10:00:00+00:00")))
    # 1 March + 90 days = 30 May: a visit on the 29th still alerts, one on 1 June does not.
    recent = desk.open(client, "2028-05-29T10:00:00+00:00")
    alert = next_reception(received)
    assert alert.subject_id == recent and alert.detail is not None
    assert alert.detail["unresolved"] is False
    assert alert.detail["situations"][0]["state"] == "resolved"
    desk.open(client, "2028-06-01T10:00:00+00:00")
    desk.settled()
    assert desk.container.alerts.run_once() == []
    assert all(a.kind != "reception" for a in list(received.queue))


def test_the_card_and_the_visit_brief_show_what_went_wrong_last_time(any_api: Api) -> None:
    api = any_api
    template = api.ok("POST", "/v1/survey-templates", {"name": "After visit", "questions": [
        {"id": "q1", "text": "Were you welcomed?", "stage": "reception"},
        {"id": "q2", "text": "Was the car clean?", "stage": "delivery"}]}, as_="admin")
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Ann Lee",
                                            "occurred_at": "2026-01-01T09:00:00+00:00"})
    order = api.ok("POST", "/v1/work-orders", {"client_id": client["id"], "asset": "B-1",
                                               "occurred_at": "2026-03-01T09:00:00+00:00"})
    api.ok("POST", f"/v1/work-orders/{order['id']}/close", {
        "amount": "10.00", "currency": "EUR", "occurred_at": "2026-03-01T12:00:00+00:00"})
    survey = api.ok("POST", "/v1/surveys", {"work_order_id": order["id"],
                                            "template_id": template["id"],
                                            "interviewer": "iv",
                                            "occurred_at": "2026-03-04T09:00:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/ticks", {
        "question_id": "q2", "ticked": False, "occurred_at": "2026-03-04T09:01:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/complete", {
        "outcome": "completed", "occurred_at": "2026-03-04T09:02:00+00:00"})
    last = api.ok("POST", "/v1/complaints", {
        "client_id": client["id"], "text": "Seats were dirty", "stage": "delivery",
        "work_order_id": order["id"], "occurred_at": "2026-03-04T09:03:00+00:00"})
    params = {"at": "2026-03-10T09:00:00+00:00", "min_position": last["position"]}
    card = api.ok("GET", f"/v1/clients/{client['id']}/card", params=params)
    found = card["last_dissatisfaction"]
    assert found["unresolved"] is True and found["window_days"] == 90
    assert found["surveys"][0]["questions"] == [
        {"question_id": "q2", "stage": "delivery", "text": "Was the car clean?"}]
    assert [(c["text"], c["stage"]) for c in found["complaints"]] == [
        ("Seats were dirty", "delivery")]
    assert {s["state"] for s in found["situations"]} == {"open"}
    brief = api.ok("GET", f"/v1/clients/{client['id']}/brief",
                   params={**params, "purpose": "visit"})
    assert brief["sections"][0] == "last_dissatisfaction"
    assert brief["last_dissatisfaction"] == found
    # Before the survey: nothing went wrong yet.
    before = api.ok("GET", f"/v1/clients/{client['id']}/card",
                    params={"at": "2026-03-02T09:00:00+00:00"})
    assert before["last_dissatisfaction"] is None
