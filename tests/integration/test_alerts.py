"""Alerts fire when the clock runs out, with nobody reading: scheduler, dedupe, SSE stream."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from api.app import create_app
from consumers.alert_hub import Alert
from consumers.alerts import AlertScheduler
from domain.values import Role
from infra.settings import Settings
from tests.reaction_support import Desk, berlin, berlin_container

FRIDAY_1730 = berlin(3, 6, 17, 30)
# One business hour from Friday 17:30: 30 min on Friday, 30 on Monday.
DEADLINE = berlin(3, 9, 9, 30)


@pytest.fixture
def desk(sqlite_settings: Settings) -> Iterator[Desk]:
    with berlin_container(sqlite_settings, berlin(3, 2, 8)) as (container, clock):
        desk = Desk(container, clock)
        desk.sla(berlin(3, 2, 8), "complaint", first_reaction=3600, resolution=8 * 3600)
        yield desk


@pytest.fixture
def any_desk(any_settings: Settings) -> Iterator[Desk]:
    with berlin_container(any_settings, berlin(3, 2, 8)) as (container, clock):
        desk = Desk(container, clock)
        desk.sla(berlin(3, 2, 8), "complaint", first_reaction=3600, resolution=8 * 3600)
        yield desk


def scheduler_of(desk: Desk) -> AlertScheduler:
    assert desk.container.alerts is not None
    return desk.container.alerts


def collect(desk: Desk) -> queue.Queue[Alert]:
    received: queue.Queue[Alert] = queue.Queue()
    scheduler_of(desk).hub.add_listener(received.put)
    return received


def next_alert(received: queue.Queue[Alert]) -> Alert:
    return received.get(timeout=10)  # bounded: a missing alert fails, never hangs


def advance(desk: Desk, to: datetime) -> None:
    """Move the clock and scan once, synchronously. The scheduler's thread may scan too; either
    way, once this returns every alert due at `to` has been published (scans hold one lock)."""
    desk.settle()
    desk.clock.set(to)
    scheduler_of(desk).run_once()


def test_new_situation_then_warning_then_breach_as_the_clock_runs(desk: Desk) -> None:
    received = collect(desk)
    client = desk.client()
    situation = desk.complaint(client, FRIDAY_1730)
    new = next_alert(received)
    assert (new.kind, new.situation_id, new.situation_kind, new.deadline) == (
        "new_situation", situation, "complaint", DEADLINE)
    advance(desk, berlin(3, 9, 9, 17))
    assert received.empty()  # 47 of 60 minutes used: below the 80% warning share
    advance(desk, berlin(3, 9, 9, 18))
    warning = next_alert(received)
    assert (warning.kind, warning.clock, warning.at, warning.deadline) == (
        "sla_warning", "first_reaction", berlin(3, 9, 9, 18), DEADLINE)
    advance(desk, DEADLINE)
    assert received.empty()  # at the deadline the target is still met
    advance(desk, DEADLINE + timedelta(seconds=1))
    breach = next_alert(received)
    assert (breach.kind, breach.clock, breach.at, breach.deadline) == (
        "sla_breach", "first_reaction", DEADLINE + timedelta(seconds=1), DEADLINE)
    assert breach.client_id == client


def test_a_paused_clock_does_not_breach_and_resuming_moves_the_deadline(desk: Desk) -> None:
    received = collect(desk)
    situation = desk.complaint(desk.client(), FRIDAY_1730)
    assert next_alert(received).kind == "new_situation"
    desk.pause(situation, berlin(3, 6, 17, 40))
    advance(desk, berlin(3, 10, 12))
    assert received.empty()
    desk.resume(situation, berlin(3, 10, 12))
    # 10 minutes used on Friday: 50 remain from Tuesday 12:00.
    advance(desk, berlin(3, 10, 12, 51))
    breach = next_alert(received)
    assert (breach.kind, breach.deadline) == ("sla_breach", berlin(3, 10, 12, 50))


def test_each_alert_is_sent_once_across_scans_and_restarts(any_desk: Desk) -> None:
    desk = any_desk
    received = collect(desk)
    desk.complaint(desk.client(), FRIDAY_1730)
    assert next_alert(received).kind == "new_situation"
    advance(desk, berlin(3, 9, 12))
    assert next_alert(received).kind == "sla_breach"  # the warning is moot once breached
    advance(desk, berlin(3, 9, 12, 5))
    assert received.empty()
    scheduler = scheduler_of(desk)
    restarted = AlertScheduler(desk.container.engine, desk.clock, scheduler.policy)
    assert restarted.run_once() == []
    assert received.empty()


def test_situations_without_a_target_only_announce_themselves(desk: Desk) -> None:
    received = collect(desk)
    desk.manual(desk.client(), "low_usage", FRIDAY_1730)
    new = next_alert(received)
    assert (new.kind, new.deadline) == ("new_situation", None)
    advance(desk, berlin(4, 30, 12))
    assert received.empty()


def test_alerts_long_overdue_before_anyone_could_know_are_not_sent(desk: Desk) -> None:
    desk.complaint(desk.client(), FRIDAY_1730)
    desk.settle()
    fresh = AlertScheduler(desk.container.engine, desk.clock, scheduler_of(desk).policy)
    received: queue.Queue[Alert] = queue.Queue()
    fresh.hub.add_listener(received.put)
    desk.clock.set(berlin(3, 20, 12))  # the breach fell due eleven days ago
    assert fresh.run_once() == []


# --- the SSE stream, on a real server --------------------------------------------------------


@pytest.fixture
def served(desk: Desk) -> Iterator[str]:
    """The app on a real uvicorn server on a free loopback port, in a thread."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(container=desk.container), log_level="warning",
                            ws="none", http="h11", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()
        assert not thread.is_alive()


