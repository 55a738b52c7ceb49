"""Issue 17: an audit that needs no trust in the running system.

Every readable field of an export line is bound to the stored bytes the hash chains cover, so an
edit of what a person reads (data, actor, time, type, position) is caught and named, as are a
deleted, inserted, reordered or duplicated line. The product's verifier (`crm audit verify
--file`) and the standalone one written from docs/audit-format.md (tools/verify_export.py) give
the same verdict on every case. Exports end with a chain head signed with the service's Ed25519
key, and `--anchor` proves an export extends the history an earlier signed head vouched for.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from api.cli import cli
from commands.activity import LogContact
from commands.application import Actor
from commands.clients import RegisterClient
from commands.service import RegisterComplaint
from infra.audit import head_is_signed, readable
from infra.bootstrap import Container, build
from infra.export import current_head, export_lines, verify_lines
from infra.settings import Settings
from tests.support import TEST_MASTER_KEY

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "verify_export.py"
EXAMPLE = ROOT / "tests" / "fixtures" / "audit-example.jsonl"
OPERATOR = Actor("op", "operator")


def _tool() -> Any:
    spec = importlib.util.spec_from_file_location("verify_export", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _history(container: Container, clients: int = 2) -> None:
    for i in range(clients):
        client = container.app.execute([RegisterClient(
            kind="customer", form="person", name=f"Person {i}", phones=["+44 7700 900123"])],
            OPERATOR).results[0].id
        container.app.execute([LogContact(client_id=client, channel="phone",
                                          direction="inbound", topic="hello",
                                          summary="private words")], OPERATOR)
        container.app.execute([RegisterComplaint(client_id=client, text="bad")], OPERATOR)


@pytest.fixture
def lines(container: Container) -> list[bytes]:
    _history(container)
    return list(export_lines(container))


def _index(lines: list[bytes], name: str) -> int:
    """The first line of an event type (any class version)."""
    return next(i for i, line in enumerate(lines)
                if str(orjson.loads(line).get("type", "")).startswith(f"crm.{name}.v"))


def _edit(lines: list[bytes], at: int, change: Callable[[dict[str, Any]], None]) -> list[bytes]:
    line = orjson.loads(lines[at])
    change(line)
    return [*lines[:at], orjson.dumps(line), *lines[at + 1:]]


def _rehash(line: dict[str, Any], prev_chain: str) -> dict[str, Any]:
    """What a forger with no secret can do: recompute a line's hashes (format §4)."""
    state = base64.b64decode(line["storedstate"])
    content = hashlib.sha256(line["storedtopic"].encode() + b"\0" + state).digest()
    s_hash = hashlib.sha256(bytes.fromhex(line["prevstreamhash"])
                            + uuid.UUID(line["stream"]).bytes
                            + int(line["version"]).to_bytes(8, "big") + content).digest()
    c_hash = hashlib.sha256(bytes.fromhex(prev_chain) + int(line["position"]).to_bytes(8, "big")
                            + s_hash).digest()
    return dict(line, streamhash=s_hash.hex(), hash=c_hash.hex(), prevhash=prev_chain)


def _forged(lines: list[bytes], position: int, after: int) -> bytes:
    """A new event (a contact on a new stream) at `position` with self-consistent hashes,
    linked to line `after`: what a forger with no secret can make."""
    template = orjson.loads(lines[_index(lines, "ContactLogged")])
    state = base64.b64decode(template["storedstate"])
    forged = readable(position, uuid.uuid4(), 1, template["storedtopic"], state)
    forged.update(storedtopic=template["storedtopic"], storedstate=template["storedstate"],
                  prevstreamhash="00" * 32)
    return orjson.dumps(_rehash(forged, orjson.loads(lines[after])["hash"]))


def _inserted(lines: list[bytes]) -> list[bytes]:
    """A forged event slipped in before line 6, taking its position."""
    return [*lines[:6], _forged(lines, 6, 5), *lines[6:]]


