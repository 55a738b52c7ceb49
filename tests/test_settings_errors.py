"""Every setting is checked at start (issue 21): a bad one stops `crm` with status 2 and one line
on stderr naming the variable, what is wrong and a good value; no traceback. An unreachable
PostgreSQL or Kafka is named with its address. Each case runs `crm` as a real process."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.settings import EXAMPLES, SECRETS, Settings, SettingsError, load_settings
from tests.support import TEST_MASTER_KEY

# (variable, bad value, crm arguments, what the line must say)
CASES = [
    ("CRM_DATABASE_URL", "mysql://crm@db/crm", ["audit", "verify"],
     "must start with sqlite:/// or postgresql://"),
    ("CRM_DATABASE_URL", "postgresql://crm@127.0.0.1:notaport/crm", ["audit", "verify"],
     "is not a valid postgresql://"),
    ("CRM_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/crm", ["audit", "verify"],
     "cannot connect to PostgreSQL at 127.0.0.1:1/crm (connection refused"),
    ("CRM_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/crm_no_such_database",
     ["audit", "verify"], "PostgreSQL at 127.0.0.1:5432/crm_no_such_database (it has no "
                          "database crm_no_such_database)"),
    ("CRM_DATABASE_URL", "sqlite:///{tmp}/not-a-database.txt", ["audit", "verify"],
     "not-a-database.txt is not a SQLite database"),
    ("CRM_KAFKA_BOOTSTRAP", "localhost", ["relay"], "must be host:port"),
    ("CRM_KAFKA_BOOTSTRAP", "127.0.0.1:1", ["relay"],
     "cannot reach Kafka at 127.0.0.1:1 (connection refused)"),
    ("CRM_KAFKA_BOOTSTRAP", "127.0.0.1:1,127.0.0.1:2", ["consume"],
     "cannot reach Kafka at 127.0.0.1:1 (connection refused), 127.0.0.1:2"),
    ("CRM_KAFKA_PARTITIONS", "0", ["relay"], "greater than or equal to 1"),
    ("CRM_BOOTSTRAP_ADMIN_KEY", "abcdefghijklmnopqrstuvwxyz0123456789", ["keys", "revoke", "x"],
     "must read crm_<id>_<secret>"),
    ("CRM_BOOTSTRAP_ADMIN_KEY", "crm_a_b", ["serve"], "must be at least 24 characters"),
    ("CRM_MASTER_KEY", "not base64!", ["audit", "verify"], "must be base64 of 32 random bytes"),
    ("CRM_SIGNING_KEY", "not base64!", ["audit", "verify"],
     "must be base64 of a 32-byte Ed25519 private key"),
    ("CRM_SIGNING_KEY", base64.b64encode(b"0" * 16).decode(), ["audit", "verify"],
     "must decode to 32 bytes, not 16"),
    ("CRM_MASTER_KEY", base64.b64encode(b"0" * 16).decode(), ["audit", "verify"],
     "must decode to 32 bytes, not 16"),
    ("CRM_TIMEZONE", "Mars/Base", ["audit", "verify"], "not an IANA time zone"),
    ("CRM_HOST", "http://example.com", ["serve"], "not a host name or IP address"),
    ("CRM_HOST", "192.0.2.1", ["serve"], "'192.0.2.1' is not an address of this machine"),
    ("CRM_PORT", "eighty", ["serve"], "valid integer"),
    ("CRM_PORT", "70000", ["serve"], "less than or equal to 65535"),
    ("CRM_PORT", "{busy}", ["serve"], "is already in use"),
    ("CRM_LOG_LEVEL", "loud", ["serve"], "'debug', 'info', 'warning' or 'error'"),
    ("CRM_READ_WAIT_SECONDS", "-1", ["serve"], "greater than or equal to 0"),
    ("CRM_MAX_BODY_BYTES", "10", ["serve"], "greater than or equal to 1024"),
    ("CRM_RATE_LIMIT_PER_MINUTE", "lots", ["serve"], "valid integer"),
    ("CRM_CORS_ORIGINS", "https://app.example.com/login", ["serve"],
     "'https://app.example.com/login' is not an origin"),
    ("CRM_ACCEPT_NEW_KEY_STORE", "maybe", ["audit", "verify"], "valid boolean"),
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


def crm(args: list[str], tmp: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update({"CRM_DATABASE_URL": f"sqlite:///{tmp}/crm.db", **settings})
    # a check that failed to stop `crm serve` would leave it serving: the timeout ends the test
    return subprocess.run([sys.executable, "-c", "from api.cli import main; main()", *args],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
                          check=False)


def assert_one_line(result: subprocess.CompletedProcess[str], variable: str, says: str) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    line = lines[0]
    assert line.startswith(f"configuration error: {variable}: "), line
    assert says in line, line
    return line


@pytest.mark.parametrize(("variable", "value", "args", "says"), CASES,
                         ids=[f"{c[0]}={c[1]}" for c in CASES])
def test_a_bad_setting_stops_crm_with_one_line_naming_it(
        variable: str, value: str, args: list[str], says: str, tmp_path: Path,
        busy_port: int) -> None:
    (tmp_path / "not-a-database.txt").write_text("hello\n")
    value = value.format(tmp=tmp_path, busy=busy_port)
    line = assert_one_line(crm(args, tmp_path, **{variable: value}), variable, says)
    name = variable.removeprefix("CRM_").lower()
    assert f"for example {variable}={EXAMPLES[name]}" in line
    if name in SECRETS:
        assert value not in line  # a secret, even a bad one, is never echoed


def test_a_wrong_master_key_stops_crm_with_one_line(tmp_path: Path) -> None:
    assert crm(["audit", "verify"], tmp_path).returncode == 0  # made the key file beside it
    other = base64.b64encode(b"1" * 32).decode()
    assert_one_line(crm(["audit", "verify"], tmp_path, CRM_MASTER_KEY=other), "CRM_MASTER_KEY",
                    "is not the master key the client data keys were wrapped with")


@pytest.mark.postgres
def test_postgresql_without_a_master_key_stops_crm_with_one_line(tmp_path: Path) -> None:
    from tests.support import fresh_pg_database

    with fresh_pg_database() as url:
        assert_one_line(crm(["audit", "verify"], tmp_path, CRM_DATABASE_URL=url),
                        "CRM_MASTER_KEY", "is required with PostgreSQL")


def test_an_unknown_setting_suggests_the_known_one(tmp_path: Path) -> None:
    result = crm(["audit", "verify"], tmp_path, CRM_TIMEZNOE="UTC")
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "unknown setting CRM_TIMEZNOE; did you mean CRM_TIMEZONE?" in result.stderr


def test_every_setting_has_a_case_and_an_example() -> None:
    variables = {f"CRM_{name.upper()}" for name in Settings.model_fields}
    assert {c[0] for c in CASES} == variables
    assert set(EXAMPLES) == set(Settings.model_fields)


def test_the_examples_are_good_values() -> None:
    for name, example in EXAMPLES.items():
        value = TEST_MASTER_KEY if name in ("master_key", "signing_key") else example.split()[0]
        try:
            load_settings({f"CRM_{name.upper()}": value})
        except SettingsError as error:  # pragma: no cover (the message says which)
            pytest.fail(f"the example of CRM_{name.upper()} is refused: {error}")


def test_good_settings_start_and_mixed_case_log_level_is_accepted(tmp_path: Path) -> None:
    result = crm(["audit", "verify"], tmp_path, CRM_LOG_LEVEL="INFO", CRM_TIMEZONE="Europe/Berlin",
                 CRM_KAFKA_BOOTSTRAP="", CRM_CORS_ORIGINS="https://a.example.com,http://b:8080",
                 CRM_BOOTSTRAP_ADMIN_KEY="crm_admin0_change-me-please-0123456789")
    assert result.returncode == 0, result.stderr
