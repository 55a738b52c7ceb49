"""Completeness checkpoints: the running digest, repeats, and what a consumer can prove."""

from __future__ import annotations

import hashlib

import pytest

from consumers.checkpoints import GENESIS, Checkpoint, CompletenessVerifier, Tally, fold

T = "crm.ContactLogged.v1"


def event(position: int) -> dict[str, object]:
    return {"position": position, "id": f"id-{position}", "type": T}


def checkpoint(last: int, count: int, digest: str) -> Checkpoint:
    return Checkpoint("crm.events.v1", "topic-id", 0, last + 2, last, count, digest)


def test_the_running_digest_chains_position_id_and_type() -> None:
    first = hashlib.sha256(bytes(32) + b"1 id-1 crm.ContactLogged.v1\n").hexdigest()
    second = hashlib.sha256(bytes.fromhex(first) + b"4 id-4 crm.ContactLogged.v1\n").hexdigest()

    assert fold(fold(GENESIS, 1, "id-1", T), 4, "id-4", T) == second


def test_a_tally_counts_each_position_once() -> None:
    tally = Tally()
    added = [tally.add(p, f"id-{p}", T) for p in (1, 2, 3, 2, 3, 4)]

    assert added == [True, True, True, False, False, True]
    assert (tally.count, tally.last_position) == (4, 4)
    clean = Tally()
    for p in (1, 2, 3, 4):
        clean.add(p, f"id-{p}", T)
    assert tally.digest == clean.digest


def test_a_consumer_proves_it_has_every_event_once_even_with_repeats_and_reading_ahead() -> None:
    relay = Tally()
    for p in (1, 2, 5):
        relay.add(p, f"id-{p}", T)
    verifier = CompletenessVerifier()
    for p in (1, 2, 1, 2, 5, 7):  # a re-published run, then an event past the checkpoint
        verifier.add(0, event(p))

    assert verifier.duplicates == 2
    assert verifier.check(checkpoint(5, relay.count, relay.digest)) is None


def test_a_missing_event_or_one_not_yet_read_is_named() -> None:
    relay = Tally()
    for p in (1, 2, 5):
        relay.add(p, f"id-{p}", T)
    missing = CompletenessVerifier()
    for p in (1, 5):
        missing.add(0, event(p))
    behind = CompletenessVerifier()
    behind.add(0, event(1))

    assert missing.check(checkpoint(5, 3, relay.digest)) == (
        "partition 0: 2 events read up to position 5, checkpoint says 3")
    assert behind.check(checkpoint(5, 3, relay.digest)) == (
        "partition 0: read up to position 1, checkpoint is at 5")


def test_checkpoints_travel_as_json_and_nothing_else_passes_for_one() -> None:
    sent = checkpoint(5, 3, GENESIS)

    assert Checkpoint.decode(sent.encode()) == sent
    assert sent.key() == b"crm.events.v1/0"
    with pytest.raises(ValueError, match="not a checkpoint"):
        Checkpoint.decode(b'{"kind": "crm.deadletter.v1"}')
