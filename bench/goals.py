"""The issue's goals, judged on the rows measured (ratios against their baselines, or figures)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.figures import Row, with_goal

# figure (prefix) -> (goal text, test on the row)
GOALS: tuple[tuple[str, str, Callable[[Row], bool]], ...] = (
    ("ingest batched vs raw executemany", "ratio >= 0.30", lambda r: (r.ratio or 0) >= 0.30),
    ("ingest batched vs naive library", "ratio >= 5", lambda r: (r.ratio or 0) >= 5),
    ("rebuild all projections vs reading events", "ratio >= 0.50",
     lambda r: (r.ratio or 0) >= 0.50),
    ("rebuild peak RSS", "< 1024 MiB (at 1M events)", lambda r: (r.ours or 0) < 1024),
    ("relay vs raw producer", "ratio >= 0.70", lambda r: (r.ratio or 0) >= 0.70),
    # Issue 14's goals (the consumer and lag goals were 0.70 and 250 ms before it).
    ("consumer vs raw consumer", "ratio >= 0.50", lambda r: (r.ratio or 0) >= 0.50),
    ("end-to-end lag p99", "< 100 ms", lambda r: (r.ours or 1e9) < 100),
    # Issue 19: or a profile showing the shared cores as the limit (docs/benchmarks.md).
    ("consumer, 2 processes vs 1", "ratio >= 1.5", lambda r: (r.ratio or 0) >= 1.5),
    ("reading events (decoded) vs raw rows", "ratio >= 0.50", lambda r: (r.ratio or 0) >= 0.50),
    ("GET card (1 client) p99", "< 10 ms (at 100k clients)", lambda r: (r.ours or 1e9) < 10),
    # Issue 16.4: the API's cost over a bare FastAPI route, same run.
    ("POST contact req/s", "ratio >= 0.50", lambda r: (r.ratio or 0) >= 0.50),
    ("GET card req/s", "ratio >= 0.60", lambda r: (r.ratio or 0) >= 0.60),
    ("GET /v1/reports/", "p99 < 200 ms (at 1M events)", lambda r: (r.ours or 1e9) < 200),
)


def judge(rows: Sequence[Row]) -> list[Row]:
    out = []
    for row in rows:
        for prefix, text, test in GOALS:
            if row.figure.startswith(prefix) and row.ours is not None and (
                    not prefix.startswith("GET /v1/reports/") or row.figure.endswith("p99")):
                row = with_goal(row, text, test(row))
                break
        out.append(row)
    return out
