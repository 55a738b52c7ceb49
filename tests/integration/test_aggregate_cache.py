"""The command layer's aggregate cache next to another writer (a second API worker).

Two containers on one store stand for two processes: each has its own cache, and neither learns
of the other's writes except through the store. Every answer must be the one fresh loads give.
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest

from bench.history import History
from commands.activity import LogContact
from commands.application import Actor, BatchItemError
from commands.base import Command
from commands.clients import EraseClient, RegisterClient, UpdateClient
from commands.errors import VersionConflictError
from domain.errors import ClientErasedError, InvalidTransitionError
from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.support import store_count

ACTOR = Actor("olga", "operator")


@pytest.fixture
def pair(any_settings: Settings) -> Iterator[tuple[Container, Container]]:
    first = build(any_settings, start_follower=False)
    second = build(any_settings, start_follower=False)
    try:
        yield first, second
    finally:
        second.close()
        first.close()


def run(container: Container, *commands: Command,
        expected: list[int | None] | None = None) -> list[tuple[UUID, int]]:
    receipt = container.app.execute(list(commands), ACTOR, expected_versions=expected)
    return [(r.id, r.version) for r in receipt.results]


def register(container: Container, name: str = "Ann Lee") -> UUID:
    return run(container, RegisterClient(kind="customer", form="person", name=name))[0][0]


def contact(client_id: UUID) -> LogContact:
    return LogContact(client_id=client_id, channel="phone", direction="inbound", topic="terms")


def test_if_match_is_judged_against_the_store_not_a_stale_cache(
        pair: tuple[Container, Container]) -> None:
    a, b = pair
    client_id = register(a)  # a holds the client at version 1
    run(b, UpdateClient(client_id=client_id, name="Ann Berg"))  # now version 2, a never saw it
    assert run(a, UpdateClient(client_id=client_id, tags=["vip"]), expected=[2]) == [
        (client_id, 3)]
    with pytest.raises(VersionConflictError):
        run(a, UpdateClient(client_id=client_id, tags=["gold"]), expected=[2])
    assert a.app.repository.get(client_id).profile["name"] == "Ann Berg"


def test_a_client_erased_by_another_writer_takes_no_contact(
        pair: tuple[Container, Container]) -> None:
    a, b = pair
    client_id = register(a)
    run(a, contact(client_id))  # a holds the live client, read but not written by the contact
    run(b, EraseClient(client_id=client_id, reason="asked to be forgotten"))
    count = store_count(a)
    with pytest.raises(ClientErasedError):
        run(a, contact(client_id))
    assert store_count(a) == count


def test_a_failed_batch_leaves_the_cache_no_further_than_the_store(
        pair: tuple[Container, Container]) -> None:
    a, _b = pair
    client_id = register(a)
    with pytest.raises(BatchItemError):
        run(a, UpdateClient(client_id=client_id, name="Changed"), contact(uuid4()))
    # Were the failed batch's change cached, the client would look like version 2.
    assert run(a, UpdateClient(client_id=client_id, tags=["vip"]), expected=[1]) == [
        (client_id, 2)]
    assert a.app.repository.get(client_id).profile["name"] == "Ann Lee"


def test_an_id_taken_by_another_writer_is_refused_by_name(
        pair: tuple[Container, Container]) -> None:
    a, b = pair
    register(a)  # a's cache holds something, so a's first attempts are optimistic
    taken = register(b, "Bea Kim")
    with pytest.raises(InvalidTransitionError) as refused:
        run(a, RegisterClient(id=taken, kind="customer", form="person", name="Cy Dunn"))
    assert refused.value.field == "id"


def test_cached_aggregates_equal_what_the_store_replays(
        pair: tuple[Container, Container]) -> None:
    a, _b = pair
    History(600, 120, seed=3).write(a.app, 25)
    cache = a.app.cache
    assert cache is not None
    held = list(cache._items.values())
    assert len(held) > 100
    for aggregate in held:
        assert a.app.repository.get(aggregate.id) == aggregate, type(aggregate).__name__
