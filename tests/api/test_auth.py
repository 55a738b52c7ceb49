"""Authentication and roles (§8): no anonymous route but health, roles enforced, keys hashed."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.routers.writes import WRITES
from domain.values import Role
from infra.bootstrap import build
from infra.keys import api_keys
from infra.settings import Settings
from tests.support import Api, store_count

SAMPLE = {"month": "2026-11", "calendar": "default", "situation_kind": "complaint"}


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app for the refusal tests: nothing is ever written through it."""
    built = build(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('auth')}/crm.db"))
    yield Api(built)
    built.close()


def routes(api: Api) -> list[tuple[str, str]]:
    """(method, concrete path) of every route the OpenAPI document describes (that is every
    route: /docs and /openapi.json themselves describe the API and hold no data)."""
    found = []
    for template, operations in api.client.get("/openapi.json").json()["paths"].items():
        path = re.sub(r"{(\w+)}", lambda m: SAMPLE.get(m.group(1), str(uuid4())), template)
        found.extend((method.upper(), path) for method in sorted(operations)
                     if method in ("get", "post", "put", "patch", "delete"))
    return found


def call(api: Api, method: str, path: str, as_: str | None,
         headers: dict[str, str] | None = None) -> Any:
    body = {} if method in ("POST", "PUT", "PATCH", "DELETE") else None
    return api.request(method, path, as_=as_, json=body, headers=headers)


def test_every_route_but_healthz_refuses_anonymous_calls(refusing: Api) -> None:
    api = refusing
    served = routes(api)
    assert ("GET", "/healthz") in served and len(served) > len(WRITES)
    wrong = []
    for method, path in served:
        response = call(api, method, path, as_=None)
        expected = 200 if path == "/healthz" else 401
        if response.status_code != expected:
            wrong.append(f"{method} {path}: {response.status_code}")
        elif expected == 401 and (
                response.headers["content-type"] != "application/problem+json"
                or response.headers.get("www-authenticate") != "Bearer"):
            wrong.append(f"{method} {path}: {response.headers}")
    assert not wrong, "\n".join(wrong)
    assert store_count(api.container) == 0


@pytest.mark.parametrize("token", ["nonsense", "crm_nokey_nosecret", "crm__x", ""])
def test_an_unknown_or_malformed_key_is_refused(refusing: Api, token: str) -> None:
    api = refusing
    response = api.request("POST", "/v1/clients", as_=None, headers={
        "Authorization": f"Bearer {token}"}, json={"kind": "customer", "form": "person",
                                                   "name": "Ann"})
    assert response.status_code == 401
    assert store_count(api.container) == 0


def test_a_key_with_the_right_id_and_a_wrong_secret_is_refused(refusing: Api) -> None:
    api = refusing
    key_id = api.keys[Role.OPERATOR].split("_")[1]
    response = api.request("GET", f"/v1/clients/{uuid4()}/events", as_=None,
                           headers={"X-Api-Key": f"crm_{key_id}_guessed"})
    assert response.status_code == 401


@pytest.mark.parametrize("spec", WRITES, ids=lambda w: f"{w.method} {w.path}")
def test_write_routes_refuse_roles_not_allowed_to_write(refusing: Api, spec: Any) -> None:
    api = refusing
    path = "/v1" + re.sub(r"{(\w+)}", lambda m: SAMPLE.get(m.group(1), str(uuid4())),
                          spec.path)
    refused = [r for r in Role if r not in spec.roles]
    assert Role.ANALYST in refused and Role.AUDITOR in refused and Role.MANAGER in refused
    for role in refused:
        response = call(api, spec.method, path, as_=str(role))
        assert (role, response.status_code) == (role, 403), response.text
        assert response.headers["content-type"] == "application/problem+json"
    assert store_count(api.container) == 0