def _topic(line: dict[str, Any]) -> None:
    line["data"]["topic"] = "TAMPERED"


TAMPERING: dict[str, tuple[Callable[[list[bytes]], list[bytes]], tuple[str, str | None, int]]] = {
    "data": (lambda ls: _edit(ls, _index(ls, "ContactLogged"), _topic),
             ("altered", "data", 2)),
    "actor": (lambda ls: _edit(ls, 2, lambda e: e.update(actor="mallory")),
              ("altered", "actor", 2)),
    "time": (lambda ls: _edit(ls, 2, lambda e: e.update(time="2020-01-01T00:00:00+00:00")),
             ("altered", "time", 2)),
    "type": (lambda ls: _edit(ls, 2, lambda e: e.update(type="crm.ComplaintRegistered.v1")),
             ("altered", "type", 2)),
    "position": (lambda ls: _edit(ls, 5, lambda e: e.update(position=50)),
                 ("altered", "position", 50)),
    "stored bytes": (lambda ls: _edit(ls, 5, lambda e: e.update(
        storedstate=e["storedstate"][:-8] + "AAAAAAA=")), ("altered", "storedstate", 5)),
    "deletion": (lambda ls: [*ls[:5], *ls[6:]], ("removed", None, 6)),
    "insertion": (_inserted, ("inserted", None, 6)),
    "reorder": (lambda ls: [*ls[:5], ls[6], ls[5], *ls[7:]], ("reordered", None, 6)),
    "duplicate": (lambda ls: [*ls[:6], ls[5], *ls[6:]], ("duplicate", None, 5)),
    "truncation": (lambda ls: [*ls[:-3], ls[-1]], ("removed", "head", 8)),
    "appended": (lambda ls: [*ls[:-1], _forged(ls, 99, len(ls) - 2), ls[-1]],
                 ("inserted", None, 99)),
    "head": (lambda ls: _edit(ls, len(ls) - 1, lambda h: h.update(position=3)),
             ("altered", "head", 3)),
}


def _cli_verdict(path: Path, *extra: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["audit", "verify", "--file", str(path), "--json", *extra])
    found = json.loads(next(x for x in result.output.splitlines() if x.startswith("{")))
    assert result.exit_code == (0 if found["ok"] else 1), result.output
    return found


def _tool_verdict(path: Path, *extra: str) -> dict[str, Any]:
    run = subprocess.run([sys.executable, str(TOOL), str(path), "--json", *extra],
                         capture_output=True, text=True, cwd="/", check=False)
    found: dict[str, Any] = json.loads(run.stdout)
    assert run.returncode == (0 if found["ok"] else 1), run.stderr
    return found


def _key(verdict: dict[str, Any]) -> tuple[Any, ...]:
    return (verdict["ok"], verdict["problem"], verdict["field"], verdict["position"])


def test_an_honest_export_verifies_alike_everywhere(lines: list[bytes], tmp_path: Path) -> None:
    path = tmp_path / "honest.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    product = verify_lines(lines)
    assert product.ok and product.events == 8 and product.signed
    assert _key(_cli_verdict(path)) == _key(_tool_verdict(path)) == (True, None, None, None)
    assert _tool_verdict(path)["chain_head"] == product.last_chain_hash


@pytest.mark.parametrize("kind", list(TAMPERING))
def test_each_kind_of_edit_is_caught_and_named_alike(kind: str, lines: list[bytes],
                                                     tmp_path: Path) -> None:
    tamper, (problem, field, position) = TAMPERING[kind]
    edited = tamper(lines)
    product = verify_lines(edited)
    assert (product.ok, product.problem, product.field, product.position) == (
        False, problem, field, position), product
    path = tmp_path / f"{kind}.jsonl"
    path.write_bytes(b"\n".join(edited) + b"\n")
    expected = (False, problem, field, position)
    assert _key(_cli_verdict(path)) == expected
    assert _key(_tool().verify(edited, None)) == expected
    if kind in ("data", "insertion", "reorder"):  # and the script as a process, from anywhere
        assert _key(_tool_verdict(path)) == expected


