"""Blue/green rebuild: reads keep answering during the rebuild, the switch is atomic, and the
previous copy is kept for rollback."""

from __future__ import annotations

import threading

from commands.activity import LogContact
from commands.application import Actor
from commands.clients import RegisterClient
from infra.bluegreen import blue_green, rollback
from infra.rebuild import replay_and_compare
from projections.card import card
from tests.support import Api

OPERATOR = Actor("op", "operator")


def _clients(api: Api, count: int) -> list[str]:
    ids = []
    for i in range(count):
        written = api.container.app.execute(
            [RegisterClient(kind="customer", form="person", name=f"Client {i}")], OPERATOR)
        ids.append(str(written.results[0].id))
    return ids


def test_reads_never_fail_nor_go_empty_during_a_rebuild_and_the_switch(any_api: Api) -> None:
    ids = _clients(any_api, 40)
    watched = ids[0]
    any_api.container.follower.wait_for(any_api.store_position(), 10)
    stop = threading.Event()
    failures: list[str] = []
    reads = [0]

    keyring = any_api.container.keyring

    def reader() -> None:
        while not stop.is_set():
            with any_api.container.engine.connect() as conn:
                found = card(conn, __import__("uuid").UUID(watched))
            reads[0] += 1
            name = None if found is None else keyring.reveal(found["profile"]["name"])
            if name != "Client 0":
                failures.append(repr(found))

    def writer() -> None:
        for i in range(15):
            any_api.container.app.execute([LogContact(
                client_id=ids[i], channel="phone", direction="inbound", topic=f"t{i}")],
                OPERATOR)

    threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
    for t in threads:
        t.start()
    try:
        switched = blue_green(any_api.container, "client_card")
    finally:
        threads[1].join(timeout=60)
        stop.set()
        threads[0].join(timeout=60)
    assert failures == [] and reads[0] > 0
    assert switched.position >= 40
    any_api.container.follower.wait_for(any_api.store_position(), 10)
    outcome = replay_and_compare(any_api.container, ["client_card"])[0]
    assert outcome.matches, outcome.difference


def test_rollback_restores_the_previous_copy_and_it_catches_up(any_api: Api) -> None:
    _clients(any_api, 5)
    any_api.container.follower.wait_for(any_api.store_position(), 10)
    switched = blue_green(any_api.container, "client_card")
    assert rollback(any_api.container, "client_card") == switched.previous_position
    any_api.container.follower.wait_for(any_api.store_position(), 10)
    assert replay_and_compare(any_api.container, ["client_card"])[0].matches