def test_operators_may_not_use_admin_routes(api: Api) -> None:
    admin_only = [w for w in WRITES if w.roles == (Role.ADMIN,)]
    assert {w.path for w in admin_only} >= {"/specialists", "/survey-templates",
                                             "/clients/{client_id}/erase"}
    response = api.request("POST", "/v1/specialists", as_="operator", json={"name": "Sam"})
    assert response.status_code == 403
    assert api.request("POST", "/v1/specialists", as_="admin",
                       json={"name": "Sam"}).status_code == 201


def test_personal_reads_refuse_the_analyst(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Ann Lee"})
    for path in (f"/v1/clients/{client['id']}/card", f"/v1/clients/{client['id']}/events"):
        assert api.get(path, as_="analyst").status_code == 403
        assert api.get(path, as_="auditor", params={
            "min_position": client["position"]}).status_code == 200


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    token = api.container.keys.create("temp", Role.OPERATOR, datetime.now(UTC))
    headers = {"Authorization": f"Bearer {token}"}
    body = {"kind": "customer", "form": "person", "name": "Ann"}
    assert api.request("POST", "/v1/clients", as_=None, headers=headers,
                       json=body).status_code == 201
    assert api.container.keys.revoke(token.split("_")[1], datetime.now(UTC)) is True
    response = api.request("POST", "/v1/clients", as_=None, headers=headers, json=body)
    assert response.status_code == 401
    assert store_count(api.container) == 1


def test_keys_are_stored_hashed_never_in_clear(api: Api) -> None:
    with api.container.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(api_keys))]
    stored = repr(rows)
    assert len(rows) == len(Role)
    for token in api.keys.values():
        _crm, key_id, secret = token.split("_", 2)
        assert token not in stored and secret not in stored
        row = next(r for r in rows if r["key_id"] == key_id)
        assert row["secret_sha256"] == hashlib.sha256(secret.encode()).hexdigest()


def test_the_bootstrap_admin_key_works_once_no_admin_exists(tmp_path: Path) -> None:
    token = "crm_boot_" + "s3cr3t" * 5
    url = f"sqlite:///{tmp_path}/crm.db"
    first = build(Settings(database_url=url, bootstrap_admin_key=token))
    try:
        client = TestClient(create_app(container=first), raise_server_exceptions=False)
        answer = client.post("/v1/specialists", json={"name": "Sam"},
                             headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 201, answer.text
        stored = first.app.events.get(UUID(answer.json()["id"]))
        assert [(e.actor, e.actor_role) for e in stored] == [("bootstrap-admin", "admin")]
    finally:
        first.close()
    # An admin exists now: another bootstrap key given later is not installed.
    other = "crm_later_" + "x" * 30
    second = build(Settings(database_url=url, bootstrap_admin_key=other))
    try:
        client = TestClient(create_app(container=second), raise_server_exceptions=False)
        assert client.post("/v1/specialists", json={"name": "Kim"}, headers={
            "Authorization": f"Bearer {other}"}).status_code == 401
        assert client.post("/v1/specialists", json={"name": "Kim"}, headers={
            "Authorization": f"Bearer {token}"}).status_code == 201
    finally:
        second.close()


def test_every_event_records_the_user_whose_key_wrote_it(api: Api) -> None:
    now = datetime.now(UTC)
    alice = api.container.keys.create("alice", Role.OPERATOR, now)
    bob = api.container.keys.create("bob", Role.ADMIN, now)
    created = api.request("POST", "/v1/clients", as_=None, json={
        "kind": "customer", "form": "person", "name": "Ann"},
        headers={"Authorization": f"Bearer {alice}"}).json()
    erased = api.request("POST", f"/v1/clients/{created['id']}/erase", as_=None,
                         json={"reason": "request"},
                         headers={"Authorization": f"Bearer {bob}"}).json()
    history = api.ok("GET", f"/v1/clients/{created['id']}/events",
                     params={"min_position": erased["position"]})
    assert [(e["type"], e["actor"]) for e in history["items"]] == [
        ("ClientRegistered", {"user": "alice", "role": "operator"}),
        ("ClientErased", {"user": "bob", "role": "admin"})]
