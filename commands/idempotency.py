"""Idempotency records: saved in the same atomic write as the command's events.

The record's id is derived from the actor and the `Idempotency-Key`, so two racing retries collide
on the event store's optimistic concurrency at save(): exactly one write wins (STYLE.md habit 4).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.domain import Aggregate

_NS = UUID("0d8e3f7a-52b1-4c1e-8a52-9c4f7d3e2b10")


def record_id(actor: str, key: str) -> UUID:
    return uuid5(_NS, f"{actor}\n{key}")


def fingerprint(request: Any) -> str:
    """A digest of the request as given (before defaults), to spot a key reused for another body."""
    return hashlib.sha256(orjson.dumps(request, option=orjson.OPT_SORT_KEYS)).hexdigest()


class IdempotencyRecord(Aggregate):
    """The first answer to a keyed request (ids and versions; positions are looked up)."""

    class IdempotencyKeyUsed(Aggregate.Created):
        actor: str
        request_hash: str
        results: list[dict[str, Any]]

    if TYPE_CHECKING:
        actor: str
        request_hash: str
        results: list[dict[str, Any]]

    def __init__(self, actor: str, request_hash: str, results: list[dict[str, Any]]) -> None:
        self.actor = actor
        self.request_hash = request_hash
        self.results = results

    @classmethod
    def record(cls, *, actor: str, key: str, request_hash: str,
               results: list[dict[str, Any]]) -> IdempotencyRecord:
        return cls._create(cls.IdempotencyKeyUsed, id=record_id(actor, key), actor=actor,
                           request_hash=request_hash, results=results)
