"""POST /v1/batch: many commands in one all-or-nothing write; errors name items.N."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest

from infra.bootstrap import build
from infra.settings import Settings
from tests.support import Api, store_count


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One store for the module: every test counts what it appends (ids are fresh uuids)."""
    built = build(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('batch')}/crm.db"))
    yield Api(built)
    built.close()


def item(command: str, **data: Any) -> dict[str, Any]:
    return {"command": command, "data": data}


def register(client_id: str) -> dict[str, Any]:
    return item("register_client", id=client_id, kind="supplier", form="organisation",
                name="Parts Ltd")


def call(client_id: str, topic: str = "first order", **extra: Any) -> dict[str, Any]:
    return item("log_contact", **{"client_id": client_id, "channel": "phone",
                                  "direction": "outbound", "topic": topic, **extra})


def problem_fields(response: Any) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json"
    return [e["field"] for e in response.json().get("errors", [])]


def test_a_client_registered_with_its_own_id_gets_a_contact_in_the_same_request(
        api: Api) -> None:
    client_id = str(uuid4())
    before = api.store_position()
    answer = api.ok("POST", "/v1/batch", {"items": [
        register(client_id), call(client_id, occurred_at="2026-11-20T10:00:00+01:00")]})
    assert [(r["id"] == client_id, r["version"]) for r in answer["results"]] == [
        (True, 1), (False, 1)]
    assert answer["position"] == before + 2
    assert [r["position"] for r in answer["results"]] == [before + 1, before + 2]
    history = api.ok("GET", f"/v1/clients/{client_id}/events",
                     params={"min_position": answer["position"]})
    assert [(e["type"], e["stream_id"]) for e in history["items"]] == [
        ("ClientRegistered", client_id), ("ContactLogged", answer["results"][1]["id"])]
    card = api.ok("GET", f"/v1/clients/{client_id}/card",
                  params={"min_position": answer["position"]})
    assert card["last_contact"]["topic"] == "first order"


def test_an_invalid_third_item_writes_nothing_and_is_named(api: Api) -> None:
    before = store_count(api.container)
    client_id = str(uuid4())
    response = api.post("/v1/batch", {"items": [
        register(client_id), call(client_id), call(client_id, channel="pigeon")]})
    assert response.status_code == 422
    assert problem_fields(response) == ["items.2.data.channel"]
    assert store_count(api.container) == before


def test_a_third_item_naming_an_unknown_client_writes_nothing(api: Api) -> None:
    before = store_count(api.container)
    client_id = str(uuid4())
    response = api.post("/v1/batch", {"items": [
        register(client_id), call(client_id), call(str(uuid4()))]})
    assert response.status_code == 422
    assert problem_fields(response) == ["items.2.data.client_id"]
    assert store_count(api.container) == before


def test_a_third_item_acting_on_an_unknown_aggregate_names_its_field(api: Api) -> None:
    before = store_count(api.container)
    client_id = str(uuid4())
    response = api.post("/v1/batch", {"items": [
        register(client_id), call(client_id), item("fulfil_agreement", agreement_id=str(uuid4()))]})
    assert response.status_code == 422
    assert problem_fields(response) == ["items.2.data.agreement_id"]
    assert store_count(api.container) == before


def test_a_state_conflict_in_a_later_item_names_the_item_and_writes_nothing(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Ann"})["id"]
    situation = api.ok("POST", "/v1/complaints", {"client_id": client, "text": "late"}
                       )["links"]["situation_id"]
    before = store_count(api.container)
    response = api.post("/v1/batch", {"items": [
        call(client, topic="apology", situation_id=situation),
        item("resolve_situation", situation_id=situation, resolution="apologised"),
        item("resolve_situation", situation_id=situation, resolution="again")]})
    assert response.status_code == 409
    assert problem_fields(response) == ["items.2"]
    assert store_count(api.container) == before


def test_an_unknown_command_is_named(api: Api) -> None:
    before = store_count(api.container)
    response = api.post("/v1/batch", {"items": [register(str(uuid4())),
                                                item("teleport_client", to="mars")]})
    assert response.status_code == 422
    assert problem_fields(response) == ["items.1.command"]
    assert store_count(api.container) == before


def test_an_empty_batch_is_refused(api: Api) -> None:
    response = api.post("/v1/batch", {"items": []})
    assert response.status_code == 422
    assert problem_fields(response) == ["items"]


def test_a_stale_if_match_in_a_batch_writes_nothing(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Ann"})["id"]
    before = store_count(api.container)
    response = api.post("/v1/batch", {"items": [
        call(client),
        {**item("note_interest", client_id=client, text="fleet"), "if_match": 7}]})
    assert response.status_code == 409
    assert store_count(api.container) == before


def test_a_keyed_batch_retry_returns_the_first_answer(api: Api) -> None:
    client_id = str(uuid4())
    body = {"items": [register(client_id), call(client_id)]}
    first = api.post("/v1/batch", body, headers={"Idempotency-Key": "import-7"})
    count = store_count(api.container)
    again = api.post("/v1/batch", body, headers={"Idempotency-Key": "import-7"})
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert store_count(api.container) == count
    assert first.json()["position"] == api.store_position() - 1  # then the key's record


def test_only_writers_may_send_a_batch(api: Api) -> None:
    before = store_count(api.container)
    for role in ("analyst", "auditor", "manager"):
        response = api.post("/v1/batch", {"items": [register(str(uuid4()))]}, as_=role)
        assert response.status_code == 403
    assert store_count(api.container) == before


def test_a_batch_grants_nothing_its_routes_refuse(api: Api) -> None:
    before = store_count(api.container)
    response = api.post("/v1/batch", {"items": [
        {"command": "register_client",
         "data": {"kind": "customer", "form": "person", "name": "ok"}},
        {"command": "set_calendar",
         "data": {"calendar": "default", "timezone": "UTC", "hours": {}}}]}, as_="operator")
    assert response.status_code == 403
    assert response.json()["errors"][0]["field"] == "items.1.command"
    assert store_count(api.container) == before
    allowed = api.post("/v1/batch", {"items": [
        {"command": "set_calendar",
         "data": {"calendar": "default", "timezone": "UTC", "hours": {}}}]}, as_="admin")
    assert allowed.status_code == 200
