"""The demo history: deterministic, valid under the domain rules, loadable through the CLI."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

from typer.testing import CliRunner

from api.cli import cli
from api.routers.reports import payments_view
from commands.money import ReceivePayment
from commands.reference import SetPaymentPlan
from commands.service import CloseWorkOrder, StartSurvey
from demo import EVENT_TYPES, generate, until_today
from demo.load import Loader
from domain.catalogue import EVENT_TYPES as CATALOGUE
from infra.bootstrap import Container, build
from infra.settings import Settings

# December 1st lies inside this window: next year's bank holidays change the calendar.
SMALL = {"clients": 60, "months": 3, "start": date(2025, 10, 1)}


def _fingerprint(seed: int) -> list[tuple[str, str, str, str]]:
    return [(step.at.isoformat(), step.actor.user, c.NAME, c.model_dump_json())
            for step in generate(seed=seed, clients=40, months=3) for c in step.commands]


def test_the_same_seed_gives_byte_identical_commands() -> None:
    first, again = _fingerprint(7), _fingerprint(7)
    assert len(first) > 300
    assert first == again
    assert _fingerprint(8) != first


def test_another_process_with_another_hash_seed_generates_the_same_bytes() -> None:
    code = ("import hashlib; from tests.integration.test_demo import _fingerprint; "
            "print(hashlib.sha256(repr(_fingerprint(7)).encode()).hexdigest())")
    here = hashlib.sha256(repr(_fingerprint(7)).encode()).hexdigest()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).parents[2], env={**os.environ, "PYTHONHASHSEED": "123"})
    assert out.stdout.strip() == here


def test_steps_come_in_business_time_order_and_end_before_the_history_ends() -> None:
    steps = list(generate(**SMALL))  # type: ignore[arg-type]
    times = [s.at for s in steps]
    assert times == sorted(times)
    assert times[0] == datetime(2025, 10, 1, 6, 0, tzinfo=UTC)  # 07:00 in London (BST)
    end = datetime(2026, 1, 1, tzinfo=UTC)  # London is on GMT in January
    occurred = [c.occurred_at for s in steps for c in s.commands]
    assert all(t is not None and t < end for t in occurred)


def test_surveys_start_three_days_or_more_after_their_work_order_closed() -> None:
    closed: dict[UUID, datetime] = {}
    gaps = []
    for step in generate(**SMALL):  # type: ignore[arg-type]
        for c in step.commands:
            if isinstance(c, CloseWorkOrder):
                closed[c.work_order_id] = c.occurred_at  # type: ignore[assignment]
            if isinstance(c, StartSurvey):
                gaps.append(c.occurred_at - closed[c.work_order_id])  # type: ignore[operator]
    assert gaps and min(gaps) > timedelta(days=2, hours=12)


def _types(container: Container) -> set[str]:
    notes = container.app.recorder.select_notifications(start=1, limit=1_000_000)
    return {n.topic.rsplit(".", 1)[-1] for n in notes}


def test_a_small_demo_loads_and_writes_every_event_type_it_claims(container: Container) -> None:
    stats = Loader(container.app, batch=50).load(generate(**SMALL))  # type: ignore[arg-type]
    assert set(CATALOGUE) >= EVENT_TYPES
    assert _types(container) == EVENT_TYPES
    assert stats.events == container.store_position()
    assert stats.writes < stats.steps  # independent steps were grouped


def test_cli_demo_loads_once_and_refuses_a_second_load(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/demo.db"
    runner = CliRunner()
    done = runner.invoke(cli, ["demo", "--clients", "30", "--months", "2"],
                         env={"CRM_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    found = re.search(r"loaded 30 clients over 2 months: (\d+) events", done.output)
    assert found, done.output
    assert "read models caught up" in done.output
    container = build(Settings(database_url=url), start_follower=False)
    try:
        assert container.store_position() == int(found.group(1)) > 100
        assert container.runner.position() == container.store_position()
    finally:
        container.close()
    again = runner.invoke(cli, ["demo", "--clients", "30", "--months", "2"],
                          env={"CRM_DATABASE_URL": url})
    assert again.exit_code == 1
    assert "already holds events" in again.output


def test_cli_demo_refuses_a_history_ending_after_today(tmp_path: Path) -> None:
    later = (datetime.now(UTC).date() - timedelta(days=20)).isoformat()
    result = CliRunner().invoke(cli, ["demo", "--months", "1", "--start", later],
                                env={"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert result.exit_code == 2
    assert "after today" in result.output
    assert not (tmp_path / "x.db").exists()


def test_until_today_covers_whole_months_ending_with_the_current_one() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    assert until_today(now, 18) == (date(2025, 7, 1), now)
    # A past last day: to the end of that day in London (GMT in November).
    assert until_today(now, 3, date(2026, 11, 20)) == (
        date(2026, 9, 1), datetime(2026, 11, 21, tzinfo=UTC))
    try:
        until_today(now, 3, date(2026, 12, 6))
    except ValueError as error:
        assert "after today" in str(error)
    else:
        raise AssertionError("a last day after today was accepted")


def test_a_history_stopped_at_until_ends_there_with_its_month_planned() -> None:
    first, until = until_today(datetime(2026, 11, 18, 11, 30, tzinfo=UTC), 3)
    steps = list(generate(seed=7, clients=40, months=3, start=first, until=until))
    occurred = [c.occurred_at for s in steps for c in s.commands]
    assert all(t is not None and t < until for t in occurred)
    assert max(occurred) > until - timedelta(days=4)  # active up to the last days
    planned = {c.month for s in steps for c in s.commands if isinstance(c, SetPaymentPlan)}
    assert planned == {"2026-09", "2026-10", "2026-11"}
    paid = [c for s in steps for c in s.commands if isinstance(c, ReceivePayment)
            and c.occurred_at is not None and c.occurred_at >= datetime(2026, 11, 1, tzinfo=UTC)]
    assert paid
    # The same until gives the same history; without it, the generator is what it was.
    again = list(generate(seed=7, clients=40, months=3, start=first, until=until))
    assert [(s.at, [c.model_dump_json() for c in s.commands]) for s in again] == [
        (s.at, [c.model_dump_json() for c in s.commands]) for s in steps]
    full = list(generate(seed=7, clients=40, months=3, start=first))
    assert max(c.occurred_at for s in full for c in s.commands  # type: ignore[type-var]
               ) >= until
    try:
        list(generate(seed=7, clients=40, months=3, start=first,
                      until=datetime(2027, 1, 2, tzinfo=UTC)))
    except ValueError as error:
        assert "until" in str(error)
    else:
        raise AssertionError("an until past start + months was accepted")


def test_cli_demo_ends_today_by_default_so_the_current_month_has_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/today.db"
    done = CliRunner().invoke(cli, ["demo", "--clients", "30", "--months", "2"],
                              env={"CRM_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    now = datetime.now(UTC)
    container = build(Settings(database_url=url), start_follower=False)
    try:
        notes = container.app.recorder.select_notifications(start=1, limit=1_000_000)
        occurred = [container.app.mapper.to_domain_event(n).occurred_at for n in notes]
        assert max(occurred) <= now
        assert max(occurred) > now - timedelta(days=7)  # a week always holds working days
        with container.engine.connect() as conn:
            body = payments_view(conn, period=None, month=None, at=now, as_of=None, tz="UTC")
        assert body["period"] == f"{now:%Y-%m}"
        if now.day > 1:
            assert body["totals"] and body["totals"][0]["plan"] is not None
    finally:
        container.close()


def test_cli_demo_until_fixes_the_last_day(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/fixed.db"
    last = datetime.now(UTC).date() - timedelta(days=40)
    done = CliRunner().invoke(cli, ["demo", "--clients", "20", "--months", "1", "--until",
                                    last.isoformat()], env={"CRM_DATABASE_URL": url})
    assert done.exit_code == 0, done.output
    container = build(Settings(database_url=url), start_follower=False)
    try:
        notes = container.app.recorder.select_notifications(start=1, limit=1_000_000)
        occurred = [container.app.mapper.to_domain_event(n).occurred_at for n in notes]
        assert min(occurred) >= datetime(last.year, last.month, 1, tzinfo=UTC) - timedelta(
            hours=1)
        assert max(occurred) < datetime.combine(last + timedelta(days=1), datetime.min.time(),
                                                tzinfo=UTC)
    finally:
        container.close()
    later = (datetime.now(UTC).date() + timedelta(days=2)).isoformat()
    refused = CliRunner().invoke(cli, ["demo", "--until", later],
                                 env={"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/y.db"})
    assert refused.exit_code == 2 and "after today" in refused.output
