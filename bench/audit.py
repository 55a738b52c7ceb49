"""Benchmark 5, audit: hash-chain verification, and the as-of card of a client with 1,000 events.

Verify: `infra.chain.verify_store` (recompute every stream and global hash) against reading the
same rows (events joined with their hashes) without hashing.
As-of card: `projections.client_views.full_card` with `as_of` half-way through the client's
history (the query the card route runs), against the event-sourced way to answer the same
question without a bitemporal read model: read the client's events from the store and replay
them into the projections in an in-memory SQLite database, then read the card there.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from bench.figures import LOWER, Bars, Row, every, timer
from bench.history import SPAN, START, batches, heavy_client
from commands.application import Actor
from commands.clients import RegisterClient
from domain.values import ClientForm, ClientKind
from infra.bootstrap import Container
from infra.chain import stored_records, verify_store
from infra.db import make_engine
from projections.base import Runner
from projections.client_views import full_card
from projections.registry import all_projections

HEAVY_EVENTS = 1000
CARD_REPEATS = 30
REPLAY_REPEATS = 3


@dataclass(frozen=True)
class Heavy:
    """The client with `HEAVY_EVENTS` events, and a knowledge cut-off half-way through them."""

    client_id: UUID
    first: int
    last: int
    middle_recorded_at: datetime  # when the middle event was stored: an as_of half-way


def write_heavy_client(container: Container, seed: int, actor: Actor) -> Heavy:
    """One client with `HEAVY_EVENTS` events (registration included) at the store's end."""
    client_id = UUID(int=seed, version=4)
    first = container.app.execute([RegisterClient(
        id=client_id, kind=ClientKind.CUSTOMER, form=ClientForm.ORGANISATION,
        name="Heavy Client Ltd",
        phones=["+49 30 5550000"], occurred_at=START)], actor).position
    last = first
    for chunk in batches(heavy_client(client_id, HEAVY_EVENTS - 1, seed=seed), 50):
        last = container.app.execute(chunk, actor).position
    return Heavy(client_id, first, last, _recorded_at(container, first + (last - first) // 2))


def verify(container: Container, backend: str, events: int, bars: Bars) -> list[Row]:
    with bars.task(f"{backend}: read rows + hashes (no verify)", events) as advance, \
            timer() as plain:
        count = 0
        for _record in stored_records(container.app):
            count += 1
            if count % 1000 == 0:
                advance(1000)
    with bars.task(f"{backend}: audit verify", events) as advance, timer() as checked:
        verdict = verify_store(container.app, progress=every(advance))
    if not verdict.ok:
        raise RuntimeError(f"the bench store failed verification: {verdict.detail}")
    return [Row("audit verify vs reading the same rows", backend, verdict.events / checked.seconds,
                count / plain.seconds, "events/s",
                f"{verdict.events} events; stream + global chain hashes recomputed")]


def as_of_card(container: Container, backend: str, heavy: Heavy) -> list[Row]:
    at = START + SPAN
    client_id, first, last, middle = (heavy.client_id, heavy.first, heavy.last,
                                      heavy.middle_recorded_at)
    timings = []
    with container.engine.connect() as conn:
        full_card(conn, client_id, at=at, as_of=middle)  # warm the statement cache
        for _ in range(CARD_REPEATS):
            with timer() as clock:
                card = full_card(conn, client_id, at=at, as_of=middle)
            timings.append(clock.seconds * 1000)
    assert card is not None
    replays = []
    for _ in range(REPLAY_REPEATS):
        # Fresh in-memory tables per replay, created outside the timed part.
        engine = make_engine("sqlite://")
        runner = Runner(engine, all_projections(container.keyring), lambda _s, _n: [])
        try:
            with timer() as clock:
                replayed = _replay_card(container, runner, client_id, first, last, at, middle)
        finally:
            engine.dispose()
        replays.append(clock.seconds * 1000)
    assert replayed is not None
    return [Row("as-of card, client with 1,000 events vs replaying them", backend,
                statistics.median(timings), statistics.median(replays), "ms",
                f"median of {CARD_REPEATS} card queries (as_of half-way) vs of "
                f"{REPLAY_REPEATS} replays of the client's events into in-memory SQLite",
                better=LOWER)]


def _recorded_at(container: Container, position: int) -> datetime:
    (_p, event), = container.runner.reader(position, 1)
    return event.timestamp  # type: ignore[no-any-return]


def _replay_card(container: Container, runner: Runner, client_id: UUID, first: int, last: int,
                 at: datetime, as_of: datetime) -> object:
    page = [(p, e) for p, e in container.runner.reader(first, last - first + 1)
            if getattr(e, "client_id", None) == client_id and e.timestamp <= as_of]
    runner.apply_page(page)
    with runner.engine.connect() as conn:
        return full_card(conn, client_id, at=at, as_of=None)
