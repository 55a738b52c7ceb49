"""`crm bench`: a tiny ingest run prints a JSON row per figure with ours, baseline and ratio."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from api.cli import cli

INGEST_FIGURES = {
    "ingest batched vs raw executemany", "ingest batched vs naive library",
    "ingest sequential vs raw insert", "ingest sequential vs naive library",
}


def test_bench_ingest_json_has_ours_baseline_and_ratio_per_figure_on_both_backends() -> None:
    result = CliRunner().invoke(cli, ["bench", "--events", "2000", "--only", "ingest", "--json"])

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["events"] == 2000
    assert data["config"]["only"] == ["ingest"]
    rows = data["rows"]
    assert {(r["backend"], r["figure"]) for r in rows} == {
        (backend, figure) for backend in ("sqlite", "postgres") for figure in INGEST_FIGURES}
    for row in rows:
        assert row["ours"] > 0 and row["baseline"] > 0 and row["ratio"] > 0, row
        assert abs(row["ratio"] - row["ours"] / row["baseline"]) < 1e-9 * row["ratio"]
        assert row["unit"] == "events/s"


def test_bench_refuses_an_unknown_benchmark_name() -> None:
    result = CliRunner().invoke(cli, ["bench", "--only", "nonsense", "--json"])

    assert result.exit_code == 2
    assert ("--only: one of ingest, rebuild, audit, api, bus, scaling, not 'nonsense'"
            in result.output)
