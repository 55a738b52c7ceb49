"""`crm replay`, `crm rebuild` and `crm audit verify`: a bar with events/s and time left on a
terminal, a one-line summary with the rate (or one JSON object with --json), progress reported
for every event, and an event that cannot be read or applied named in one line (issues 14, 15)."""

from __future__ import annotations

import io
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

import api.cli
from api.cli import cli
from commands.application import Actor
from commands.clients import RegisterClient
from infra.bluegreen import blue_green
from infra.bootstrap import Container, build
from infra.chain import verify_store
from infra.eventstore import notification_reader
from infra.rebuild import replay_and_compare
from infra.settings import Settings
from projections.card import ClientCard
from projections.registry import all_projections

runner = CliRunner()
CLIENTS = 6
RATE = r"[\d,]+ events in \d+\.\d s \([\d,]+ ev/s\)"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in [k for k in __import__("os").environ if k.startswith("CRM_")]:
        monkeypatch.delenv(name)
    return {"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"}


def _write_clients(env: dict[str, str], *, live: bool = True) -> int:
    """Register clients (the live read models caught up, or left behind); the store's size."""
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]), start_follower=live)
    try:
        for n in range(CLIENTS):
            container.app.execute([RegisterClient(kind="customer", form="person",
                                                  name=f"Client {n}")], Actor("u", "operator"))
        if live:
            container.follower.run_once()
        return int(container.store_position())
    finally:
        container.close()


@pytest.fixture
def store(env: dict[str, str]) -> int:
    return _write_clients(env)


def _registrations(env: dict[str, str]) -> list[tuple[int, Any]]:
    container = build(Settings(database_url=env["CRM_DATABASE_URL"]), start_follower=False)
    try:
        return [(p, e) for p, e in notification_reader(container.app)(1, 10_000)
                if type(e).__name__ == "ClientRegistered"]
    finally:
        container.close()


def _poison(monkeypatch: pytest.MonkeyPatch, position: int) -> None:
    """The client card cannot apply the event at `position` (as with issue 15's 1e400)."""
    method = "fold" if hasattr(ClientCard, "fold") else "apply"  # page-fold engine or not
    original = getattr(ClientCard, method)

    def failing(self: ClientCard, target: Any, event: Any, at: int) -> None:
        if at == position:
            raise OverflowError("Python int too large to convert to SQLite INTEGER")
        original(self, target, event, at)

    monkeypatch.setattr(ClientCard, method, failing)


@pytest.fixture
def container(env: dict[str, str], store: int) -> Iterator[Container]:
    built = build(Settings(database_url=env["CRM_DATABASE_URL"]), start_follower=False)
    yield built
    built.close()


def test_progress_is_reported_for_every_event(container: Container, store: int) -> None:
    replayed: Counter[str] = Counter()
    outcomes = replay_and_compare(container, None,
                                  progress=lambda name, n: replayed.update({name: n}))
    assert replayed == {o.receipt.projection: o.receipt.events for o in outcomes}
    assert {o.receipt.events for o in outcomes} == {store}

    verified: list[int] = []
    verdict = verify_store(container.app, progress=verified.append)
    assert verdict.ok and sum(verified) == verdict.events == store

    phases: Counter[str] = Counter()
    blue_green(container, "client_card", progress=lambda phase, n: phases.update({phase: n}))
    assert phases["rebuild"] == phases["check"] == store


def test_off_a_terminal_each_command_prints_a_summary_line_and_no_bar(env: dict[str, str],
                                                                       store: int) -> None:
    projections = len(all_projections(None))  # type: ignore[arg-type]
    expected = {
        ("replay",): rf"replayed {RATE}; {projections} projections match",
        ("audit", "verify"): rf"verified {RATE}; chain head [0-9a-f]{{64}}",
        ("rebuild", "client_card"): rf"rebuilt client_card from {RATE}, checked by an "
                                    rf"independent replay; switched at position {store} ",
    }
    for args, line in expected.items():
        result = runner.invoke(cli, list(args), env=env)
        assert result.exit_code == 0, (args, result.output)
        assert re.search(line, result.stdout.splitlines()[-1]), (args, result.stdout)
        assert f"{store:,} events" in result.stdout.splitlines()[-1]
        assert "ev/s" not in result.stderr and "left" not in result.stderr  # no bar


def test_on_a_terminal_a_bar_counts_the_events_with_their_rate_and_time_left(
        env: dict[str, str], store: int, monkeypatch: pytest.MonkeyPatch) -> None:
    for args in (["replay"], ["audit", "verify"], ["rebuild", "client_card"]):
        screen = io.StringIO()
        monkeypatch.setattr(api.cli, "console",
                            Console(file=screen, force_terminal=True, width=200))
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 0, (args, result.output)
        shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", screen.getvalue())
        last = shown.replace("\r", "\n").strip().splitlines()[-1]
        assert re.search(rf"{store}/{store} events +[\d,]+ ev/s +\d+:\d\d:\d\d left", last), (
            args, last)


