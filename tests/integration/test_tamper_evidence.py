"""Tampering with stored events directly in the database makes `verify` fail and name the event."""

from __future__ import annotations

from typing import Any

import pytest

from commands.activity import LogContact
from commands.application import Actor
from commands.clients import RegisterClient
from infra.bootstrap import Container
from infra.chain import verify_store

OPERATOR = Actor("op", "operator")


def _history(container: Container, clients: int = 4) -> None:
    for i in range(clients):
        written = container.app.execute(
            [RegisterClient(kind="customer", form="person", name=f"Client {i}")], OPERATOR)
        client_id = written.results[0].id
        for topic in ("first call", "second call"):
            container.app.execute([LogContact(client_id=client_id, channel="phone",
                                              direction="inbound", topic=topic)], OPERATOR)


def _sql(container: Container, statement: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """Run raw SQL against the event store, bypassing the application (the attacker's view)."""
    recorder: Any = container.app.recorder
    sqlite = container.settings.is_sqlite
    table = recorder.events_table_name
    statement = statement.replace("{events}", table).replace(
        "{pos}", "rowid" if sqlite else "notification_id")
    if not sqlite:
        statement = statement.replace("?", "%s")
    with recorder.datastore.transaction(commit=True) as cursor:
        cursor.execute(statement, params)
        try:
            return list(cursor.fetchall())
        except Exception:
            return []


def test_an_untouched_store_verifies(any_container: Container) -> None:
    _history(any_container)
    verdict = verify_store(any_container.app)
    assert verdict.ok, verdict
    assert verdict.events == 12


def test_altered_bytes_are_named(any_container: Container) -> None:
    _history(any_container)
    _sql(any_container, "UPDATE {events} SET state = ? WHERE {pos} = 5",
         (b'{"topic":"forged"}',))
    verdict = verify_store(any_container.app)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "altered", 5)


def test_a_removed_event_is_named(any_container: Container) -> None:
    _history(any_container)
    _sql(any_container, "DELETE FROM {events} WHERE {pos} = 7")
    verdict = verify_store(any_container.app)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "removed", 7)


def test_a_removed_event_and_its_hash_still_break_the_chain(any_container: Container) -> None:
    _history(any_container)
    _sql(any_container, "DELETE FROM {events} WHERE {pos} = 7")
    _sql(any_container, "DELETE FROM crm_event_hashes WHERE position = 7")
    verdict = verify_store(any_container.app)
    assert not verdict.ok
    assert verdict.problem == "removed"
    assert verdict.position == 8  # the first event whose chain no longer links


def test_an_inserted_event_is_named(any_container: Container) -> None:
    _history(any_container)
    rows = _sql(any_container, "SELECT originator_id, topic, state FROM {events} "
                               "WHERE {pos} = 2")
    row = rows[0]
    stream, topic, state = (row[0], row[1], row[2]) if any_container.settings.is_sqlite \
        else (row["originator_id"], row["topic"], row["state"])
    _sql(any_container, "INSERT INTO {events} (originator_id, originator_version, topic, state) "
                        "VALUES (?, 99, ?, ?)", (stream, topic, state))
    verdict = verify_store(any_container.app)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "inserted", 13)


def test_two_swapped_events_are_named(any_container: Container) -> None:
    _history(any_container)
    pick = "SELECT topic, state FROM {events} WHERE {pos} = ?"
    a, b = _sql(any_container, pick, (3,))[0], _sql(any_container, pick, (6,))[0]
    a, b = (tuple(a), tuple(b)) if any_container.settings.is_sqlite else \
        ((a["topic"], a["state"]), (b["topic"], b["state"]))
    _sql(any_container, "UPDATE {events} SET topic = ?, state = ? WHERE {pos} = 3", b)
    _sql(any_container, "UPDATE {events} SET topic = ?, state = ? WHERE {pos} = 6", a)
    verdict = verify_store(any_container.app)
    assert (verdict.ok, verdict.position) == (False, 3)


@pytest.mark.parametrize("position", [1, 12])
def test_the_first_and_last_events_are_covered(any_container: Container, position: int) -> None:
    _history(any_container)
    _sql(any_container, "UPDATE {events} SET state = ? WHERE {pos} = ?", (b"{}", position))
    verdict = verify_store(any_container.app)
    assert (verdict.ok, verdict.problem, verdict.position) == (False, "altered", position)
