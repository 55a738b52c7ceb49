"""The `crm` command: keys, replay, audit verify, rebuild, and clear start-up errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from infra.bootstrap import build
from infra.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [k for k in __import__("os").environ if k.startswith("CRM_")]:
        monkeypatch.delenv(name)
    return {"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"}


def test_keys_create_prints_a_key_that_authenticates(env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["keys", "create", "--role", "auditor", "--user", "ann"], env=env)
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]), start_follower=False)
    try:
        found = container.keys.verify(token)
        assert found is not None and (found.user_id, str(found.role)) == ("ann", "auditor")
    finally:
        container.close()


def test_replay_verify_and_rebuild_succeed_on_a_healthy_store(env: dict[str, str]) -> None:
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]))
    from commands.application import Actor
    from commands.clients import RegisterClient

    container.app.execute([RegisterClient(kind="customer", form="person", name="C")],
                          Actor("u", "operator"))
    container.close()
    for args in (["replay"], ["audit", "verify"], ["rebuild", "client_card"],
                 ["rebuild", "client_card", "--rollback"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, (args, result.output)


def test_unknown_or_malformed_settings_stop_with_a_message(env: dict[str, str]) -> None:
    result = runner.invoke(cli, ["audit", "verify"], env={**env, "CRM_TIMEZNOE": "UTC"})
    assert result.exit_code == 2 and "unknown setting CRM_TIMEZNOE" in result.output
    result = runner.invoke(cli, ["audit", "verify"], env={**env, "CRM_TIMEZONE": "Mars/Base"})
    assert result.exit_code == 2 and "CRM_TIMEZONE" in result.output


def test_a_wrong_master_key_stops_with_a_message(env: dict[str, str]) -> None:
    assert runner.invoke(cli, ["audit", "verify"], env=env).exit_code == 0
    other = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
    result = runner.invoke(cli, ["audit", "verify"], env={**env, "CRM_MASTER_KEY": other})
    assert result.exit_code == 2 and "master key" in result.output


def test_master_key_rotation_keeps_data_readable(env: dict[str, str]) -> None:
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]))
    from commands.application import Actor
    from commands.clients import RegisterClient

    written = container.app.execute([RegisterClient(kind="customer", form="person",
                                                    name="Rotated Person")], Actor("u", "operator"))
    client_id = written.results[0].id
    container.close()
    new = runner.invoke(cli, ["keys", "new-master"], env=env).stdout.strip()
    old_file = Path(env["CRM_DATABASE_URL"].removeprefix("sqlite:///")).with_name("crm.master.key")
    rotated = runner.invoke(cli, ["keys", "rotate-master", "--new-key", new], env=env)
    assert rotated.exit_code == 0, rotated.output
    old_file.write_text(new)  # the operator now points CRM_MASTER_KEY (here: the file) at it
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]), start_follower=False)
    try:
        client = container.app.repository.get(client_id)
        assert client.profile["name"] == "Rotated Person"
    finally:
        container.close()