def test_json_gives_one_object_per_command(env: dict[str, str], store: int) -> None:
    replayed = json.loads(runner.invoke(cli, ["replay", "--json"], env=env).stdout)
    assert replayed["ok"] is True and replayed["events"] == store
    assert replayed["events_per_second"] > 0
    assert all(p["match"] and p["events"] == store for p in replayed["projections"])
    verified = json.loads(runner.invoke(cli, ["audit", "verify", "--json"], env=env).stdout)
    assert verified["ok"] is True and verified["events"] == store
    assert re.fullmatch(r"[0-9a-f]{64}", verified["chain_head"])
    rebuilt = json.loads(runner.invoke(cli, ["rebuild", "client_card", "--json"], env=env).stdout)
    assert rebuilt["ok"] is True and rebuilt["events"] == store
    assert rebuilt["position"] == store


def _not_applied(position: int, event: Any) -> str:
    return (f"client_card could not apply the event at position {position} (ClientRegistered, "
            f"stream {event.originator_id}): OverflowError: Python int too large to convert to "
            "SQLite INTEGER")


def test_replay_names_the_event_it_cannot_apply(env: dict[str, str], store: int,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The replay parks it, as the live runner does, goes on, and names it in one line."""
    position, event = _registrations(env)[3]
    _poison(monkeypatch, position)
    result = runner.invoke(cli, ["replay"], env=env)
    assert result.exit_code == 1
    # the live copy applied it before the bug: the card differs too, and says where
    assert result.stderr.strip().splitlines() == [
        f'client_card: client_cards: key ["{event.originator_id}"] is only on one side',
        f"replay: {_not_applied(position, event)}"]
    assert re.fullmatch(rf"replayed {RATE}; 1 of \d+ projections differ: client_card; 1 event "
                        "could not be applied", result.stdout.splitlines()[-1])
    failed = json.loads(runner.invoke(cli, ["replay", "--json"], env=env).stdout)
    assert failed["ok"] is False
    card = next(p for p in failed["projections"] if p["projection"] == "client_card")
    assert card["not_applied"] == [{
        "position": position, "type": "ClientRegistered", "stream": str(event.originator_id),
        "projection": "client_card",
        "error": "OverflowError: Python int too large to convert to SQLite INTEGER"}]
    assert all(not p["not_applied"] for p in failed["projections"] if p is not card)


def test_replay_names_an_event_the_live_read_models_also_could_not_apply(
        env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    _write_clients(env, live=False)  # the live copy meets the event during the replay's catch-up
    position, event = _registrations(env)[2]
    _poison(monkeypatch, position)
    result = runner.invoke(cli, ["replay"], env=env)
    assert result.exit_code == 1
    assert result.stderr.strip() == f"replay: {_not_applied(position, event)}"
    assert re.search(rf"replayed {RATE}; \d+ projections match; 1 event could not be applied",
                     result.stdout)


def test_replay_and_rebuild_name_an_event_that_cannot_be_read(env: dict[str, str],
                                                              store: int) -> None:
    """Whether the reader refuses it (one line, exit 1) or hands it on as undecodable for the
    projections to park (one line per projection), every line names the event."""
    stream = _registrations(env)[1][1].originator_id
    path = env["CRM_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:  # as an older or broken writer could have left it
        db.execute("INSERT INTO stored_events VALUES (?, 2, 'domain.client:Client.Vanished', "
                   "x'7b7d')", (stream.hex,))
    names = rf"the event at position {store + 1} \(\w+, stream {stream}\): \w+"
    result = runner.invoke(cli, ["replay"], env=env)
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and all(re.fullmatch(rf"replay failed: could not read {names}.*|"
                                      rf"replay: \w+ could not apply {names}.*", line)
                         for line in lines), lines
    result = runner.invoke(cli, ["rebuild", "client_card"], env=env)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    if result.exit_code:
        assert re.fullmatch(rf"rebuild failed, the live tables are untouched: could not read "
                            rf"{names}.*", lines[0]), lines
    else:
        assert re.fullmatch(rf"rebuild: client_card could not apply {names}.* \(left out, as "
                            r"live\)", lines[0]), lines


def test_rebuild_names_the_events_it_left_out(env: dict[str, str], store: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    position, event = _registrations(env)[0]
    _poison(monkeypatch, position)
    result = runner.invoke(cli, ["rebuild", "client_card"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("rebuilt client_card from ")
    assert result.stderr.strip() == (f"rebuild: {_not_applied(position, event)} "
                                     "(left out, as live)")
