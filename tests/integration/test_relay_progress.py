"""Issue 22.5: a healthy relay says how it is doing: a progress line at start and at a steady
interval with its position, its rate and its lag behind the store."""

from __future__ import annotations

import logging
import re

import pytest

from tests.integration.bus_support import (
    Worker,
    bulk_clients,
    relay_for,
    unique_topics,
    wait_for,
    workers,
)
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

pytestmark = pytest.mark.kafka

LINE = re.compile(r"relay progress: position (\d+) published and saved to (\S+) \(topic id "
                  r"(\S+)\), ([\d.]+) events/s over the last \d+ s, lag ([\d,]+) positions, "
                  r"recoveries 0")


def test_a_healthy_relay_logs_position_rate_and_lag_at_its_interval(
        api: Api, kafka_broker: BrokerHandle,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="consumers.relay")
    bulk_clients(api, clients=30)
    head = api.store_position()
    topics = unique_topics()
    relay = relay_for(api, kafka_broker.bootstrap, topics, batch_size=20,
                      store_head=api.container.store_position, progress_seconds=0.2)

    def lines() -> list[tuple[int, str, str, float, int]]:
        found = []
        for record in caplog.records:
            match = LINE.fullmatch(record.getMessage())
            if match and record.name == "consumers.relay" and record.levelno == logging.INFO:
                position, topic, topic_id, rate, lag = match.groups()
                found.append((int(position), topic, topic_id, float(rate),
                              int(lag.replace(",", ""))))
        return found

    with workers() as running:
        running.append(Worker(relay.run, "relay"))
        # Caught up, and then still saying so at its interval while idle (a healthy run).
        wait_for(lambda: sum(1 for p, *_r, lag in lines() if p == head and lag == 0) >= 2,
                 "two progress lines at the head with no lag")
    found = lines()
    first = found[0]
    assert first[0] < head and first[4] == head - first[0]  # at start: behind by the rest
    assert {topic for _p, topic, *_r in found} == {topics.events}
    assert all(topic_id != "None" for *_a, topic_id, _r, _l in found[1:])
    assert any(rate > 0 for *_a, rate, _l in found)  # the catch-up was measured
    assert [p for p, *_r in found] == sorted(p for p, *_r in found)
