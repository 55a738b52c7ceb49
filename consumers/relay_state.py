"""The relay's durable progress: its store position, the topic incarnation it published to, and a
tally per partition (next offset, count, running digest), in the read-model database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    select,
)

from consumers.checkpoints import Tally

# Not projection state (replay neither rebuilds nor digests it), so it has its own metadata.
relay_metadata = MetaData()

relay_position = Table(
    "relay_position", relay_metadata,
    Column("topic", String(200), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("topic_id", String(64), nullable=True),
)

relay_partitions = Table(
    "relay_partitions", relay_metadata,
    Column("topic", String(200), primary_key=True),
    Column("partition", Integer, primary_key=True, autoincrement=False),
    Column("next_offset", BigInteger, nullable=False),
    Column("last_position", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("digest", String(64), nullable=False),
)


@dataclass
class PartitionState:
    next_offset: int = 0
    tally: Tally = field(default_factory=Tally)


@dataclass
class RelayState:
    """Everything up to `position` is on `topic_id`'s partitions, as tallied."""

    position: int = 0
    topic_id: str | None = None
    partitions: dict[int, PartitionState] = field(default_factory=dict)

    def copy(self) -> RelayState:
        return RelayState(self.position, self.topic_id, {
            p: PartitionState(s.next_offset, Tally(s.tally.last_position, s.tally.count,
                                                   s.tally.digest))
            for p, s in self.partitions.items()})


def create(engine: Engine) -> None:
    relay_metadata.create_all(engine)


def load(engine: Engine, topic: str) -> RelayState:
    with engine.connect() as conn:
        row = conn.execute(select(relay_position).where(relay_position.c.topic == topic)).first()
        parts = conn.execute(select(relay_partitions)
                             .where(relay_partitions.c.topic == topic)).all()
    if row is None:
        return RelayState()
    return RelayState(row.position, row.topic_id, {
        p.partition: PartitionState(p.next_offset,
                                    Tally(p.last_position, p._mapping["count"], p.digest))
        for p in parts})


def save(engine: Engine, topic: str, state: RelayState) -> None:
    """One transaction: a crash leaves either the old or the new state, never a mix."""
    with engine.begin() as conn:
        conn.execute(delete(relay_position).where(relay_position.c.topic == topic))
        conn.execute(relay_position.insert().values(topic=topic, position=state.position,
                                                    topic_id=state.topic_id))
        conn.execute(delete(relay_partitions).where(relay_partitions.c.topic == topic))
        if state.partitions:
            conn.execute(relay_partitions.insert(), [
                {"topic": topic, "partition": p, "next_offset": s.next_offset,
                 "last_position": s.tally.last_position, "count": s.tally.count,
                 "digest": s.tally.digest}
                for p, s in sorted(state.partitions.items())])
