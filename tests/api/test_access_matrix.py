"""Every route x every role (and anonymous, and a revoked key) exactly as docs/access.md says."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from domain.values import Role
from infra.bootstrap import build
from infra.settings import Settings
from tests.support import Api

TABLE = Path(__file__).resolve().parents[2] / "docs" / "access.md"
ROW = re.compile(r"^\| (GET|POST|PUT|PATCH|DELETE) \| `([^`]+)` \| ([^|]+) \|$")
STREAMS = {"/v1/alerts/stream"}  # never ends by itself: checked with a refused role only


def documented() -> dict[tuple[str, str], set[str]]:
    rows = {}
    for line in TABLE.read_text().splitlines():
        match = ROW.match(line.strip())
        if match:
            method, path, roles = match.groups()
            rows[(method, path)] = {r.strip() for r in roles.split(",")}
    return rows


def concrete(path: str) -> str:
    def value(m: re.Match[str]) -> str:
        name = m.group(1)
        return {"calendar": "default", "situation_kind": "complaint", "month": "2026-01",
                "event_type": "ClientRegistered",
                "section": "overdue_planned_contacts"}.get(name, str(uuid.uuid4()))
    return re.sub(r"{(\w+)}", value, path)


def test_every_route_is_in_the_table(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(documented())


@pytest.fixture(scope="module")
def shared_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One store for the whole matrix: refused requests write nothing, allowed ones with an
    empty body are rejected as invalid, so the routes do not disturb each other."""
    folder = tmp_path_factory.mktemp("matrix")
    container = build(Settings(database_url=f"sqlite:///{folder}/crm.db",
                               rate_limit_per_minute=0))
    yield Api(container)
    container.close()


@pytest.mark.parametrize(("method", "path"), sorted(documented()))
def test_route_answers_each_role_as_documented(shared_api: Api, method: str, path: str) -> None:
    api = shared_api
    allowed = documented()[(method, path)]
    url = concrete(path)
    if allowed == {"anonymous"}:
        assert api.request(method, url, as_=None).status_code not in (401, 403)
        return
    assert api.request(method, url, as_=None, json={}).status_code == 401
    for role in Role:
        if path in STREAMS and str(role) in allowed:
            continue
        status = api.request(method, url, as_=str(role), json={}).status_code
        if str(role) in allowed:
            assert status not in (401, 403), (role, status)
        else:
            assert status == 403, (role, status)


def test_a_revoked_key_is_refused_at_once(api: Api) -> None:
    assert api.get("/v1/reports/segments", as_="analyst").status_code == 200
    key_id = api.keys[Role.ANALYST].split("_")[1]
    assert api.container.keys.revoke(key_id, api.container.clock())
    assert api.get("/v1/reports/segments", as_="analyst").status_code == 401


def test_no_key_appears_in_the_logs(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    api.post("/v1/clients", {"kind": "customer", "form": "person", "name": "L"})
    api.get("/v1/clients", headers={"Authorization": "Bearer crm_nope_wrongsecret"}, as_=None)
    text = caplog.text
    for secret in [*(k.split("_", 2)[2] for k in api.keys.values()), "wrongsecret"]:
        assert secret not in text
