"""Why the projections can be fed partition by partition (issue 19, docs/bus.md "Partitions"):
no fold reads a row that an event of another partition wrote. On the demo history (every
client, reference data of every kind), applying each partition on its own, the partitions one
after the other in reverse order (the farthest any consumer group can interleave them), gives
every projection the digest of the store-order replay. A projection added later that joins
across clients, or a client's event with reference data at apply time, fails here."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from consumers.cloudevents import is_published, key_of
from consumers.relay import partition_of
from demo import generate
from demo.load import Loader
from infra.bootstrap import Container
from infra.db import make_engine
from infra.eventstore import notification_reader
from projections.base import Partition, Runner
from projections.registry import all_projections
from projections.replay import state_digest

SMALL = {"seed": 11, "clients": 40, "months": 3, "start": date(2025, 10, 1)}


def _digests(engine: Any, projections: list[Any]) -> dict[str, str]:
    with engine.connect() as conn:
        return {p.name: state_digest(conn, p.tables) for p in projections}


@pytest.mark.parametrize("partitions", [4, 6])
def test_each_partition_applied_alone_in_reverse_order_equals_the_store_order(
        container: Container, tmp_path: Path, partitions: int) -> None:
    Loader(container.app, batch=100).load(generate(**SMALL))  # type: ignore[arg-type]
    assert container.follower.wait_for(container.store_position(), 60)
    live = _digests(container.engine, container.runner.projections)

    by_partition: dict[int, list[tuple[int, Any]]] = defaultdict(list)
    for position, event in notification_reader(container.app)(1, 10_000_000):
        if is_published(event):
            by_partition[partition_of(key_of(event), partitions)].append((position, event))
    assert len(by_partition) == partitions  # every partition has events

    engine = make_engine(f"sqlite:///{tmp_path}/partitioned.db")
    projections = all_projections(container.keyring)
    runner = Runner(engine, projections, lambda _s, _l: [])
    for partition in sorted(by_partition, reverse=True):
        events = by_partition[partition]
        for start in range(0, len(events), 500):
            runner.apply_page(events[start:start + 500],
                              Partition("t", partition, partitions), start + 500)
    assert _digests(engine, projections) == live
