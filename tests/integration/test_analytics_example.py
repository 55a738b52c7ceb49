"""The analytics example on a real Kafka-protocol broker: a daily DuckDB table from crm.events.v1
that counts each event once, and completeness checked against the relay's checkpoints."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest

from consumers.analytics_example import DailyAnalytics, Verdict
from consumers.checkpoints import Checkpoint, Tally
from consumers.cloudevents import is_published, key_of, to_cloudevent
from consumers.main import sealed_reader
from tests.integration.bus_support import (
    DEADLINE_S,
    port_for,
    relay_for,
    unique_topics,
)
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka


def verdict_when_read(analytics: DailyAnalytics, position: int) -> Verdict:
    """Poll until partition 0 has a verdict on a checkpoint at `position` that is not 'behind'."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        analytics.poll_once()
        verdict = analytics.completeness().get(0)
        if (verdict is not None and verdict.checkpoint_position == position
                and verdict.status != "behind"):
            return verdict
        assert time.monotonic() < deadline, f"no verdict at {position}: {verdict}"


def history(api: Api) -> tuple[str, int]:
    """Contacts, a complaint, survey ticks and payments on known business days; returns the
    client's id and the last position."""
    ok = api.ok
    client = ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                        "name": "Ann Lee"})["id"]
    for at in ("2026-10-05T09:00:00+02:00",
               "2026-10-06T01:30:00+02:00",  # still 5 October in UTC (23:30)
               "2026-10-06T10:00:00Z"):
        ok("POST", f"/v1/clients/{client}/contacts", {"channel": "phone", "direction": "inbound",
                                                       "topic": "call", "occurred_at": at})
    ok("POST", "/v1/complaints", {"client_id": client, "text": "rude",
                                  "occurred_at": "2026-10-06T11:00:00Z"})
    template = ok("POST", "/v1/survey-templates", {"name": "After visit", "questions": [
        {"id": "q1", "text": "Booking easy?", "stage": "booking"},
        {"id": "q2", "text": "Repair good?", "stage": "repair"}]}, as_="admin")["id"]
    order = ok("POST", "/v1/work-orders", {"client_id": client, "asset": "VW Golf",
                                           "occurred_at": "2026-10-01T08:00:00Z"})["id"]
    ok("POST", f"/v1/work-orders/{order}/close", {"amount": "250.00", "currency": "EUR",
                                                  "occurred_at": "2026-10-02T16:00:00Z"})
    survey = ok("POST", "/v1/surveys", {"work_order_id": order, "template_id": template,
                                        "interviewer": "Ivy",
                                        "occurred_at": "2026-10-07T08:55:00Z"})["id"]
    for question, ticked, at in (("q1", False, "2026-10-07T09:00:00Z"),
                                 ("q1", True, "2026-10-07T09:05:00Z"),
                                 ("q2", False, "2026-10-08T09:00:00Z")):
        ok("POST", f"/v1/surveys/{survey}/ticks", {"question_id": question, "ticked": ticked,
                                                   "occurred_at": at})
    last = 0
    for amount, currency, at in (("100.50", "EUR", "2026-10-07T12:00:00Z"),
                                 ("20.25", "EUR", "2026-10-07T13:00:00Z"),
                                 ("5.00", "USD", "2026-10-07T14:00:00Z"),
                                 ("1.00", "EUR", "2026-10-08T10:00:00Z")):
        last = ok("POST", "/v1/payments", {"client_id": client, "amount": amount,
                                           "currency": currency, "occurred_at": at})["position"]
    return client, int(last)


