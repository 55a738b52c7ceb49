"""Tamper evidence: the hash chains over stored events, and their verification (pure; offline).

Every stored event gets two hashes when it is written, in the same transaction:
  content     = sha256(topic || 0x00 || stored bytes)      (ciphertext where data is encrypted)
  stream_hash = sha256(previous stream_hash of its stream || stream id || version || content)
  chain_hash  = sha256(previous chain_hash in global order || position || stream_hash)
The first event of a stream, and of the store, chains from 32 zero bytes. Verification walks the
events in position order and names the first event that was altered, removed, inserted or moved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

GENESIS = bytes(32)


@dataclass(frozen=True)
class Record:
    """One stored event as the verifier sees it (hashes are None when no hash row exists)."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    state: bytes
    stream_hash: bytes | None
    chain_hash: bytes | None


def content_hash(topic: str, state: bytes) -> bytes:
    return hashlib.sha256(topic.encode() + b"\0" + state).digest()


def stream_hash(previous: bytes, stream_id: UUID, version: int, topic: str, state: bytes) -> bytes:
    return hashlib.sha256(previous + stream_id.bytes + version.to_bytes(8, "big")
                          + content_hash(topic, state)).digest()


def chain_hash(previous: bytes, position: int, stream: bytes) -> bytes:
    return hashlib.sha256(previous + position.to_bytes(8, "big") + stream).digest()


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    problem: str | None = None  # "altered" | "removed" | "inserted" | "reordered"
    position: int | None = None
    detail: str | None = None
    last_chain_hash: str | None = None


class Verifier:
    """Feed records in position order; stops at the first problem. Also works on a subset that
    holds whole streams (one client's export): then only the stream chains are checked."""

    def __init__(self, *, global_chain: bool = True) -> None:
        self.global_chain = global_chain
        self._chain = GENESIS
        self._streams: dict[UUID, tuple[int, bytes]] = {}
        self._last_position = 0
        self.count = 0
        self.verdict: Verdict | None = None

    def _fail(self, problem: str, record: Record, detail: str) -> Verdict:
        self.verdict = Verdict(False, self.count, problem, record.position, detail)
        return self.verdict

    def feed(self, record: Record) -> Verdict | None:
        """None while all is well; the failing Verdict at the first problem."""
        if self.verdict is not None:
            return self.verdict
        where = f"position {record.position} (stream {record.stream_id} v{record.version})"
        if record.position <= self._last_position:
            return self._fail("reordered", record, f"{where} comes after position "
                                                   f"{self._last_position}")
        if record.stream_hash is None or record.chain_hash is None:
            return self._fail("inserted", record, f"{where} has no hash: written outside the "
                                                  "store's chained write path")
        last_version, previous = self._streams.get(record.stream_id, (0, GENESIS))
        if record.version != last_version + 1:
            problem = "removed" if record.version > last_version + 1 else "reordered"
            return self._fail(problem, record, f"{where} follows version {last_version} of its "
                                               "stream")
        expected_stream = stream_hash(previous, record.stream_id, record.version, record.topic,
                                      record.state)
        if expected_stream != record.stream_hash:
            return self._fail("altered", record, f"{where}: its stored bytes or topic do not "
                                                 "match its hash")
        if self.global_chain:
            expected_chain = chain_hash(self._chain, record.position, record.stream_hash)
            if expected_chain != record.chain_hash:
                return self._fail("removed", record, f"{where}: the global chain breaks here; "
                                                     "an event before it was removed or moved")
            self._chain = record.chain_hash
        self._streams[record.stream_id] = (record.version, record.stream_hash)
        self._last_position = record.position
        self.count += 1
        return None

    def finish(self) -> Verdict:
        if self.verdict is not None:
            return self.verdict
        return Verdict(True, self.count, last_chain_hash=self._chain.hex())


def verify(records: Iterable[Record], *, global_chain: bool = True) -> Verdict:
    verifier = Verifier(global_chain=global_chain)
    for record in records:
        if verifier.feed(record) is not None:
            break
    return verifier.finish()