def next_event(lines: Iterator[str], deadline: float) -> dict[str, str]:
    """The next server-sent event; each read is bounded by the client's timeout."""
    fields: dict[str, str] = {}
    for line in lines:
        assert time.monotonic() < deadline, "no event in time"
        if not line:
            if "event" in fields:
                return fields
            fields = {}
        elif not line.startswith(":"):  # comment lines are keep-alive pings
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    raise AssertionError("the stream ended")


def test_breach_alert_reaches_the_assigned_specialists_stream_without_any_read(
        desk: Desk, served: str) -> None:
    import json

    ann, bob = desk.specialist("Ann"), desk.specialist("Bob")
    ann_client, bob_client = desk.client(specialist_id=ann), desk.client(specialist_id=bob)
    token = desk.container.keys.create("ann-user", Role.OPERATOR, datetime.now(UTC))
    with httpx.Client(base_url=served, timeout=httpx.Timeout(5.0)) as http, http.stream(
            "GET", "/v1/alerts/stream", params={"specialist": str(ann)},
            headers={"Authorization": f"Bearer {token}"}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next_event(lines, time.monotonic() + 10)["event"] == "ready"
        desk.complaint(bob_client, berlin(3, 6, 17, 20))  # published first, filtered out
        situation = desk.complaint(ann_client, FRIDAY_1730)
        opened: dict[str, Any] = json.loads(next_event(lines, time.monotonic() + 10)["data"])
        assert (opened["kind"], opened["situation_id"]) == ("new_situation", str(situation))

        desk.clock.set(DEADLINE + timedelta(minutes=1))
        scheduler_of(desk).wake()
        event = next_event(lines, time.monotonic() + 10)
        alert = json.loads(event["data"])
        assert (event["event"], alert["kind"], alert["situation_id"]) == (
            "sla_breach", "sla_breach", str(situation))
        assert (alert["deadline"], alert["specialist_id"]) == (
            "2026-03-09T08:30:00+00:00", str(ann))
        assert event["id"] == alert["id"]