def test_personal_fields_travel_sealed_and_their_ciphertext_is_bound(
        lines: list[bytes]) -> None:
    at = _index(lines, "ContactLogged")
    assert orjson.loads(lines[at])["data"]["summary"]["_pd_"] == 1
    swapped = _edit(lines, at, lambda e: e["data"].update(summary="a revealed lie"))
    assert (verify_lines(swapped).field, _tool().verify(swapped, None)["field"]) == ("data",
                                                                                     "data")


def test_an_anchor_proves_the_history_up_to_it_is_unchanged(container: Container,
                                                            tmp_path: Path) -> None:
    _history(container, clients=1)
    anchor = current_head(container)
    assert head_is_signed(anchor) and anchor["position"] == 4
    anchor_file = tmp_path / "anchor.json"
    anchor_file.write_text(json.dumps(anchor))
    _history(container, clients=1)  # a year goes by
    later = list(export_lines(container))
    path = tmp_path / "later.jsonl"
    path.write_bytes(b"\n".join(later))
    assert verify_lines(later, anchor=anchor).ok
    for verdict in (_cli_verdict(path, "--anchor", str(anchor_file)),
                    _tool_verdict(path, "--anchor", str(anchor_file))):
        assert verdict["ok"]

    # A forger rewrites an event before the anchor and re-hashes everything after it; the
    # signed head at the end no longer matches, so they replace it with an unsigned one.
    events = [orjson.loads(x) for x in later[1:-1]]
    events[1]["actor"] = "mallory"
    events[1]["storedstate"] = base64.b64encode(base64.b64decode(
        events[1]["storedstate"]).replace(b'"actor":"op"', b'"actor":"mallory"')).decode()
    chain, streams = "00" * 32, {}
    for event in events:
        event["prevstreamhash"] = streams.get(event["stream"], "00" * 32)
        event.update(_rehash(event, chain))
        chain, streams[event["stream"]] = event["hash"], event["streamhash"]
    head = dict(orjson.loads(later[-1]), hash=chain, key=None, sig=None)
    forged = [later[0], *(orjson.dumps(e) for e in events), orjson.dumps(head)]
    assert verify_lines(forged).ok  # self-consistent: only the anchor tells
    path.write_bytes(b"\n".join(forged))
    expected = (False, "anchor", None, 4)
    assert _key(_cli_verdict(path, "--anchor", anchor_file.read_text())) == expected
    assert _key(_tool_verdict(path, "--anchor", str(anchor_file))) == expected
    assert (verify_lines(forged, anchor=anchor).problem) == "anchor"


