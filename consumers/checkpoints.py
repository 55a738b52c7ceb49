"""Completeness checkpoints (§7): per-partition running digests, and how a consumer proves it has
every event exactly once.

For each partition of crm.events.v1 the relay folds every distinct event it published there, in
position order, into a running digest:
    digest_0 = 64 zeros;  digest_n = sha256(bytes(digest_{n-1}) + b"<position> <id> <type>\\n")
and periodically publishes {last_position, count, digest} per partition on
crm.events.v1.checkpoints. A consumer folds what it read the same way (dropping a record whose
position is not above the last one it kept in that partition: re-published runs only repeat
events it already has) and compares when it has reached the checkpoint's last_position.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

GENESIS = "0" * 64
KIND = "crm.checkpoint.v1"


def fold(digest: str, position: int, event_id: str, type_: str) -> str:
    line = f"{position} {event_id} {type_}\n".encode()
    return hashlib.sha256(bytes.fromhex(digest) + line).hexdigest()


@dataclass
class Tally:
    """One partition's count and running digest, as the relay and a consumer both keep it."""

    last_position: int = 0
    count: int = 0
    digest: str = GENESIS

    def add(self, position: int, event_id: str, type_: str) -> bool:
        """Fold an event in; False (and nothing changes) for a repeat of an earlier one."""
        if position <= self.last_position:
            return False
        self.digest = fold(self.digest, position, event_id, type_)
        self.count += 1
        self.last_position = position
        return True


@dataclass(frozen=True)
class Checkpoint:
    """The relay's claim: partition `partition` of `topic` (incarnation `topic_id`) holds exactly
    `count` distinct events up to `last_position`, with this running digest. Every store event up
    to `relay_position` that maps to this partition is among them."""

    topic: str
    topic_id: str
    partition: int
    relay_position: int
    last_position: int
    count: int
    digest: str
    kind: str = KIND

    def key(self) -> bytes:
        return f"{self.topic}/{self.partition}".encode()

    def encode(self) -> bytes:
        return orjson.dumps(asdict(self))

    @classmethod
    def decode(cls, value: bytes) -> Checkpoint:
        data = orjson.loads(value)
        if data.get("kind") != KIND:
            raise ValueError(f"not a checkpoint: {data.get('kind')!r}")
        return cls(**data)


@dataclass
class CompletenessVerifier:
    """What a downstream consumer keeps to prove completeness: a tally per partition, and the
    tally at each position not yet confirmed by a checkpoint."""

    tallies: dict[int, Tally] = field(default_factory=dict)
    _history: dict[int, dict[int, tuple[int, str]]] = field(default_factory=dict)
    duplicates: int = 0

    def add(self, partition: int, ce: dict[str, Any]) -> bool:
        tally = self.tallies.setdefault(partition, Tally())
        if not tally.add(int(ce["position"]), ce["id"], ce["type"]):
            self.duplicates += 1
            return False
        self._history.setdefault(partition, {})[tally.last_position] = (tally.count, tally.digest)
        return True

    def check(self, checkpoint: Checkpoint) -> str | None:
        """None if what was read matches the checkpoint; else why not (missing, or not yet read)."""
        if checkpoint.count == 0:
            return None
        tally = self.tallies.get(checkpoint.partition, Tally())
        if tally.last_position < checkpoint.last_position:
            return (f"partition {checkpoint.partition}: read up to position "
                    f"{tally.last_position}, checkpoint is at {checkpoint.last_position}")
        seen = self._history.get(checkpoint.partition, {}).get(checkpoint.last_position)
        if seen is None:
            return (f"partition {checkpoint.partition}: position {checkpoint.last_position} "
                    "was never read")
        count, digest = seen
        if (count, digest) != (checkpoint.count, checkpoint.digest):
            return (f"partition {checkpoint.partition}: {count} events read up to position "
                    f"{checkpoint.last_position}, checkpoint says {checkpoint.count}"
                    + ("" if count != checkpoint.count else " (same count, other events)"))
        # Confirmed: earlier snapshots are no longer needed.
        history = self._history[checkpoint.partition]
        for position in [p for p in history if p < checkpoint.last_position]:
            del history[position]
        return None
