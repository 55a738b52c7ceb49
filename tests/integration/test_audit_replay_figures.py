"""Issue 17.5: `crm audit replay --file F` prints the reaction-time figures rebuilt from the export
alone, and they equal the live service's report (GET /v1/reports/reaction-times) for the same
range and moments."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from api.cli import cli
from infra.export import export_lines
from infra.settings import Settings
from tests.reaction_support import Desk, berlin, berlin_container
from tests.support import TEST_MASTER_KEY, Api


def _history(desk: Desk) -> None:
    """Situations of two specialists and two kinds: met, breached, paused, reopened, running,
    one entered late, a holiday declared after the fact (so the bases differ)."""
    desk.sla(berlin(3, 2, 8), "complaint", first_reaction=3600, resolution=8 * 3600)
    ann, bob = desk.specialist("Ann"), desk.specialist("Bob")
    first, second, third = desk.client(ann), desk.client(bob), desk.client(ann)
    met = desk.complaint(first, berlin(3, 3, 10))
    desk.contact(first, met, berlin(3, 3, 10, 30))
    desk.resolve(met, berlin(3, 3, 15))
    late = desk.complaint(second, berlin(3, 4, 9), entered_after=timedelta(hours=2))
    desk.acknowledge(late, berlin(3, 4, 13))
    desk.pause(late, berlin(3, 4, 14))
    desk.resume(late, berlin(3, 5, 10))
    desk.resolve(late, berlin(3, 6, 17))
    desk.reopen(late, berlin(3, 9, 9))
    desk.resolve(late, berlin(3, 9, 11))
    churn = desk.manual(third, "churn_threat", berlin(3, 10, 11))
    desk.acknowledge(churn, berlin(3, 10, 16))
    desk.complaint(third, berlin(3, 11, 17))  # still running at the end
    desk.calendar(berlin(3, 12, 9), holidays=[date(2026, 3, 5)])
    desk.clock.set(berlin(3, 12, 12))
    desk.settle()


def _replay(exported: Path, url: str, *options: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["audit", "replay", "--file", str(exported), "--json",
                                      *options],
                                env={"CRM_DATABASE_URL": url, "CRM_MASTER_KEY": TEST_MASTER_KEY,
                                     "CRM_TIMEZONE": "Europe/Berlin"})
    assert result.exit_code == 0, result.output
    return json.loads(next(x for x in result.output.splitlines() if x.startswith("{")))


def test_replayed_reaction_figures_equal_the_live_report_for_the_same_range(
        tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crm.db"
    settings = Settings(database_url=url, master_key=TEST_MASTER_KEY)
    with berlin_container(settings, berlin(3, 1, 9)) as (container, clock):
        _history(Desk(container, clock))
        exported = tmp_path / "history.jsonl"
        exported.write_bytes(b"\n".join(export_lines(container, with_keys=True)))
        head_time = json.loads(exported.read_bytes().splitlines()[-1])["time"]
        api = Api(container)
        live_full = api.ok("GET", "/v1/reports/reaction-times", as_="auditor", params={
            "at": head_time, "as_of": head_time, "all_ids": "true"})
        ranged = {"from": "2026-03-04T00:00:00+01:00", "to": "2026-03-11T00:00:00+01:00",
                  "at": "2026-03-11T12:00:00+01:00", "as_of": "2026-03-12T12:00:00+01:00",
                  "calendar": "current"}
        live_ranged = api.ok("GET", "/v1/reports/reaction-times", as_="auditor",
                             params={**ranged, "all_ids": "true"})

    # Default moments: the export's signed head (when it was made), every situation.
    full = _replay(exported, url)["reaction_times"]
    assert full == live_full
    totals = full["totals"]
    assert totals["count"] == 4 and totals["first_reaction"]["breached"] >= 1
    assert totals["resolution"]["stopped"] == 2 and totals["first_reaction"]["stopped"] == 3
    assert {g["kind"] for g in full["groups"]} == {"complaint", "churn_threat"}
    assert full["totals"]["resolution"]["business_seconds"]["median"] is not None

    # A range and moments of the caller's choosing, on today's calendar (the late holiday).
    chosen = _replay(exported, url, *[f"--{k.replace('_', '-')}={v}"
                                      for k, v in ranged.items()])["reaction_times"]
    assert chosen == live_ranged
    assert chosen != full and chosen["totals"]["count"] == 2


def test_replay_refuses_an_instant_without_an_offset(tmp_path: Path) -> None:
    exported = tmp_path / "empty.jsonl"
    exported.write_text("{}\n")
    result = CliRunner().invoke(cli, ["audit", "replay", "--file", str(exported),
                                      "--at", "2026-03-09T10:00:00"],
                                env={"CRM_DATABASE_URL": f"sqlite:///{tmp_path}/crm.db"})
    assert result.exit_code == 2 and "--at" in result.output and "offset" in result.output
