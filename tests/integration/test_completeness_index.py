"""The stored card completeness (projections.clients.incomplete_clients) equals folding every
client's profile facts (all_states + completeness) at any knowledge cut-off, on a seeded random
history of registrations, profile changes, contact persons, reassignments and erasures, each
recorded at its own moment."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from uuid import UUID

import pytest

from commands import clients as cl
from commands.errors import CommandError
from domain.errors import DomainError
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.clients import all_states, completeness, incomplete_clients
from tests.integration.remote_world import World, t


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-03-01"))


@pytest.fixture
def world(sqlite_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(sqlite_settings, clock=clock)
    try:
        yield World(container)
    finally:
        container.close()


def _folded(world: World, as_of: datetime | None) -> list[dict[str, object]]:
    with world.conn() as conn:
        out = []
        for state in all_states(conn, as_of):
            score = completeness(state)
            if not state.erased and score["missing"]:
                out.append({"client_id": state.client_id, "form": state.form,
                            "score": score["score"], "missing": score["missing"]})
        return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_stored_completeness_equals_the_fold_at_every_cut_off(
        world: World, clock: ManualClock, seed: int) -> None:
    rng = random.Random(seed)
    clients: list[UUID] = []
    persons: dict[UUID, list[UUID]] = {}
    cut_offs = [None]
    for step in range(60):
        clock.advance(timedelta(minutes=rng.randint(1, 90)))
        action = rng.random()
        if not clients or action < 0.3:
            form = rng.choice(["person", "organisation"])
            extra = {k: v for k, v in (("phones", ["+49 30 1"]), ("emails", ["a@b.example"]),
                                       ("address", "Main 1"), ("tax_id", "DE1"))
                     if rng.random() < 0.5}
            cid = world.client(f"Client {step}", form=form, **extra)
            clients.append(cid)
            persons[cid] = []
            continue
        cid = rng.choice(clients)
        try:
            if action < 0.5:
                change = rng.choice([{"address": "Side 2"}, {"phones": []}, {"tax_id": "X9"},
                                     {"emails": ["c@d.example"]}, {"form": "person"},
                                     {"form": "organisation"}])
                world.run(cl.UpdateClient(client_id=cid, **change))
            elif action < 0.7:
                pid = world.new(cl.AddContactPerson(
                    client_id=cid, name=f"P{step}", role=rng.choice(["decision_maker", "user"]),
                    phones=["+1 2"] if rng.random() < 0.5 else []))
                persons[cid].append(pid)
            elif action < 0.8 and persons[cid]:
                world.run(cl.RemoveContactPerson(client_id=cid,
                                                 person_id=persons[cid].pop()))
            elif action < 0.9:
                world.run(cl.UpdateClient(client_id=cid, specialist_id=None))
            elif action < 0.95:
                world.run(cl.EraseClient(client_id=cid, reason="request"))
        except (DomainError, CommandError):  # a rule refused it (erased, no change): fine
            pass
        if rng.random() < 0.2:
            cut_offs.append(clock())
    world.sync()
    cut_offs += [t("2028-02-01"), clock() + timedelta(days=1)]
    assert any(_folded(world, c) for c in cut_offs)  # the history has incomplete cards
    for cut_off in cut_offs:
        with world.conn() as conn:
            assert incomplete_clients(conn, cut_off) == _folded(world, cut_off), cut_off
