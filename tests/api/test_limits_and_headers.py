"""Input limits, security headers, CORS and the per-key rate limit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from api.middleware import RateLimiter
from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.support import Api, store_count


def test_a_body_over_the_limit_gets_413_and_writes_nothing(api: Api) -> None:
    before = store_count(api.container)
    huge = {"kind": "customer", "form": "person", "name": "x", "tags": ["t" * 40] * 40_000}
    response = api.post("/v1/clients", huge)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert store_count(api.container) == before


def test_a_streamed_body_without_length_is_also_limited(api: Api) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"kind":"customer","form":"person","name":"'
        for _ in range(2000):
            yield b"x" * 1024
        yield b'"}'

    response = api.client.post("/v1/clients", content=chunks(),
                               headers={**api.headers("operator"),
                                        "content-type": "application/json"})
    assert response.status_code == 413


def test_too_long_strings_and_pages_are_refused_with_the_field_named(api: Api) -> None:
    response = api.post("/v1/clients", {"kind": "customer", "form": "person", "name": "n" * 201})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "name"
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "A"})
    page = api.get(f"/v1/clients/{client['id']}/events", params={"limit": 100_000})
    assert page.status_code == 422


def test_deeply_nested_json_is_a_client_error(api: Api) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    response = api.client.post("/v1/clients", content=deep, headers={
        **api.headers("operator"), "content-type": "application/json"})
    assert response.status_code in (400, 413, 422)


def test_a_batch_over_1000_items_is_refused(api: Api) -> None:
    item = {"command": "register_client",
            "data": {"kind": "customer", "form": "person", "name": "n"}}
    response = api.post("/v1/batch", {"items": [item] * 1001})
    assert response.status_code == 422


def test_security_headers_are_set_on_every_answer(api: Api) -> None:
    for response in (api.get("/healthz", as_=None), api.get("/v1/audit/verify", as_=None)):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in response.headers["content-security-policy"]


def test_cross_origin_requests_are_refused_unless_configured(api: Api, tmp_path: Path) -> None:
    preflight = {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    refused = api.client.options("/v1/clients", headers=preflight)
    assert "access-control-allow-origin" not in refused.headers
    container = build(Settings(database_url=f"sqlite:///{tmp_path}/other.db",
                               cors_origins="https://desk.example"))
    try:
        allowed = Api(container).client.options("/v1/clients", headers={
            "Origin": "https://desk.example", "Access-Control-Request-Method": "POST"})
        assert allowed.headers["access-control-allow-origin"] == "https://desk.example"
    finally:
        container.close()


@pytest.fixture
def limited(tmp_path: Path) -> Iterator[Container]:
    container = build(Settings(database_url=f"sqlite:///{tmp_path}/crm.db",
                               rate_limit_per_minute=60))
    yield container
    container.close()


def test_the_rate_limit_answers_429_with_retry_after_per_key(limited: Container) -> None:
    api = Api(limited)
    statuses = [api.get("/v1/audit/receipts", as_="auditor").status_code for _ in range(15)]
    assert statuses[:10] == [200] * 10 and statuses[-1] == 429
    last = api.get("/v1/audit/receipts", as_="auditor")
    assert int(last.headers["retry-after"]) >= 1
    assert api.get("/v1/audit/receipts", as_="admin").status_code == 200  # another key


def test_the_bucket_refills_with_time() -> None:
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])
    assert all(limiter.allow("k") == 0 for _ in range(10))
    assert limiter.allow("k") > 0
    now[0] += 1.0
    assert limiter.allow("k") == 0


def test_the_middleware_is_plain_asgi_and_sets_each_header_once(api: Api) -> None:
    """Issue 16.4: no BaseHTTPMiddleware (a task and a body queue per request) in the stack;
    each header once; the interactive docs get no data-only CSP."""
    from starlette.middleware.base import BaseHTTPMiddleware

    app = api.client.app
    assert all(m.cls is not BaseHTTPMiddleware for m in app.user_middleware)
    docs = api.client.get("/docs")
    assert docs.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in docs.headers
    card = api.get("/v1/audit/verify", as_="admin")
    for name in ("cache-control", "x-frame-options", "content-security-policy"):
        assert len(card.headers.get_list(name)) == 1, name
