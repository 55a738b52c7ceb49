"""The console without a browser: sessions, CSRF, roles, and what it ships (tests/browser
drives it in chromium)."""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterator
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from api.console import reads
from domain.values import Role
from tests.api.test_access_matrix import documented
from tests.support import Api

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "api" / "console"


def sign_in(api: Api, role: Role) -> str:
    """Sign in as `role`; the session cookie's Set-Cookie header."""
    api.client.cookies.clear()
    form = api.client.get("/console/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token is not None
    done = api.client.post("/console/sign-in", data={
        "csrf": token.group(1), "key": api.keys[role], "next": "/console/payments"},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/console/payments"
    return next(c for c in done.headers.get_list("set-cookie") if c.startswith("crm_console="))


def csrf_of(api: Api, path: str) -> str:
    page = api.client.get(path)
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None, page.text[:500]
    return token.group(1)


def test_the_session_cookie_is_httponly_strict_and_holds_no_key(api: Api) -> None:
    cookie = sign_in(api, Role.MANAGER)
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/console" in cookie
    assert api.keys[Role.MANAGER] not in cookie
    page = api.client.get("/console/payments")
    assert page.status_code == 200 and "manager-user" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]


def test_sign_in_needs_its_form_token_and_a_valid_key(api: Api) -> None:
    api.client.cookies.clear()
    refused = api.client.post("/console/sign-in", data={"csrf": "x", "key": api.keys[Role.ADMIN]},
                              follow_redirects=False)
    assert refused.status_code == 403 and "crm_console=" not in refused.headers.get(
        "set-cookie", "")
    token = csrf_of(api, "/console/sign-in")
    wrong = api.client.post("/console/sign-in", data={"csrf": token, "key": "crm_x_nothing"},
                            follow_redirects=False)
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text


def test_pages_need_a_session(api: Api) -> None:
    api.client.cookies.clear()
    answer = api.client.get("/console/clients?q=a", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fclients%3Fq%3Da"
    htmx = api.client.get("/console/payments", headers={"HX-Request": "true"},
                          follow_redirects=False)
    assert htmx.status_code == 401 and htmx.headers["HX-Redirect"].startswith("/console/sign-in")


def test_sign_out_ends_the_session_and_a_revoked_key_ends_it_at_once(api: Api) -> None:
    sign_in(api, Role.OPERATOR)
    token = csrf_of(api, "/console/satisfaction")
    assert api.client.post("/console/sign-out", data={}).status_code == 403  # no token
    assert api.client.get("/console/satisfaction").status_code == 200
    out = api.client.post("/console/sign-out", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    assert api.client.get("/console/satisfaction", follow_redirects=False).status_code == 303

    sign_in(api, Role.ANALYST)
    assert api.client.get("/console/satisfaction").status_code == 200
    assert api.container.keys.revoke(api.keys[Role.ANALYST].split("_")[1],
                                     api.container.clock())
    assert api.client.get("/console/satisfaction", follow_redirects=False).status_code == 303


def test_a_post_without_the_sessions_token_changes_nothing(api: Api) -> None:
    sign_in(api, Role.OPERATOR)
    before = api.store_position()
    answer = api.client.post("/console/register/00000000-0000-0000-0000-000000000001",
                             data={"csrf": "forged", "form_id": "f", "outcome": "completed"})
    assert answer.status_code == 403
    assert api.store_position() == before


@pytest.mark.parametrize(("role", "path", "status"), [
    (Role.ANALYST, "/console/clients", 403),
    (Role.ANALYST, "/console/register", 403),
    (Role.ANALYST, "/console/audit", 403),
    (Role.ANALYST, "/console/alerts/stream", 403),
    (Role.ANALYST, "/console/satisfaction", 200),
    (Role.ANALYST, "/console/reactions", 200),
    (Role.MANAGER, "/console/audit", 403),
    (Role.MANAGER, "/console/register", 200),
    (Role.AUDITOR, "/console/audit", 200),
    (Role.AUDITOR, "/console/alerts/stream", 403),
])
def test_each_page_answers_each_role_as_the_api_does(api: Api, role: Role, path: str,
                                                     status: int) -> None:
    sign_in(api, role)
    assert api.client.get(path).status_code == status


def test_the_console_is_not_part_of_the_api_description(api: Api) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    assert not [p for p in paths if p.startswith("/console")]


def test_every_read_is_the_api_routes_own_function_with_its_roles(api: Api) -> None:
    """What a page shows is what the API answers: the same function, the same roles."""
    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            nested = getattr(route, "original_router", None) or getattr(route, "router", None)
            if nested is not None and hasattr(nested, "routes"):
                yield from walk(nested.routes)
            else:
                yield route

    served = list(walk(api.client.app.routes))  # type: ignore[attr-defined]
    table = documented()
    for name, read in reads.READS.items():
        assert any(getattr(route, "endpoint", None) is read.route
                   and read.path.endswith(route.path) and "GET" in route.methods
                   for route in served), name
        assert {str(r) for r in read.roles} == table[("GET", read.path)], name


def test_vendored_files_are_the_published_ones_named_in_the_notice() -> None:
    vendor = CONSOLE / "static" / "vendor"
    notice = (vendor / "NOTICE.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|.*`([0-9a-f]{64})` \|$",
                      notice, flags=re.M)
    scripts = sorted(p.name for p in vendor.glob("*.js"))
    assert sorted(r[0] for r in rows) == scripts
    for name, _library, version, licence, digest in rows:
        data = (vendor / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, name
        assert version.strip() in data[:2000].decode("utf-8", "replace") or name == "htmx.min.js"
        licence_file = re.search(r"`(LICENSE-[^`]+)`", licence)
        assert licence_file and (vendor / licence_file.group(1)).is_file()


def test_a_non_editable_install_carries_every_template_and_static_file() -> None:
    """pyproject's package-data globs match every file the console serves."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["api.console"]
    shipped = [p.relative_to(CONSOLE).as_posix() for folder in ("templates", "static")
               for p in (CONSOLE / folder).rglob("*") if p.is_file()
               and "__pycache__" not in p.parts]
    assert len(shipped) > 15
    missing = [f for f in shipped if not any(fnmatch(f, g) and f.count("/") == g.count("/")
                                             for g in globs)]
    assert not missing, missing


def test_every_form_that_changes_something_carries_the_token_and_no_read_form_does() -> None:
    """Posting forms carry the session's CSRF token; search and filter forms are reads (GET) and
    carry none, so the token never lands in a URL, a log line or a Referer header
    (docs/decisions.md, "Console"). Every route of the console that is not a POST only reads."""
    forms = [(path.name, m.group(1).lower(), m.group(0), body)
             for path in sorted((CONSOLE / "templates").glob("*.html"))
             for m, body in ((m, path.read_text()[m.end():].split("</form>", 1)[0])
                             for m in re.finditer(r'<form[^>]*method="(get|post)"[^>]*>',
                                                  path.read_text()))]
    posting = [(name, body) for name, method, _, body in forms if method == "post"]
    reading = [(name, body) for name, method, _, body in forms if method == "get"]
    assert len(posting) >= 3 and len(reading) >= 5
    assert [n for n, body in posting if 'name="csrf"' not in body] == []
    assert [n for n, body in reading if "csrf" in body] == []
    from api.console.pages import router
    writes = sorted(r.path for r in router.routes if "POST" in getattr(r, "methods", ()))
    assert writes == ["/register/{work_order_id}", "/sign-in", "/sign-out"]
