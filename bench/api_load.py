"""Benchmark 2, the API: concurrent httpx clients against `crm serve` and a bare FastAPI app.

Both servers run as subprocesses on 127.0.0.1 with one uvicorn worker and the same log level,
started and stopped by the bench, one at a time, on the same machine as the load generator
(asyncio + httpx, `CLIENTS` concurrent clients, a fixed number of requests per route, capped in
time). Latency is measured by the client, per request, from send to the end of the body.
Routes: POST a contact, GET a random client's card, GET the card `as_of` of the client with
1,000 events, and every `GET /v1/reports/*` the server's OpenAPI lists: its default view, then
each filter it has on its own (`FILTERS`: specialist, period, kind, segment, stage, a past `at`,
a past `as_of`; values probed from the history by `probe`), and every controls section page.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import httpx

from bench.audit import Heavy
from bench.backends import Store
from bench.figures import LOWER, Bars, Row, percentile
from infra.settings import Settings

CLIENTS = 8
WRITES = 300
READS = 400
AS_OF_READS = 100
SEQUENTIAL_READS = 200
REPORT_READS = 20  # per report route and filter (capped by ROUTE_SECONDS)
REPORT_CLIENTS = 2  # a report is heavy: two at a time, not eight
ROUTE_SECONDS = 8.0  # stop issuing a route's requests after this long
TIMEOUT = 30.0  # a request taking longer counts as failed
REPORT_TIMEOUT = 30.0
# Values for required query parameters of report routes (the history's last month).
REPORT_PARAMS = {"month": "2026-06"}
# Each report's filters, one variant each (names of `Probe` fields in braces are filled in).
FILTERS: dict[str, tuple[tuple[str, dict[str, str]], ...]] = {
    "/v1/reports/controls": (
        ("specialist", {"specialist": "{specialist}"}), ("past at", {"at": "{middle}"}),
        ("past as_of", {"as_of": "{middle_recorded}"})),
    "/v1/reports/reaction-times": (
        ("from-to", {"from": "{month_start}", "to": "{month_end}"}),
        ("kind", {"kind": "complaint"}), ("specialist", {"specialist": "{specialist}"}),
        ("calendar current", {"calendar": "current"}), ("past at", {"at": "{middle}"}),
        ("past as_of", {"as_of": "{middle_recorded}"})),
    "/v1/reports/segments": (
        ("segment", {"segment": "at_risk"}), ("past at", {"at": "{middle}"}),
        ("past as_of", {"as_of": "{middle_recorded}"})),
    "/v1/reports/satisfaction": (
        ("from-to", {"from": "{month_start}", "to": "{month_end}"}),
        ("specialist", {"specialist": "{specialist}"}), ("past at", {"at": "{middle}"}),
        ("past as_of", {"as_of": "{middle_recorded}"})),
    "/v1/reports/payments": (
        ("specialist", {"specialist": "{specialist}"}), ("past at", {"at": "{middle}"}),
        ("past as_of", {"as_of": "{middle_recorded}"}),
        ("debtors oldest due", {"debtors_sort": "oldest_due"})),
}
CONTROL_SECTIONS = ("overdue_planned_contacts", "late_data_entry", "card_completeness",
                    "overdue_agreements", "work_without_feedback")


@dataclass(frozen=True)
class Probe:
    """Filter values taken from the history: its busiest specialist, the middle of its business
    time and of its record time, and a month inside it."""

    specialist: str
    middle: str
    middle_recorded: str
    month_start: str
    month_end: str

    def fill(self, params: dict[str, str]) -> dict[str, str]:
        return {k: v.format(**self.__dict__) for k, v in params.items()}


def probe(engine: Any) -> Probe | None:
    """Read the filter values from the read models (None on an empty history)."""
    from sqlalchemy import func, select

    from projections.activity import contacts
    from projections.clients import client_index

    with engine.connect() as conn:
        k = contacts.c
        first, last, r_first, r_last = conn.execute(select(
            func.min(k.occurred_at), func.max(k.occurred_at), func.min(k.recorded_at),
            func.max(k.recorded_at))).one()
        busiest = conn.execute(
            select(client_index.c.specialist_id, func.count().label("n"))
            .where(client_index.c.specialist_id.is_not(None))
            .group_by(client_index.c.specialist_id).order_by(func.count().desc()).limit(1)
        ).first()
    if first is None or busiest is None:
        return None
    middle = first + (last - first) / 2
    start = middle.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return Probe(str(busiest.specialist_id), middle.isoformat(),
                 (r_first + (r_last - r_first) / 2).isoformat(), start.isoformat(),
                 end.isoformat())

ROOT = Path(__file__).resolve().parents[1]  # the checkout: servers import api and bench from it
Request = tuple[str, str, dict[str, Any] | None]  # method, path with query, JSON body


@dataclass(frozen=True)
class Load:
    sent: int
    seconds: float
    latencies_ms: list[float]
    errors: dict[str, int]  # status (or "timeout") -> count, for answers >= 400
    cpu_ms: float | None = None  # server CPU time per request, when measured

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds else 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Served:
    base: str  # http://127.0.0.1:port
    pid: int  # for a profiler to attach to


@contextmanager
def server(command: list[str], env: dict[str, str], log: Path, port: int,
           timeout: float = 180) -> Iterator[Served]:
    """A server subprocess of ours, yielded once /healthz answers; stopped after."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}); see {log}:\n"
                                   + log.read_text()[-2000:])
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not answer within {timeout:.0f} s")
            time.sleep(0.2)
        settle(process.pid)
        yield Served(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pid: int, busy: float = 0.05, window: float = 1.0, timeout: float = 300) -> None:
    """Wait until the server is idle (under `busy` of a core over `window`): `crm serve` scans
    every open situation for alerts when it starts, which would otherwise share the first
    measured seconds."""
    if not Path(f"/proc/{pid}/stat").exists():
        return
    deadline = time.monotonic() + timeout
    before = cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(window)
        now = cpu_seconds(pid)
        if now - before < busy * window:
            return
        before = now