def test_the_daily_table_counts_each_event_once_and_the_checkpoint_verifies_it(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    client, last = history(api)
    relay = relay_for(api, bootstrap, topics)
    relay.run_until_caught_up()
    relay.close()
    path = tmp_path / "daily.duckdb"
    analytics = DailyAnalytics(path, bootstrap, topic=topics.events, group_id=f"{topics.events}-a")
    try:
        assert verdict_when_read(analytics, last) == Verdict(0, last, "verified", None)
    finally:
        analytics.close()

    expected_days = [(date(2026, 10, 5), 2, 0, 0, 0, 0),
                     (date(2026, 10, 6), 1, 1, 0, 0, 0),
                     (date(2026, 10, 7), 0, 0, 2, 1, 3),
                     (date(2026, 10, 8), 0, 0, 1, 1, 1)]
    expected_money = [(date(2026, 10, 7), "EUR", 2, Decimal("120.7500")),
                      (date(2026, 10, 7), "USD", 1, Decimal("5.0000")),
                      (date(2026, 10, 8), "EUR", 1, Decimal("1.0000"))]
    reopened = DailyAnalytics(path, bootstrap, topic=topics.events,
                              group_id=f"{topics.events}-a")
    try:
        assert (reopened.daily(), reopened.daily_payments()) == (expected_days, expected_money)
        # Lose the stored offsets: everything is read again, and nothing is counted twice.
        reopened.db.execute("DELETE FROM offsets")
        contact = api.ok("POST", f"/v1/clients/{client}/contacts",
                         {"channel": "email", "direction": "outbound", "topic": "thanks",
                          "occurred_at": "2026-10-08T15:00:00Z"})["position"]
        relay = relay_for(api, bootstrap, topics)
        relay.run_until_caught_up()
        relay.close()
        assert verdict_when_read(reopened, contact).status == "verified"
        expected_days[-1] = (date(2026, 10, 8), 1, 0, 1, 1, 1)
        assert (reopened.daily(), reopened.daily_payments()) == (expected_days, expected_money)
    finally:
        reopened.close()


def test_a_lost_message_fails_the_completeness_check(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    bootstrap, topics = kafka_broker.bootstrap, unique_topics()
    history(api)
    port = port_for(bootstrap)
    port.ensure_topics(topics.layout())
    topic_id = port.topic_ids([topics.events])[topics.events]
    events = [(p, e) for p, e in sealed_reader(api.container)(1, 10_000) if is_published(e)]
    lost = next(p for p, e in events if type(e).__name__ == "ComplaintRegistered")
    tally, previous = Tally(), 0
    producer: Any = port.producer("crm-test-lossy-relay")
    try:
        for position, event in events:
            ce = to_cloudevent(position, event, prev_position=previous)
            tally.add(position, ce["id"], ce["type"])  # the relay counted it...
            previous = position
            if position != lost:  # ...but the broker never got it
                producer.send(topics.events, key=key_of(event), value=orjson.dumps(ce))
        checkpoint = Checkpoint(topics.events, topic_id, 0, events[-1][0], tally.last_position,
                                tally.count, tally.digest)
        producer.send(topics.checkpoints, key=checkpoint.key(), value=checkpoint.encode())
        producer.flush(timeout=DEADLINE_S)
    finally:
        producer.close(timeout=2)

    analytics = DailyAnalytics(tmp_path / "lossy.duckdb", bootstrap, topic=topics.events,
                               group_id=f"{topics.events}-a")
    try:
        verdict = verdict_when_read(analytics, tally.last_position)
        assert verdict == Verdict(0, tally.last_position, "mismatch",
                                  f"{tally.count - 1} events read up to position "
                                  f"{tally.last_position}, the checkpoint says {tally.count}")
        assert analytics.gaps() == {0: 1}  # the record after it names it as its predecessor
        assert [row[2] for row in analytics.daily()] == [0, 0, 0, 0]  # the complaint is missing
    finally:
        analytics.close()


def test_on_a_partitioned_topic_each_partition_is_verified_and_the_days_add_up(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    from consumers.bus import Topics
    from consumers.relay import partition_of
    from infra.eventstore import notification_reader

    bootstrap, topics = kafka_broker.bootstrap, Topics.named(unique_topics().events, 4)
    contacts = 0
    for n in range(12):  # clients spread over the partitions, two contacts each on one day
        client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                                "name": f"Client {n}"})["id"]
        for hour in (9, 10):
            api.ok("POST", f"/v1/clients/{client}/contacts", {
                "channel": "phone", "direction": "inbound", "topic": "call",
                "occurred_at": f"2026-10-05T{hour:02}:00:00Z"})
            contacts += 1
    relay = relay_for(api, bootstrap, topics)
    relay.run_until_caught_up()
    relay.close()
    last: dict[int, int] = {}  # partition -> its last position
    for position, event in notification_reader(api.container.app)(1, 100_000):
        if is_published(event):
            last[partition_of(key_of(event), 4)] = position
    used = set(last)
    assert len(used) > 1  # the test means something only if several partitions hold events

    analytics = DailyAnalytics(tmp_path / "daily.duckdb", bootstrap, topic=topics.events,
                               checkpoints_topic=topics.checkpoints,
                               group_id=f"{topics.events}-a")
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            analytics.poll_once()
            verdicts = analytics.completeness()
            if set(verdicts) >= used and all(
                    v.checkpoint_position == last[p] and v.status != "behind"
                    for p, v in verdicts.items() if p in used):
                break
            assert time.monotonic() < deadline, f"no verdicts at {last}: {verdicts}"
        assert {p: verdicts[p].status for p in used} == {p: "verified" for p in used}
        assert analytics.daily() == [(date(2026, 10, 5), contacts, 0, 0, 0, 0)]
    finally:
        analytics.close()
