"""Idempotency-Key retries and optimistic concurrency (If-Match), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from domain.values import Role
from tests.support import Api, store_count

ANN = {"kind": "customer", "form": "person", "name": "Ann Lee"}


def keyed(api: Api, path: str, body: dict[str, Any], key: str, **kwargs: Any) -> Any:
    return api.request("POST", path, json=body, headers={"Idempotency-Key": key}, **kwargs)


def race(count: int, action: Callable[[], Any]) -> list[Any]:
    """Run `action` in `count` threads released together; their results (or errors)."""
    barrier = threading.Barrier(count, timeout=30)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = action()
        except Exception as error:  # reported by the assertion below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    return results


def test_a_keyed_retry_returns_the_first_answer_and_appends_nothing(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", ANN)["id"]
    complaint = {"client_id": client, "text": "car returned dirty"}
    first = keyed(any_api, "/v1/complaints", complaint, "retry-1")
    count = store_count(any_api.container)
    again = keyed(any_api, "/v1/complaints", complaint, "retry-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert set(first.json()["links"]) == {"situation_id"}
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    assert store_count(any_api.container) == count
    # Complaint, situation and the key's record: nothing more after the retry.
    assert count == 1 + 3


def test_the_same_key_with_another_body_is_a_conflict(any_api: Api) -> None:
    assert keyed(any_api, "/v1/clients", ANN, "k-1").status_code == 201
    count = store_count(any_api.container)
    other = keyed(any_api, "/v1/clients", {**ANN, "name": "Bob Stone"}, "k-1")
    assert other.status_code == 409
    assert other.headers["content-type"] == "application/problem+json"
    assert "Idempotency-Key" in other.json()["detail"]
    assert store_count(any_api.container) == count


def test_keys_belong_to_their_user(any_api: Api) -> None:
    """Two users choosing the same key do not see each other's answers."""
    mine = keyed(any_api, "/v1/clients", ANN, "same-key")
    other_key = any_api.container.keys.create("olga", Role.OPERATOR, datetime.now(UTC))
    theirs = any_api.request("POST", "/v1/clients", json=ANN, as_=None, headers={
        "Idempotency-Key": "same-key", "Authorization": f"Bearer {other_key}"})
    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.json()["id"] != theirs.json()["id"]
    assert "idempotent-replayed" not in theirs.headers


def test_racing_retries_with_one_key_write_once(any_api: Api) -> None:
    answers = race(4, lambda: keyed(any_api, "/v1/clients", ANN, "race-1"))
    assert [a.status_code for a in answers] == [201] * 4, answers
    assert len({a.json()["id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
    assert store_count(any_api.container) == 2  # one ClientRegistered, one key record


def test_a_stale_if_match_is_a_conflict_and_the_current_one_succeeds(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", ANN)
    updated = any_api.request("PATCH", f"/v1/clients/{client['id']}",
                              json={"address": "Main St 1"}, headers={"If-Match": '"1"'})
    assert updated.status_code == 200
    assert (updated.json()["version"], updated.headers["etag"]) == (2, '"2"')
    count = store_count(any_api.container)
    stale = any_api.request("PATCH", f"/v1/clients/{client['id']}",
                            json={"address": "Elm St 2"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.headers["content-type"] == "application/problem+json"
    assert stale.json()["current_version"] == 2
    assert store_count(any_api.container) == count
    current = any_api.request("PATCH", f"/v1/clients/{client['id']}",
                              json={"address": "Elm St 2"}, headers={"If-Match": 'W/"2"'})
    assert (current.status_code, current.json()["version"]) == (200, 3)


def test_two_writers_with_the_same_if_match_one_wins(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", ANN)["id"]
    answers = race(2, lambda: any_api.request(
        "POST", f"/v1/clients/{client}/interests", json={"text": "fleet cars"},
        headers={"If-Match": "1"}))
    assert sorted(a.status_code for a in answers) == [201, 409], answers
    assert store_count(any_api.container) == 2


def test_writers_without_if_match_both_land_in_order(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", ANN)["id"]
    answers = race(2, lambda: any_api.request(
        "POST", f"/v1/clients/{client}/interests", json={"text": "fleet cars"}))
    assert sorted((a.status_code, a.json()["version"]) for a in answers) == [(201, 2), (201, 3)]
    assert store_count(any_api.container) == 3
