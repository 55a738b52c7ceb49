"""A downstream consumer written from docs/bus.md alone, as an analytics engineer would: the
confluent-kafka client (librdkafka, independent of the kafka-python the service uses) and the
standard library, nothing of this project. It reads the events topic from offset 0, keeps each
event once by position, folds the completeness digest, and compares it with the relay's latest
checkpoint; the topic id is checked against the admin client's.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

EVENTS, CHECKPOINTS = "crm.events.v1", "crm.events.v1.checkpoints"


def dashed_topic_id(printed: str) -> str:
    """An admin client's topic id (22 characters of unpadded base64, either alphabet) as the
    dashed UUID the checkpoints carry."""
    standard = printed.replace("-", "+").replace("_", "/")
    return str(uuid.UUID(bytes=base64.b64decode(standard + "=" * (-len(standard) % 4))))


def admin_topic_id(bootstrap: str, topic: str = EVENTS) -> tuple[str, int]:
    """(the topic id as printed by confluent-kafka, the partition count)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    described = admin.describe_topics(TopicCollection([topic]))[topic].result(timeout=30)
    return str(described.topic_id), len(described.partitions)


def _records(bootstrap: str, topic: str, partitions: int, group: str,
             wanted: Any = None, timeout: float = 30.0) -> dict[int, list[Any]]:
    """Every record of each partition from offset 0 up to the fetch high watermark (the
    _PARTITION_EOF event), and on until `wanted(records)` holds if given."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                         "enable.auto.commit": False, "enable.partition.eof": True,
                         "auto.offset.reset": "earliest"})
    found: dict[int, list[Any]] = {p: [] for p in range(partitions)}
    at_end: set[int] = set()
    try:
        consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(at_end) == partitions and (wanted is None or wanted(found)):
                return found
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(message.error()))
                at_end.add(message.partition())
                continue
            at_end.discard(message.partition())
            found[message.partition()].append(message)
        raise TimeoutError(f"{topic}: not at its end in {timeout} s")
    finally:
        consumer.close()


def latest_checkpoints(bootstrap: str, group: str) -> dict[int, dict[str, Any]]:
    """The last checkpoint of each partition of the events topic (key `<topic>/<partition>`)."""
    latest: dict[int, dict[str, Any]] = {}
    for records in _records(bootstrap, CHECKPOINTS, 1, group).values():
        for record in records:
            checkpoint = json.loads(record.value())
            if checkpoint.get("kind") == "crm.checkpoint.v1" and checkpoint["topic"] == EVENTS:
                latest[int(checkpoint["partition"])] = checkpoint
    return latest


@dataclass
class Partition:
    last_position: int = 0
    count: int = 0
    digest: str = "0" * 64
    skipped: list[int] = field(default_factory=list)  # positions whose predecessor was missing
    repeats: int = 0
    at: dict[int, tuple[int, str]] = field(default_factory=dict)  # position -> (count, digest)

    def keep(self, event: dict[str, Any]) -> None:
        position = int(event["position"])
        if position <= self.last_position:
            self.repeats += 1
            return
        if int(event["prevposition"]) > self.last_position:
            self.skipped.append(position)
        line = f"{position} {event['id']} {event['type']}\n".encode()
        self.digest = hashlib.sha256(bytes.fromhex(self.digest) + line).hexdigest()
        self.count += 1
        self.last_position = position
        self.at[position] = (self.count, self.digest)


def verify(bootstrap: str, group: str, timeout: float = 30.0) -> dict[int, dict[str, Any]]:
    """Per partition: the verdict against the latest checkpoint and what was read."""
    printed, partitions = admin_topic_id(bootstrap)
    checkpoints = latest_checkpoints(bootstrap, f"{group}-checkpoints")

    def reached(found: dict[int, list[Any]]) -> bool:
        last = {p: max((int(json.loads(r.value())["position"]) for r in records), default=0)
                for p, records in found.items()}
        return all(last.get(p, 0) >= c["last_position"] for p, c in checkpoints.items())

    records = _records(bootstrap, EVENTS, partitions, group, wanted=reached, timeout=timeout)
    verdicts = {}
    for number, found in records.items():
        kept = Partition()
        for record in found:
            kept.keep(json.loads(record.value()))
        checkpoint = checkpoints.get(number)
        verdict = "no checkpoint"
        if checkpoint is not None:
            mine = kept.at.get(int(checkpoint["last_position"]), (0, "0" * 64))
            verdict = ("topic re-created" if checkpoint["topic_id"] != dashed_topic_id(printed)
                       else "verified" if mine == (checkpoint["count"], checkpoint["digest"])
                       else "mismatch")
        verdicts[number] = {"verdict": verdict, "checkpoint": checkpoint, "read": len(found),
                            "kept": kept.count, "repeats": kept.repeats,
                            "skipped": kept.skipped, "digest": kept.digest,
                            "last_position": kept.last_position, "topic_id": printed}
    return verdicts