def drive(base: str, token: str | None, requests: Sequence[Request],
          advance: Callable[[int], None] | None = None, *, clients: int = CLIENTS,
          timeout: float = TIMEOUT, pid: int | None = None) -> Load:
    """Send `requests` from `clients` concurrent connections. With `pid`, wait for the server to
    be idle again afterwards (a request the client gave up on still runs there and would load
    the next route) and give the server's CPU time per request, that tail included."""
    before = cpu_seconds(pid) if pid else 0.0
    load = asyncio.run(_drive(base, token, requests, advance, clients, timeout))
    if pid:
        settle(pid)
        if load.sent:
            load = replace(load, cpu_ms=(cpu_seconds(pid) - before) * 1000 / load.sent)
    return load


async def _drive(base: str, token: str | None, requests: Sequence[Request],
                 advance: Callable[[int], None] | None, clients: int, timeout: float) -> Load:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    errors: dict[str, int] = {}
    queue = iter(requests)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits,
                                 timeout=timeout) as client:
        # Warm up (connection, statement caches) outside the measurement.
        method, path, body = requests[0]
        with contextlib.suppress(httpx.TimeoutException):
            await client.request(method, path, json=body)
        start = time.perf_counter()
        stop_at = start + ROUTE_SECONDS

        async def worker() -> None:
            for method, path, body in queue:
                if time.perf_counter() > stop_at:
                    return
                sent = time.perf_counter()
                try:
                    response = await client.request(method, path, json=body)
                    failed = str(response.status_code) if response.status_code >= 400 else None
                except httpx.TimeoutException:
                    failed = "timeout"
                latencies.append((time.perf_counter() - sent) * 1000)
                if failed is not None:
                    errors[failed] = errors.get(failed, 0) + 1
                if advance is not None:
                    advance(1)

        await asyncio.gather(*(worker() for _ in range(clients)))
        seconds = time.perf_counter() - start
    return Load(len(latencies), seconds, latencies, errors)


@dataclass(frozen=True)
class Route:
    name: str
    requests: list[Request]
    note: str
    baseline: str  # "write", "read" or "read1": which bare run it is compared with
    clients: int = CLIENTS
    timeout: float = TIMEOUT


def _rows(route: Route, backend: str, ours: Load, bare: Load) -> list[Row]:
    err = "".join(f"; {n} answered {status}" for status, n in sorted(ours.errors.items()))
    cpu = ""
    if ours.cpu_ms is not None and bare.cpu_ms is not None:
        cpu = f"; server CPU {ours.cpu_ms:.1f} ms/request (bare {bare.cpu_ms:.1f})"
    detail = f"{ours.sent} requests, {route.clients} clients{err}{cpu}; {route.note}"
    return [
        Row(f"{route.name} req/s", backend, ours.rate, bare.rate, "req/s", detail),
        Row(f"{route.name} p50", backend, percentile(ours.latencies_ms, 50),
            percentile(bare.latencies_ms, 50), "ms", "client-side latency", better=LOWER),
        Row(f"{route.name} p99", backend, percentile(ours.latencies_ms, 99),
            percentile(bare.latencies_ms, 99), "ms", "client-side latency", better=LOWER),
    ]


def _report_routes(base: str, token: str) -> list[str]:
    spec = httpx.get(f"{base}/openapi.json", timeout=30).json()
    paths = []
    for path, ops in sorted(spec.get("paths", {}).items()):
        if not path.startswith("/v1/reports/") or "get" not in ops or "{" in path:
            continue
        required = [p["name"] for p in ops["get"].get("parameters", [])
                    if p.get("required") and p.get("in") == "query"]
        if any(name not in REPORT_PARAMS for name in required):
            continue
        query = "&".join(f"{n}={REPORT_PARAMS[n]}" for n in required)
        paths.append(f"{path}?{query}" if query else path)
    return paths


