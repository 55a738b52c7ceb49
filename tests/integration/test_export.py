"""Export as CloudEvents JSON lines that verify offline; an import into a fresh database (even
on the other backend) reproduces the same replay receipts."""

from __future__ import annotations

from pathlib import Path
from uuid import UUID

import orjson
from typer.testing import CliRunner

from api.cli import cli
from commands.activity import LogContact
from commands.application import Actor
from commands.clients import RegisterClient
from commands.service import RegisterComplaint
from infra.bootstrap import Container, build
from infra.chain import chain_hashes, stored_records
from infra.export import export_lines, import_lines, verify_lines
from infra.rebuild import replay_and_compare
from infra.settings import Settings
from tests.support import TEST_MASTER_KEY, fresh_pg_database

OPERATOR = Actor("op", "operator")


def _history(container: Container) -> list[UUID]:
    ids = []
    for i in range(3):
        client = container.app.execute([RegisterClient(
            kind="customer", form="person", name=f"Person {i}", phones=["+44 7700 900123"])],
            OPERATOR).results[0].id
        container.app.execute([LogContact(client_id=client, channel="phone",
                                          direction="inbound", topic="hello",
                                          summary="private words")], OPERATOR)
        container.app.execute([RegisterComplaint(client_id=client, text="bad")], OPERATOR)
        ids.append(client)
    return ids


def _lines(container: Container, **kwargs: object) -> list[bytes]:
    return list(export_lines(container, **kwargs))  # type: ignore[arg-type]


def test_a_full_export_verifies_offline_and_names_tampering(any_container: Container) -> None:
    _history(any_container)
    lines = _lines(any_container)
    verdict = verify_lines(lines)
    assert verdict.ok and verdict.events == 12
    assert b"private words" not in b"".join(lines)  # personal data travels sealed
    event = orjson.loads(lines[5])
    assert event["specversion"] == "1.0" and event["position"] == 5
    assert chain_hashes(any_container.app, [5]) == {5: event["hash"]}

    forged = dict(event, storedstate=event["storedstate"][:-8] + "AAAAAAA=")
    altered = verify_lines([*lines[:5], orjson.dumps(forged), *lines[6:]])
    assert (altered.ok, altered.problem, altered.position) == (False, "altered", 5)
    removed = verify_lines([*lines[:5], *lines[6:]])
    assert (removed.ok, removed.problem, removed.position) == (False, "removed", 6)
    swapped = verify_lines([*lines[:5], lines[6], lines[5], *lines[7:]])
    assert (swapped.ok, swapped.position) == (False, 6)  # the first line out of place


def test_a_client_export_holds_only_that_client_and_verifies(container: Container) -> None:
    ids = _history(container)
    lines = _lines(container, client_id=ids[1])
    events = [orjson.loads(line) for line in lines[1:-1]]  # header, events, signed head
    assert {e["clientid"] for e in events} == {str(ids[1])}
    assert len(events) == 4  # registered, contact, complaint, situation
    assert verify_lines(lines).ok


def test_an_import_on_the_other_backend_reproduces_the_receipts(tmp_path: Path) -> None:
    original = build(Settings(database_url=f"sqlite:///{tmp_path}/crm.db",
                              master_key=TEST_MASTER_KEY))
    try:
        _history(original)
        original.follower.run_once()
        first = {o.receipt.projection: o.receipt for o in replay_and_compare(original)}
        lines = _lines(original, with_keys=True)
    finally:
        original.close()
    with fresh_pg_database() as url:
        copy = build(Settings(database_url=url, master_key=TEST_MASTER_KEY))
        try:
            assert import_lines(copy, lines) == 12
            assert [r.chain_hash for r in stored_records(copy.app)][-1].hex() == orjson.loads(
                lines[12])["hash"]
            copy.follower.run_once()
            second = {o.receipt.projection: o.receipt for o in replay_and_compare(copy)}
        finally:
            copy.close()
    for name, receipt in first.items():
        assert second[name].events_digest == receipt.events_digest, name
        assert second[name].state_digest == receipt.state_digest, name
        assert (second[name].first_position, second[name].last_position) == (
            receipt.first_position, receipt.last_position)


def test_the_cli_exports_and_verifies_a_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crm.db"
    container = build(Settings(database_url=url))
    try:
        _history(container)
    finally:
        container.close()
    out = tmp_path / "history.jsonl"
    env = {"CRM_DATABASE_URL": url}
    assert CliRunner().invoke(cli, ["audit", "export", "-o", str(out)], env=env).exit_code == 0
    assert CliRunner().invoke(cli, ["audit", "verify", "--file", str(out)]).exit_code == 0
    lines = out.read_bytes().splitlines()
    out.write_bytes(b"\n".join(lines[:3] + lines[4:]))
    failed = CliRunner().invoke(cli, ["audit", "verify", "--file", str(out)])
    assert failed.exit_code == 1 and "removed" in failed.output


def test_pages_of_the_export_link_into_one_verifiable_history(container: Container) -> None:
    _history(container)
    first = _lines(container, limit=5)
    second = _lines(container, after=5)
    assert len(first) == 6 and len(second) == 9  # a page with no limit ends with the head
    assert orjson.loads(second[1])["prevhash"] == orjson.loads(first[5])["hash"]
    assert verify_lines(first).ok and verify_lines(second).ok
    full = [_lines(container)[0], *first[1:], *second[1:]]
    assert verify_lines(full).ok