def test_crm_audit_anchor_prints_a_signed_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crm.db"
    container = build(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        _history(container, clients=1)
    finally:
        container.close()
    env = {"CRM_DATABASE_URL": url, "CRM_MASTER_KEY": TEST_MASTER_KEY}
    result = CliRunner().invoke(cli, ["audit", "anchor"], env=env)
    assert result.exit_code == 0, result.output
    head = json.loads(result.output.strip().splitlines()[-1])
    assert head["crmhead"] == 1 and head["position"] == 4 and head_is_signed(head)
    assert (tmp_path / "crm.signing.key").exists()  # made on first start, like the master key
    forged = dict(head, position=3)
    assert not head_is_signed(forged)


def test_a_signing_key_setting_signs_and_without_one_on_postgres_heads_are_unsigned(
        tmp_path: Path) -> None:
    from infra.audit import new_signing_key, parse_signing_key, public_key_b64, signing_key

    key = new_signing_key()
    given = signing_key(key, tmp_path / "crm.db")
    assert given is not None and public_key_b64(given) == public_key_b64(parse_signing_key(key))
    assert not (tmp_path / "crm.signing.key").exists()  # the setting wins over a key file
    assert signing_key(None, None) is None  # PostgreSQL without CRM_SIGNING_KEY


def test_format_1_exports_still_verify() -> None:
    """The demo fixture was exported in format 1 (no head, dataschema a path)."""
    import gzip

    with gzip.open(ROOT / "tests" / "fixtures" / "demo_history.jsonl.gz") as handle:
        raw = handle.read().splitlines()
    assert verify_lines(raw).ok
    assert _tool().verify(raw, None)["ok"]


def test_the_worked_example_of_the_format_document_still_verifies() -> None:
    raw = EXAMPLE.read_bytes().splitlines()
    product = verify_lines(raw)
    assert product.ok and product.events == 3 and product.signed
    assert _tool().verify(raw, None)["ok"]
    doc = (ROOT / "docs" / "audit-format.md").read_text()
    for line in raw:
        record = orjson.loads(line)
        for name in ("hash", "streamhash", "id", "sig"):
            if record.get(name):
                assert str(record[name]) in doc, f"docs/audit-format.md lacks {name} {record}"
    from consumers.checkpoints import GENESIS, fold

    digest = GENESIS
    for record in (orjson.loads(line) for line in raw[1:4]):
        digest = fold(digest, record["position"], record["id"], record["type"])
        assert digest in doc  # the relay checkpoint of §4.5 over the example
    second = orjson.loads(raw[2])
    assert base64.b64decode(second["storedstate"]).decode() in doc


def test_the_standalone_verifier_is_short_and_needs_nothing_of_ours() -> None:
    import ast

    source = TOOL.read_text()
    assert len(source.splitlines()) <= 300
    tops = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            tops.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            tops.add(node.module.split(".")[0])
    assert tops - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_current_head_is_the_last_chain_hash_on_both_backends(
        any_container: Container) -> None:
    _history(any_container, clients=1)
    exported = list(export_lines(any_container))
    head = current_head(any_container)
    assert (head["position"], head["hash"]) == (4, orjson.loads(exported[-2])["hash"])
    # SQLite: a key file made on first start; PostgreSQL without CRM_SIGNING_KEY: unsigned
    assert head_is_signed(head) == any_container.settings.is_sqlite
    assert verify_lines(exported).signed == any_container.settings.is_sqlite


def test_crm_audit_replay_rebuilds_every_projection_from_an_export_alone(
        tmp_path: Path) -> None:
    from infra.rebuild import replay_and_compare

    url = f"sqlite:///{tmp_path}/crm.db"
    container = build(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        _history(container)
        container.follower.run_once()
        live = {o.receipt.projection: o.receipt for o in replay_and_compare(container)}
        exported = tmp_path / "history.jsonl"
        exported.write_bytes(b"\n".join(export_lines(container, with_keys=True)))
    finally:
        container.close()
    result = CliRunner().invoke(cli, ["audit", "replay", "--file", str(exported), "--json"],
                                env={"CRM_DATABASE_URL": url,
                                     "CRM_MASTER_KEY": TEST_MASTER_KEY})
    assert result.exit_code == 0, result.output
    found = json.loads(next(x for x in result.output.splitlines() if x.startswith("{")))
    assert found["events"] == 8 and set(live) == {r["projection"] for r in found["receipts"]}
    for receipt in found["receipts"]:
        same = live[receipt["projection"]]
        assert (receipt["events_digest"], receipt["state_digest"], receipt["last_position"]) \
            == (same.events_digest, same.state_digest, same.last_position), receipt["projection"]

    forged = _edit(exported.read_bytes().splitlines(), 2, lambda e: e.update(actor="mallory"))
    exported.write_bytes(b"\n".join(forged))
    refused = CliRunner().invoke(cli, ["audit", "replay", "--file", str(exported)],
                                 env={"CRM_DATABASE_URL": url, "CRM_MASTER_KEY": TEST_MASTER_KEY})
    assert refused.exit_code == 1 and "actor" in refused.output
