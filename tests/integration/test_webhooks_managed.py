"""Webhook subscribers as a resource (issue 21.4): admin routes and `crm webhooks`; the secret
shown once and kept only wrapped by the master key (re-wrapped on rotation); a signed ping;
status, parked deliveries and re-sending them."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import cli
from consumers import webhooks
from consumers.dlq import RetryPolicy
from consumers.main import sealed_reader
from infra.crypto import Keyring, new_master_key, parse_master_key
from tests.integration.test_webhooks import (  # noqa: F401 (the receiver fixture)
    SECRET,
    Receiver,
    client_with_payments,
    receiver,
)
from tests.support import Api

URL = "https://billing.example.com/hooks/crm"


class Capture:
    """A transport that records what would be sent and answers `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers: dict[str, str], _timeout: float) -> int:
        self.sent.append((url, body, headers))
        return self.status


def signed_with(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    digest = hmac.new(secret.encode(), headers["X-CRM-Timestamp"].encode() + b"." + body,
                      hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-CRM-Signature"], "sha256=" + digest)


def stored_bytes(api: Api) -> bytes:
    """Every file of the SQLite databases (WAL included), or every row of PostgreSQL's tables
    that could hold a secret."""
    settings = api.container.settings
    if settings.is_sqlite:
        folder = settings.sqlite_path.parent
        return b"".join(p.read_bytes() for p in sorted(folder.iterdir())
                        if p.name.startswith(settings.sqlite_path.stem)
                        and not p.name.endswith(".key"))
    from sqlalchemy import text

    with api.container.engine.connect() as conn:
        tables = conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = "
                                   "current_schema()")).scalars().all()
        return b"".join(repr(conn.execute(text(f'SELECT * FROM "{t}"')).all()).encode()
                        for t in tables)


def test_webhooks_are_managed_by_admins_and_the_secret_is_shown_once(any_api: Api) -> None:
    api = any_api
    capture = Capture()
    api.client.app.state.services.webhook_transport = capture
    client_with_payments(api, ["10.00"])
    head = api.store_position()
    assert api.get("/v1/webhooks").status_code == 403  # operators may not
    created = api.post("/v1/webhooks", {"name": "billing", "url": URL,
                                        "event_types": ["PaymentReceived"]}, as_="admin")
    assert created.status_code == 201, created.text
    body = created.json()
    secret = body["secret"]
    assert len(secret) >= 32 and body["position"] == head  # from now on, by default
    assert body["event_types"] == ["PaymentReceived"] and body["parked"] == 0
    shown = api.ok("GET", "/v1/webhooks/billing", as_="admin")
    assert "secret" not in shown and secret not in str(shown)
    assert [w["name"] for w in api.ok("GET", "/v1/webhooks", as_="admin")["items"]] == [
        "billing"]
    assert secret.encode() not in stored_bytes(api)

    again = api.post("/v1/webhooks", {"name": "billing", "url": URL}, as_="admin")
    assert again.status_code == 409
    short = api.post("/v1/webhooks", {"name": "b2", "url": URL, "secret": "too short"},
                     as_="admin")
    assert short.status_code == 422 and short.json()["errors"][0]["field"] == "secret"
    unknown = api.post("/v1/webhooks", {"name": "b3", "url": URL, "event_types": ["Nope"]},
                       as_="admin")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "event_types"

    pinged = api.ok("POST", "/v1/webhooks/billing/ping", as_="admin")
    assert pinged["delivered"] is True
    url, sent, headers = capture.sent[-1]
    assert url == URL and signed_with(secret, sent, headers)
    assert b'"crm.webhook.ping.v1"' in sent

    changed = api.ok("PATCH", "/v1/webhooks/billing", {"new_secret": True,
                                                       "event_types": []}, as_="admin")
    assert changed["secret"] not in (None, secret) and changed["event_types"] == []
    api.ok("POST", "/v1/webhooks/billing/ping", as_="admin")
    assert signed_with(changed["secret"], capture.sent[-1][1], capture.sent[-1][2])
    assert changed["secret"].encode() not in stored_bytes(api)

    capture.status = 500
    assert api.ok("POST", "/v1/webhooks/billing/ping", as_="admin") | {"event_id": ""} == {
        "delivered": False, "event_id": "", "error": "HTTP 500"}

    assert api.request("DELETE", "/v1/webhooks/billing", as_="admin").status_code == 204
    assert api.get("/v1/webhooks/billing", as_="admin").status_code == 404
    assert api.container.keyring.secrets("webhook").get("billing") is None


def test_status_parked_deliveries_and_resending_them(any_api: Api,
                                                     receiver: Receiver) -> None:  # noqa: F811
    api = any_api
    api.ok("POST", "/v1/webhooks", {"name": "billing", "url": receiver.url, "secret": SECRET,
                                    "event_types": ["PaymentReceived"], "start_position": 0},
           as_="admin")
    receiver.plan = [500, 500]  # the first payment fails twice (the limit below): parked
    _client, paid = client_with_payments(api, ["10.00", "20.00"])
    dispatcher = webhooks.Dispatcher(api.container.engine, sealed_reader(api.container),
                                     secrets=api.container.keyring.secrets("webhook"),
                                     retry=RetryPolicy(attempts=2, first_delay=0.0,
                                                       max_delay=0.0))
    for _ in range(20):
        dispatcher.step()
        if webhooks.subscriber(api.container.engine, "billing").position >= paid[1]:
            break
    status = api.ok("GET", "/v1/webhooks/billing", as_="admin")
    assert status["parked"] == 1 and status["position"] == paid[1]
    assert status["last_delivery"]["position"] == paid[1] and status["failures"] == 0
    assert status["last_error"] == "HTTP 500"
    parked = api.ok("GET", "/v1/webhooks/billing/parked", as_="admin")["items"]
    assert [(p["position"], p["type"], p["error"]) for p in parked] == [
        (paid[0], "PaymentReceived", "HTTP 500")]

    resent = api.ok("POST", "/v1/webhooks/billing/parked/resend", as_="admin")
    assert resent == {"resent": [paid[0]], "still_failing": {}}
    ids = [r["id"] for r in receiver.delivered()]
    assert ids[-1] == parked[0]["event_id"] and len(ids) == 2  # the second, then the first
    assert api.ok("GET", "/v1/webhooks/billing", as_="admin")["parked"] == 0
    assert api.ok("GET", "/v1/webhooks/billing/parked", as_="admin")["items"] == []


def test_rotating_the_master_key_rewraps_webhook_secrets(any_api: Api) -> None:
    api = any_api
    created = api.ok("POST", "/v1/webhooks", {"name": "billing", "url": URL}, as_="admin")
    new = new_master_key()
    api.container.keyring.rewrap(parse_master_key(new))
    rotated = Keyring(api.container.engine, parse_master_key(new), lambda: datetime.now(UTC))
    assert rotated.secrets("webhook").get("billing") == created["secret"]


def test_a_secret_stored_in_clear_by_an_older_version_is_moved_into_the_keyring(
        api: Api) -> None:
    from sqlalchemy import insert

    webhooks.create(api.container.engine)
    with api.container.engine.begin() as conn:
        conn.execute(insert(webhooks.webhook_subscribers).values(
            name="old", url=URL, secret=SECRET, event_types="[]", position=0,
            created_at=datetime.now(UTC)))
    webhooks.create(api.container.engine, api.container.keyring.secrets("webhook"))
    assert api.container.keyring.secrets("webhook").get("old") == SECRET
    assert SECRET.encode() not in stored_bytes(api)


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [k for k in __import__("os").environ if k.startswith("CRM_")]:
        monkeypatch.delenv(name)
    return {"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"}


def test_crm_webhooks_add_list_update_remove(env: dict[str, str], tmp_path: Path) -> None:
    run = CliRunner()

    def crm(*args: str) -> Any:
        result = run.invoke(cli, ["webhooks", *args], env=env)
        return result

    added = crm("add", "billing", "--url", URL, "--type", "PaymentReceived", "--start", "0")
    assert added.exit_code == 0, added.output
    secret = added.stdout.strip().splitlines()[-1]
    assert len(secret) >= 32
    listed = crm("list")
    assert listed.exit_code == 0 and "billing\t" + URL in listed.stdout
    assert "types=PaymentReceived" in listed.stdout and secret not in listed.stdout
    assert crm("add", "billing", "--url", URL).exit_code == 1  # the name is taken
    updated = crm("update", "billing", "--all-types", "--new-secret")
    assert updated.exit_code == 0, updated.output
    assert "types=*" in updated.stdout and updated.stdout.strip().splitlines()[-1] != secret
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if not p.name.endswith(".key"))
    assert secret.encode() not in files
    assert updated.stdout.strip().splitlines()[-1].encode() not in files
    assert crm("remove", "billing").exit_code == 0
    assert "billing" not in crm("list").stdout
    assert crm("remove", "billing").exit_code == 1
