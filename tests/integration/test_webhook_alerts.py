"""Alerts to webhook subscribers (issue 18.1): a reception alert reaches a real HTTP receiver
once, signed, as the same CloudEvent crm.alerts.v1 carries; a restarted dispatcher sends nothing
again; a failing receiver gets retries, then a parked delivery that a resend delivers. And a
reception alert lost to a crash between the visit's save and its scan is raised at the next
start."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from uuid import UUID

import orjson
import pytest
from sqlalchemy import select

from consumers import webhooks
from consumers.alert_publisher import to_cloudevent
from consumers.alerts import AlertScheduler
from consumers.client_alerts import client_alert_log, from_row
from consumers.dlq import RetryPolicy
from consumers.main import sealed_reader
from consumers.webhooks import Dispatcher
from infra.clock import ManualClock
from infra.settings import Settings
from tests.integration.service_story import Station, station_container, t
from tests.integration.test_webhooks import (  # noqa: F401 (the receiver fixture)
    SECRET,
    Receiver,
    receiver,
)
from tests.support import Api


@pytest.fixture
def desk(any_settings: Settings) -> Iterator[tuple[Station, Api, ManualClock]]:
    with station_container(any_settings, "2028-06-01T12:00:00+00:00") as (container, clock):
        yield Station(container), Api(container), clock


def wait_until(done: Callable[[], bool], what: str, step: Callable[[], object] | None = None,
               seconds: float = 30, show: Callable[[], object] = lambda: None) -> None:
    """Poll `done` (running `step` between looks) until it holds, or fail at the deadline."""
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}: {show()}"
        if step is None or not step():
            time.sleep(0.01)


def reception_alerts(desk: Station) -> dict[UUID, dict[str, object]]:
    """Reception alerts logged: work order -> the CloudEvent the Kafka publisher builds."""
    with desk.container.engine.connect() as conn:
        rows = conn.execute(select(client_alert_log).where(
            client_alert_log.c.kind == "reception")).all()
    return {row.subject_id: orjson.loads(orjson.dumps(to_cloudevent(from_row(row))))
            for row in rows}


def dispatcher_for(desk: Station, **kwargs: object) -> Dispatcher:
    return Dispatcher(desk.container.engine, sealed_reader(desk.container), timeout=5.0,
                      secrets=desk.container.keyring.secrets("webhook"),
                      **kwargs)  # type: ignore[arg-type]


def alerts_received(state: Receiver) -> list[dict[str, object]]:
    with state.lock:
        return [r for r in state.requests if str(r["event"]["type"]).startswith("crm.alert.")]


def test_a_reception_alert_reaches_its_subscriber_once_signed_as_on_kafka(
        desk: tuple[Station, Api, ManualClock], receiver: Receiver) -> None:  # noqa: F811
    station, api, clock = desk
    scheduler = station.container.alerts
    assert scheduler is not None
    client = station.client("2028-01-01T09:00:00+00:00")
    station.complaint(client, "2028-05-20T10:00:00+00:00", stage="reception")  # unresolved
    station.settled()
    scheduler.run_once()  # the complaint's own alerts are logged before anyone subscribes

    bad = api.post("/v1/webhooks", {"name": "x", "url": receiver.url,
                                    "event_types": ["crm.alert.nope.v1"]}, as_="admin")
    assert bad.status_code == 422 and "event_types" in bad.text
    assert webhooks._types(["crm.alert.*", "PaymentReceived"]) == [
        "PaymentReceived", "crm.alert.*"]
    with pytest.raises(webhooks.SubscriberError) as error:
        webhooks._types(["crm.alert.reception.v2"])
    assert error.value.field == "event_types"
    added = api.ok("POST", "/v1/webhooks", {"name": "desk", "url": receiver.url,
                                            "secret": SECRET,
                                            "event_types": ["crm.alert.reception.v1"]},
                   as_="admin")
    assert added["event_types"] == ["crm.alert.reception.v1"]
    assert added["last_delivery"] is None
    # An empty list is every store event and no alert: "events" gets the work order opened.
    api.ok("POST", "/v1/webhooks", {"name": "events", "url": receiver.url, "secret": SECRET},
           as_="admin")

    dispatcher = dispatcher_for(station, poll_seconds=60.0)  # woken by the hub, not the poll
    dispatcher.attach(scheduler.hub)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), daemon=True)
    thread.start()
    try:
        order = station.open(client, "2028-06-01T11:30:00+00:00")
        wait_until(lambda: len(alerts_received(receiver)) >= 1
                   and any(r["event"]["type"] == "crm.WorkOrderOpened.v2"
                           for r in receiver.requests), "the alert and the event",
                   show=lambda: (receiver.requests, reception_alerts(station),
                                 webhooks.status(station.container.engine),
                                 dispatcher.last_error))
    finally:
        stop.set()
        dispatcher.notify()
        thread.join(timeout=10)
    expected = reception_alerts(station)
    assert list(expected) == [order]
    [got] = alerts_received(receiver)
    assert got["status"] == 200  # signed right (else 401)
    assert got["event"] == expected[order]  # the very CloudEvent of crm.alerts.v1
    assert got["id"] == expected[order]["id"]
    assert got["event"]["type"] == "crm.alert.reception.v1"
    assert got["type"] == "application/cloudevents+json; charset=utf-8"
    status = api.ok("GET", "/v1/webhooks/desk", as_="admin")
    assert status["last_delivery"]["position"] is None
    assert status["last_delivery"]["event_id"] == expected[order]["id"]
    assert status["alert_position"] is not None and status["parked"] == 0

    # A restart resumes where it was: nothing is sent again.
    sent = len(receiver.requests)
    restarted = dispatcher_for(station)
    assert restarted.step() == 0
    assert len(receiver.requests) == sent
    api.request("DELETE", "/v1/webhooks/events", as_="admin")

    # A failing receiver: three attempts, then parked; the next alert goes through.
    receiver.plan = [500, 500, 503]
    failing = dispatcher_for(station, retry=RetryPolicy(attempts=3, first_delay=0.01,
                                                        max_delay=0.02))
    clock.set(t("2028-06-01T12:01:00+00:00"))  # logged in this order
    second = station.open(client, "2028-06-01T11:40:00+00:00")
    wait_until(lambda: second in reception_alerts(station), "the second alert")
    clock.set(t("2028-06-01T12:02:00+00:00"))
    third = station.open(client, "2028-06-01T11:50:00+00:00")
    wait_until(lambda: third in reception_alerts(station), "the third alert")
    expected = reception_alerts(station)
    wait_until(lambda: len(alerts_received(receiver)) == 5, "three attempts and the third",
               step=failing.step)
    attempts = alerts_received(receiver)[1:]
    assert [(r["status"], r["id"]) for r in attempts] == [
        (500, expected[second]["id"]), (500, expected[second]["id"]),
        (503, expected[second]["id"]), (200, expected[third]["id"])]
    parked = api.ok("GET", "/v1/webhooks/desk/parked", as_="admin")["items"]
    assert [(p["position"], p["event_id"], p["type"], p["error"], p["attempts"])
            for p in parked] == [(-1, expected[second]["id"], "crm.alert.reception.v1",
                                  "HTTP 503", 3)]
    assert api.ok("GET", "/v1/webhooks/desk", as_="admin")["parked"] == 1
    assert failing.step() == 0  # parked is passed: not retried by the loop

    # (Not the route: it signs with the container's clock, here a manual one in 2028, which
    # the receiver would refuse as a stale timestamp.)
    resent = webhooks.resend_parked(station.container.engine, "desk",
                                    secrets=station.container.keyring.secrets("webhook"))
    assert resent == {"resent": [-1], "still_failing": {}}
    last = alerts_received(receiver)[-1]
    assert (last["status"], last["event"]) == (200, expected[second])  # same id, same body
    assert api.ok("GET", "/v1/webhooks/desk", as_="admin")["parked"] == 0
    assert dispatcher_for(station).step() == 0
    assert len(alerts_received(receiver)) == 6


def test_alert_kinds_asked_for_start_from_now_and_stop_when_dropped(
        desk: tuple[Station, Api, ManualClock]) -> None:
    station, _api, _clock = desk
    engine = station.container.engine
    secrets = station.container.keyring.secrets("webhook")
    webhooks.add_subscriber(engine, "all", "http://127.0.0.1:9/x", SECRET, ["crm.alert.*"],
                            secrets=secrets)
    assert webhooks.subscriber(engine, "all").alert_kinds >= {"reception", "sla_breach"}
    assert webhooks.subscriber(engine, "all").wants(object()) is False  # no store event
    webhooks.update_subscriber(engine, "all", secrets=secrets, event_types=[])
    plain = webhooks.subscriber(engine, "all")
    assert plain.alert_kinds == frozenset() and webhooks.status(engine, "all")[0][
        "alert_position"] is None


def test_a_receiver_sees_nothing_twice_when_asking_for_a_kind_it_already_had(
        desk: tuple[Station, Api, ManualClock], receiver: Receiver) -> None:  # noqa: F811
    station, _api, _clock = desk
    engine = station.container.engine
    secrets = station.container.keyring.secrets("webhook")
    client = station.client("2028-01-01T09:00:00+00:00")
    station.complaint(client, "2028-05-20T10:00:00+00:00")
    station.settled()
    assert station.container.alerts is not None
    station.container.alerts.run_once()  # the complaint's alerts: logged before it subscribes
    webhooks.add_subscriber(engine, "desk", receiver.url, SECRET, ["crm.alert.reception.v1"],
                            secrets=secrets)
    order = station.open(client, "2028-06-01T11:30:00+00:00")
    wait_until(lambda: order in reception_alerts(station), "the alert")
    dispatcher = dispatcher_for(station)
    wait_until(lambda: len(receiver.delivered()) == 1, "the delivery", step=dispatcher.step)
    # The same subscriber configured again at a start (config in code): its place is kept.
    webhooks.add_subscriber(engine, "desk", receiver.url, SECRET,
                            ["crm.alert.reception.v1", "crm.alert.sla_breach.v1"],
                            secrets=secrets)
    assert dispatcher_for(station).step() == 0
    assert len(receiver.requests) == 1


def test_a_visit_whose_scan_was_lost_in_a_crash_alerts_when_the_scheduler_starts_again(
        desk: tuple[Station, Api, ManualClock]) -> None:
    station, _api, clock = desk
    scheduler = station.container.alerts
    assert scheduler is not None
    client = station.client("2028-01-01T09:00:00+00:00")
    station.complaint(client, "2028-05-20T10:00:00+00:00")
    station.settled()
    scheduler.run_once()
    # The process "crashes" between the save and the scan: no scheduler sees the save.
    scheduler.stop()
    station.container.app.saved_listeners.remove(scheduler.notify)
    order = station.open(client, "2028-06-01T11:30:00+00:00")
    happy = station.client("2028-01-01T09:00:00+00:00", name="Bo Happy")
    station.open(happy, "2028-06-01T11:35:00+00:00")
    station.settled()
    assert reception_alerts(station) == {}

    clock.set(t("2028-06-01T12:05:00+00:00"))
    restarted = AlertScheduler(station.container.engine, clock, scheduler.policy)
    sent = restarted.run_once()  # its first scan sweeps the last day's visits
    assert [(a.kind, a.subject_id) for a in sent] == [("reception", order)]
    assert list(reception_alerts(station)) == [order]
    assert restarted.run_once() == []  # checked once; logged once
    again = AlertScheduler(station.container.engine, clock, scheduler.policy)
    assert again.run_once() == []  # another start finds it logged
    # A day later the visit is past the sweep's reach (the one-day rule of the alerts).
    clock.set(t("2028-06-02T12:06:00+00:00"))
    with station.container.engine.begin() as conn:
        conn.execute(client_alert_log.delete())
    assert AlertScheduler(station.container.engine, clock, scheduler.policy).run_once() == []
