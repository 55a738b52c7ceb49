"""The client data keys live beside the read models (on SQLite in the `.read.db` file, which
looks disposable). A start that finds a new, empty key store beside an event store holding
events refuses, names where the keys belong, and keeps refusing until they are back or the
loss is accepted: going on would make new keys for new writes and leave every earlier sealed
value unreadable (a card read then failed with InvalidTag)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from infra.bootstrap import build
from infra.crypto import KeyStoreMissing
from infra.eventstore import read_model_url
from infra.settings import Settings
from tests.support import Api

CLIENT = {"kind": "customer", "form": "person", "name": "Ann Lee", "phones": ["+15551234567"]}


def _write_a_client(settings: Settings) -> str:
    container = build(settings)
    try:
        return str(Api(container).ok("POST", "/v1/clients", CLIENT)["id"])
    finally:
        container.close()


def _drop_key_store(settings: Settings) -> None:
    if settings.is_sqlite:
        read_db = Path(read_model_url(settings).removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(f"{read_db}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine
    engine = create_engine(read_model_url(settings))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE client_keys"))
        conn.execute(text("DROP TABLE key_meta"))
    engine.dispose()


def test_a_start_without_the_data_keys_is_refused_until_they_are_back(
        any_settings: Settings) -> None:
    _write_a_client(any_settings)
    _drop_key_store(any_settings)
    for _attempt in range(2):  # the refused start left nothing that would let the next pass
        with pytest.raises(KeyStoreMissing) as refused:
            build(any_settings, start_follower=False)
        message = str(refused.value)
        assert "the key store is new" in message and "CRM_ACCEPT_NEW_KEY_STORE" in message
        if any_settings.is_sqlite:
            assert read_model_url(any_settings).removeprefix("sqlite:///") in message


def test_an_accepted_loss_starts_and_new_clients_work(any_settings: Settings) -> None:
    _write_a_client(any_settings)
    _drop_key_store(any_settings)
    accepted = any_settings.model_copy(update={"accept_new_key_store": True})
    container = build(accepted)
    try:
        api = Api(container)
        created = api.ok("POST", "/v1/clients", CLIENT)
        card = api.get(f"/v1/clients/{created['id']}/card")
        assert card.status_code == 200 and card.json()["profile"]["name"] == "Ann Lee"
    finally:
        container.close()
    # and from then on the key store is the one in use: a plain start goes on
    build(any_settings, start_follower=False).close()


def test_a_new_store_starts_as_before(any_settings: Settings) -> None:
    container = build(any_settings, start_follower=False)
    container.close()
    build(any_settings, start_follower=False).close()


def test_the_cli_says_it_in_one_line(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/crm.db")
    _write_a_client(settings)
    _drop_key_store(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DATABASE_URL"] = settings.database_url
    done = subprocess.run([sys.executable, "-c", "from api.cli import main; main()", "audit",
                           "verify"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("configuration error: the event store holds events (up to "
                               "position 1)")
