"""Positions tracked per topic partition (the partitioned Kafka consumers): each partition's pages
are applied once, in any interleaving, by any runner; a read model of an earlier one-partition
consumer goes on; a changed partition count is refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, select

from projections.base import (
    FedByPartitions,
    Partition,
    PartitionLayoutChanged,
    Runner,
    partition_tracking,
    positions,
)
from projections.fold import FoldProjection, Need, Rows

counts = Table("partition_demo", MetaData(), Column("client", String(10), primary_key=True),
               Column("events", Integer, nullable=False), Column("last", Integer))


class Counting(FoldProjection):
    """Counts each client's events: a doubled or lost event shows in the count."""

    name = "partition_demo"
    tables = (counts,)

    def needs(self, event: Any) -> Iterator[Need]:
        yield Need(counts, "client", event)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        row = rows.get(counts, event)
        rows.put(counts, {"client": event, "events": (row["events"] if row else 0) + 1,
                          "last": position})


totals = Table("partition_demo_total", MetaData(), Column("k", Integer, primary_key=True),
               Column("events", Integer, nullable=False))


class Totalling(FoldProjection):
    """One row every client's events add to (an aggregate, as sums per hour are)."""

    name = "partition_demo_total"
    tables = (totals,)
    shared = (totals,)

    def needs(self, event: Any) -> Iterator[Need]:
        yield Need(totals, "k", 1)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        row = rows.get(totals, 1)
        rows.put(totals, {"k": 1, "events": (row["events"] if row else 0) + 1})


def no_reader(_start: int, _limit: int) -> list[tuple[int, Any]]:
    return []


def table(engine: Any) -> dict[str, tuple[int, int]]:
    with engine.connect() as conn:
        return {r.client: (r.events, r.last) for r in conn.execute(select(counts))}


def tracked(engine: Any) -> dict[int, tuple[int, int | None]]:
    with engine.connect() as conn:
        return {r.partition: (r.position, r.next_offset)
                for r in conn.execute(select(partition_tracking))}


P0, P1 = Partition("t", 0, 2), Partition("t", 1, 2)


def test_each_partition_is_applied_once_in_any_interleaving(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    runner = Runner(engine, [Counting()], no_reader)
    # partition 0 holds client a (positions 1, 4, 6), partition 1 client b (2, 3, 5)
    runner.apply_page([(2, "b"), (3, "b")], P1, next_offset=2)
    runner.apply_page([(1, "a"), (4, "a")], P0, next_offset=2)
    runner.apply_page([(3, "b"), (5, "b")], P1, next_offset=3)  # 3 again: a redelivery
    runner.apply_page([(1, "a")], P0, next_offset=1)  # a stale redelivery changes nothing
    runner.apply_page([(4, "a"), (6, "a")], P0, next_offset=3)
    assert table(engine) == {"a": (3, 6), "b": (3, 5)}
    assert tracked(engine) == {0: (6, 3), 1: (5, 3)}
    assert runner.partition_position(P0) == (6, 3)
    with engine.connect() as conn:
        assert positions(conn)["partition_demo"] == 0  # the global watermark is not moved here


def test_a_partition_that_moved_to_another_runner_and_back_is_read_again(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    first, second = (Runner(engine, [Counting()], no_reader) for _ in range(2))
    first.apply_page([(1, "a"), (2, "a")], P0, next_offset=2)
    second.apply_page([(3, "a")], P0, next_offset=3)  # a rebalance gave P0 to `second`
    first.apply_page([(3, "a"), (4, "a")], P0, next_offset=4)  # and back: its rows are stale
    assert table(engine) == {"a": (4, 4)}


def test_an_earlier_one_partition_read_model_goes_on(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    old = Runner(engine, [Counting()], no_reader)
    old.apply_page([(1, "a"), (2, "b"), (3, "a")])  # the earlier consumer: global position 3
    runner = Runner(engine, [Counting()], no_reader)
    assert runner.partition_position(P1) == (3, None)  # seeded: nothing up to 3 again
    runner.apply_page([(2, "b"), (5, "b")], P1, next_offset=2)
    runner.apply_page([(3, "a"), (4, "a")], P0, next_offset=2)
    assert table(engine) == {"a": (3, 4), "b": (2, 5)}


def test_rows_of_a_one_partition_topic_count_as_global_and_other_counts_are_refused(
        tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    runner = Runner(engine, [Counting()], no_reader)
    runner.apply_page([(1, "a"), (2, "b")], Partition("t", 0, 1), next_offset=2)
    # the topic was re-created with 2 partitions (the relay re-publishes from the store start)
    assert runner.partition_position(P1) == (2, None)
    with engine.connect() as conn:
        assert positions(conn)["partition_demo"] == 2
    runner.apply_page([(1, "a"), (2, "b"), (3, "b")], P1, next_offset=3)
    assert table(engine) == {"a": (1, 1), "b": (2, 3)}
    with pytest.raises(PartitionLayoutChanged, match="crm replay"):
        runner.apply_page([(7, "c")], Partition("t", 0, 3), next_offset=1)
    assert table(engine) == {"a": (1, 1), "b": (2, 3)}


def test_read_models_fed_per_partition_are_not_caught_up_from_the_store(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    runner = Runner(engine, [Counting()], lambda start, _limit: [(3, "a")] if start <= 3 else [])
    runner.apply_page([(1, "a"), (3, "a")], P0, next_offset=2)
    follower = Runner(engine, [Counting()], runner.reader)  # global position 0: 3 again
    with pytest.raises(FedByPartitions, match="crm consume"):
        follower.catch_up()
    assert table(engine) == {"a": (2, 3)}


def test_a_blue_green_switch_moves_the_partitions_up_to_the_rebuilt_copy(api: Any) -> None:
    from commands.application import Actor
    from commands.clients import RegisterClient
    from infra.bluegreen import SwitchRefused, blue_green, rollback

    container = api.container
    for n in range(4):
        container.app.execute([RegisterClient(kind="customer", form="person",
                                              name=f"Client {n}")], Actor("op", "operator"))
    assert container.follower.wait_for(container.store_position(), 10)
    behind = Partition("crm.events.v1", 0, 2)
    with container.engine.begin() as conn:  # a consumer that has applied partition 0 to 1
        conn.execute(partition_tracking.insert().values(
            projection="client_card", topic=behind.topic, partition=0, partitions=2,
            position=1, next_offset=1))
    switched = blue_green(container, "client_card")
    # the copy holds everything up to its position: the consumer must not apply 2.. again
    assert tracked(container.engine) == {0: (switched.position, 1)}
    with container.engine.begin() as conn:  # now a consumer past what a rebuild reaches
        conn.execute(partition_tracking.update().values(position=switched.position + 100))
    with pytest.raises(SwitchRefused, match="past the rebuilt copy"):
        blue_green(container, "client_card")
    with pytest.raises(SwitchRefused, match="cannot be put back"):
        rollback(container, "client_card")


def test_rows_every_partition_changes_are_read_afresh_by_each_page(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/read.db")
    first, second = (Runner(engine, [Totalling()], no_reader) for _ in range(2))
    first.apply_page([(1, "a"), (3, "a")], P0, next_offset=2)
    second.apply_page([(2, "b")], P1, next_offset=1)  # another consumer, another partition
    first.apply_page([(4, "a")], P0, next_offset=3)  # must not add to its stale copy (2)
    second.apply_page([(5, "b")], P1, next_offset=2)
    with engine.connect() as conn:
        assert conn.execute(select(totals.c.events)).scalar_one() == 5
