"""The API bench times every report route's default view and each of its filters (issue 16.5):
every request it sends is one the service answers with 200 on a real history, every report
route the OpenAPI lists has its filters, and the report goal judges each p99 row."""

from __future__ import annotations

from typing import Any

from bench import ingest
from bench.api_load import CONTROL_SECTIONS, FILTERS, _report_requests, probe
from bench.figures import LOWER, Row
from bench.goals import judge
from bench.history import History
from tests.support import Api


def test_every_report_filter_the_bench_sends_is_answered(api: Api) -> None:
    ingest.write_history(api.container, History(1500, 40, seed=3), ingest.BATCH)
    api.container.runner.catch_up()
    found = probe(api.container.engine)
    assert found is not None
    spec: dict[str, Any] = api.get("/openapi.json", as_="admin").json()
    listed = sorted(p for p, ops in spec["paths"].items()
                    if p.startswith("/v1/reports/") and "get" in ops and "{" not in p)
    assert sorted(FILTERS) == listed  # every report route has its filters in the bench
    requests = _report_requests(listed, found)
    assert len(requests) == len(listed) + sum(map(len, FILTERS.values())) + len(
        CONTROL_SECTIONS)
    for name, path in requests:
        response = api.get(path, as_="admin")
        assert response.status_code == 200, (name, path, response.text[:300])


def test_the_report_goal_judges_every_filter_row() -> None:
    rows = [Row("GET /v1/reports/controls [past as_of] p99", "sqlite", 250.0, 1.0, "ms", "",
                better=LOWER),
            Row("GET /v1/reports/controls/late_data_entry p99", "sqlite", 20.0, 1.0, "ms", "",
                better=LOWER)]
    judged = judge(rows)
    assert [r.met for r in judged] == [False, True]