def _report_requests(paths: Sequence[str], found: Probe | None) -> list[tuple[str, str]]:
    """(figure name, path with query) per report route: default view, each filter, and the
    controls section pages."""
    out = []
    for path in paths:
        route = path.split("?")[0]
        out.append((f"GET {route}", path))
        if found is None:
            continue
        glue = "&" if "?" in path else "?"
        for label, params in FILTERS.get(route, ()):
            query = "&".join(f"{n}={quote(v)}" for n, v in found.fill(params).items())
            out.append((f"GET {route} [{label}]", f"{path}{glue}{query}"))
        if route == "/v1/reports/controls":
            for section in CONTROL_SECTIONS:
                out.append((f"GET /v1/reports/controls/{section}",
                            f"/v1/reports/controls/{section}"))
    return out


def run(store: Store, client_ids: Sequence[UUID], heavy: Heavy | None,
        bars: Bars, found: Probe | None = None) -> list[Row]:
    b = store.backend
    token = f"crm_bench{secrets.token_hex(4)}_{secrets.token_urlsafe(24)}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    if "rate_limit_per_minute" in Settings.model_fields:
        # The bench measures capacity; the per-key limiter would answer 429 to one busy key.
        env["CRM_RATE_LIMIT_PER_MINUTE"] = "0"
    env |= store.env() | {"CRM_BOOTSTRAP_ADMIN_KEY": token, "CRM_LOG_LEVEL": "warning",
                          "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                                     env.get("PYTHONPATH")]))}
    pick = _picker(client_ids)
    contact: dict[str, Any] = {"channel": "phone", "direction": "inbound",
                               "topic": "Bench call", "summary": "asked about the invoice"}
    writes: list[Request] = [("POST", f"/v1/clients/{pick(i)}/contacts", contact)
                             for i in range(WRITES)]
    reads: list[Request] = [("GET", f"/v1/clients/{pick(i)}/card", None) for i in range(READS)]
    port = free_port()
    command = [sys.executable, "-c", "from api.cli import main; main()", "serve",
               "--host", "127.0.0.1", "--port", str(port)]
    routes = [
        Route("POST contact", writes, "POST /v1/clients/{id}/contacts (1 event each)", "write"),
        Route("GET card", reads, f"random client of {len(client_ids):,}", "read"),
        Route("GET card (1 client)", reads[:SEQUENTIAL_READS],
              "one request at a time: latency without queueing", "read1", clients=1),
    ]
    if heavy is not None:
        as_of = quote(heavy.middle_recorded_at.isoformat())
        routes.append(Route(
            "GET card as_of, 1,000-event client",
            [("GET", f"/v1/clients/{heavy.client_id}/card?as_of={as_of}", None)] * AS_OF_READS,
            "as_of: recorded time half-way through its events", "read"))
    loads: dict[str, Load] = {}
    with server(command, env, store.folder / "serve.log", port) as served:
        for name, path in _report_requests(_report_routes(served.base, token), found):
            routes.append(Route(name, [("GET", path, None)] * REPORT_READS,
                                f"{path}; {REPORT_CLIENTS} clients, at most {ROUTE_SECONDS:.0f} s",
                                "read", clients=REPORT_CLIENTS, timeout=REPORT_TIMEOUT))
        for route in routes:
            with bars.task(f"{b}: API {route.name}", len(route.requests)) as advance:
                loads[route.name] = drive(served.base, token, route.requests, advance,
                                          clients=route.clients, timeout=route.timeout,
                                          pid=served.pid)
    port = free_port()
    command = [sys.executable, "-m", "bench.bare", "--port", str(port), "--log-level", "warning"]
    bare: dict[str, Load] = {}
    with server(command, env, store.folder / "bare.log", port) as served:
        for kind, requests, clients in (
                ("write", [("POST", "/const", contact)] * WRITES, CLIENTS),
                ("read", [("GET", "/const", None)] * READS, CLIENTS),
                ("read1", [("GET", "/const", None)] * SEQUENTIAL_READS, 1)):
            with bars.task(f"{b}: API bare {kind}", len(requests)) as advance:
                bare[kind] = drive(served.base, None, requests, advance, clients=clients,
                                   pid=served.pid)
    rows: list[Row] = []
    for route in routes:
        rows += _rows(route, b, loads[route.name], bare[route.baseline])
    return rows


def _picker(ids: Sequence[UUID]) -> Callable[[int], UUID]:
    import random

    rng = random.Random(len(ids))
    chosen = [rng.choice(ids) for _ in range(max(WRITES, READS))]
    return lambda i: chosen[i % len(chosen)]
