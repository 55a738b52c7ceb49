"""Alerts on a real Kafka-protocol broker: each alert as a CloudEvent keyed by specialist, sent
live and from the alert log, and sent again with the same id after a crash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, func, select

from commands.activity import PlanContact
from consumers.alert_publisher import AlertPublisher, alert_published
from consumers.alerts import alert_log
from infra.settings import Settings
from tests.integration.bus_support import port_for, read_topic, wait_for
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.reaction_support import Desk, berlin, berlin_container

pytestmark = pytest.mark.kafka

# A one-business-hour first-reaction target: a complaint at Friday 17:30 is due Monday 09:30.
FRIDAY_1720, FRIDAY_1730 = berlin(3, 6, 17, 20), berlin(3, 6, 17, 30)
MONDAY_0930 = berlin(3, 9, 9, 30)


@pytest.fixture
def desk(any_settings: Settings) -> Iterator[Desk]:
    with berlin_container(any_settings, berlin(3, 2, 8)) as (container, clock):
        desk = Desk(container, clock)
        desk.sla(berlin(3, 2, 8), "complaint", first_reaction=3600, resolution=8 * 3600)
        yield desk


def logged(desk: Desk) -> int:
    with desk.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(alert_log)).scalar_one())


def summary(record: Any) -> tuple[str, str, str, str]:
    ce = orjson.loads(record.value)
    return ce["type"], ce["subject"], record.key.decode(), ce["data"]["deadline"]


def test_alerts_reach_the_topic_once_each_keyed_by_specialist_and_again_with_the_same_id(
        desk: Desk, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    bootstrap, topic = kafka_broker.bootstrap, f"crm-test-{uuid.uuid4().hex[:10]}.alerts"
    scheduler = desk.container.alerts
    assert scheduler is not None
    ann = desk.specialist("Ann")
    ann_client, loner = desk.client(specialist_id=ann), desk.client()

    # Logged while no publisher ran (a crash between the log and the send): the drain sends it.
    lone = desk.complaint(loner, FRIDAY_1720)
    wait_for(lambda: logged(desk) == 1, "the scheduler to log the new situation")
    publisher = AlertPublisher(desk.container.engine, port_for(bootstrap), topic=topic,
                               clock=desk.clock)
    assert publisher.drain() == 1

    # Live: each alert the scheduler fires wakes the publisher's thread, which sends it.
    publisher.attach(scheduler.hub)
    publisher.start()
    situation = desk.complaint(ann_client, FRIDAY_1730)
    assert len(read_topic(bootstrap, topic, done=lambda rs: len(rs) >= 2)) == 2
    desk.settle()
    desk.clock.set(MONDAY_0930 + timedelta(seconds=1))
    scheduler.run_once()
    assert len(read_topic(bootstrap, topic, done=lambda rs: len(rs) >= 4)) == 4
    publisher.stop()
    assert publisher.drain() == 0  # everything sent was marked

    records = read_topic(bootstrap, topic)
    assert sorted(summary(r) for r in records) == sorted([
        ("crm.alert.new_situation.v1", str(lone), str(loner), "2026-03-09T08:20:00+00:00"),
        ("crm.alert.new_situation.v1", str(situation), str(ann), "2026-03-09T08:30:00+00:00"),
        ("crm.alert.sla_breach.v1", str(lone), str(loner), "2026-03-09T08:20:00+00:00"),
        ("crm.alert.sla_breach.v1", str(situation), str(ann), "2026-03-09T08:30:00+00:00"),
    ])
    breach = next(orjson.loads(r.value) for r in records
                  if summary(r)[:2] == ("crm.alert.sla_breach.v1", str(situation)))
    assert {k: v for k, v in breach.items() if k != "data"} == {
        "specversion": "1.0", "id": breach["data"]["id"], "source": "crm",
        "type": "crm.alert.sla_breach.v1", "subject": str(situation),
        "time": "2026-03-09T08:30:01+00:00", "datacontenttype": "application/json",
        "clientid": str(ann_client), "specialistid": str(ann)}
    assert (breach["data"]["kind"], breach["data"]["clock"]) == ("sla_breach", "first_reaction")

    # A crash after the broker took it but before it was marked: a restart sends it again,
    # byte for byte, so consumers drop the repeat by id.
    with desk.container.engine.begin() as conn:
        conn.execute(delete(alert_published)
                     .where(alert_published.c.alert_id == uuid.UUID(breach["id"])))
    restarted = AlertPublisher(desk.container.engine, port_for(bootstrap), topic=topic,
                               clock=desk.clock)
    assert restarted.drain() == 1
    again = read_topic(bootstrap, topic)
    assert len(again) == 5
    assert orjson.loads(again[-1].value) == breach
    assert restarted.drain() == 0
    restarted.stop()


def test_follow_up_alerts_go_out_with_the_situation_alerts(
        desk: Desk, kafka_broker: BrokerHandle) -> None:  # noqa: F811
    """Issue 18.2: the client_alert_log is drained to the same topic, subject = its id."""
    bootstrap, topic = kafka_broker.bootstrap, f"crm-test-{uuid.uuid4().hex[:10]}.alerts"
    scheduler = desk.container.alerts
    assert scheduler is not None
    ann = desk.specialist("Ann")
    client = desk.client(specialist_id=ann)
    planned, _links = desk.run(PlanContact(client_id=client, purpose="regular",
                                           due_at=berlin(3, 2, 10), occurred_at=berlin(3, 2, 8)))
    desk.settle()
    scheduler.run_once()  # at 08:00 (its day began at 00:00): due
    desk.clock.set(berlin(3, 2, 10, 0, 1))
    scheduler.run_once()
    publisher = AlertPublisher(desk.container.engine, port_for(bootstrap), topic=topic,
                               clock=desk.clock)
    assert publisher.drain() == 2  # due and overdue
    records = read_topic(bootstrap, topic, done=lambda rs: len(rs) >= 2)
    events = sorted((orjson.loads(r.value) for r in records), key=lambda ce: ce["type"])
    assert [(ce["type"], ce["subject"], ce["specialistid"]) for ce in events] == [
        ("crm.alert.planned_contact_due.v1", str(planned), str(ann)),
        ("crm.alert.planned_contact_overdue.v1", str(planned), str(ann))]
    assert events[1]["data"]["detail"] == {"purpose": "regular",
                                           "due_at": "2026-03-02T09:00:00+00:00"}
    assert events[1]["time"] == "2026-03-02T09:00:01+00:00"
    assert publisher.drain() == 0
    publisher.stop()
