"""The console in a real browser: Debian's chromium driven by Playwright, against `crm serve`.

The browser is installed here when missing (`apt-get install chromium chromium-driver`; these
tests run as root in CI): no browser is downloaded by Playwright. A browser that still cannot
start fails the tests; they are never skipped.

Screenshots of every page go to one folder, named at the end of the run (and in the test
output); set CONSOLE_SCREENSHOTS to choose it (docs/console/ holds the README's).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from demo import Loader, generate
from domain.months import add_months
from domain.values import Role
from infra.bootstrap import build
from infra.settings import Settings
from tests.e2e.server import Server
from tests.support import TEST_MASTER_KEY

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = (["apt-get", "update"], ["apt-get", "install", "-y", "chromium", "chromium-driver"])
DEMO = {"clients": 40, "months": 3, "seed": 11}
_SCREENSHOTS: list[Path] = []


def _install_chromium() -> str:
    """apt-get update, then install chromium; what apt said, for the failure message."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    said = []
    for command in INSTALL:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1500,
                              check=False)
        said.append(f"$ {' '.join(command)} -> {done.returncode}\n{done.stdout[-1500:]}"
                    f"{done.stderr[-1500:]}")
    return "\n".join(said)


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed with apt-get when missing (fails, never skips)."""
    said = ""
    if not CHROMIUM.exists():
        if shutil.which("apt-get") is None:
            pytest.fail(f"{CHROMIUM} is missing and there is no apt-get to install it")
        said = _install_chromium()
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is still missing after installing it:\n{said}")
    return CHROMIUM


# Module scope: Playwright's sync API keeps an event loop in this thread while it is open, which
# the rest of the suite must not see.
@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[Any]:
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=str(chromium), headless=True,
                # Root (CI) has no user namespace sandbox; /dev/shm may be small in containers.
                args=["--no-sandbox", "--disable-dev-shm-usage"])
        except Error as error:
            pytest.fail(f"chromium at {chromium} cannot start: {error}")
        yield launched
        launched.close()


@dataclass
class Console:
    """A served demo history: the server, a key per role, and API clients speaking as them."""

    server: Server
    keys: dict[Role, str]
    client_id: str  # a demo client with a rich history
    work_order_id: str  # a work order closed three days ago: its survey is due
    screenshots: Path

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, role: Role = Role.ADMIN) -> httpx.Client:
        return self.server.client(self.keys[role])

    def get(self, path: str, role: Role = Role.ADMIN, **params: Any) -> Any:
        with self.api(role) as client:
            answer = client.get(path, params={k: v for k, v in params.items() if v is not None})
        assert answer.status_code == 200, (path, answer.status_code, answer.text[:500])
        return answer.json()


def _demo_store(folder: Path) -> tuple[str, dict[Role, str]]:
    """A demo history ending today, loaded through the command layer, and a key per role."""
    url = f"sqlite:///{folder}/crm.db"
    today = datetime.now(UTC).date()
    container = build(Settings(database_url=url, master_key=TEST_MASTER_KEY))
    try:
        Loader(container.app, batch=500).load(generate(
            seed=DEMO["seed"], clients=DEMO["clients"], months=DEMO["months"],
            start=add_months(today, -DEMO["months"])))
        now = datetime.now(UTC)
        keys = {role: container.keys.create(f"{role}-console", role, now) for role in Role}
        container.follower.run_once()
    finally:
        container.close()
    # Replay receipts for the audit page: `crm replay` over the same store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(CRM_DATABASE_URL=url, CRM_MASTER_KEY=TEST_MASTER_KEY)
    done = subprocess.run([sys.executable, "-c", "from api.cli import main; main()", "replay"],
                          env=env, capture_output=True, text=True, timeout=300, check=False,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return url, keys


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Console]:
    folder = tmp_path_factory.mktemp("console")
    url, keys = _demo_store(folder)
    server = Server(url, folder / "serve.log", TEST_MASTER_KEY)
    server.env["CRM_RATE_LIMIT_PER_MINUTE"] = "0"
    server.start()
    shots = Path(os.environ.get("CONSOLE_SCREENSHOTS") or folder / "screenshots").resolve()
    shots.mkdir(parents=True, exist_ok=True)
    try:
        built = Console(server, keys, "", "", shots)
        built.client_id = _rich_client(built)
        built.work_order_id = _due_work_order(built)
        print(f"\nconsole screenshots: {shots}")
        yield built
    finally:
        server.stop()


def _rich_client(console: Console) -> str:
    """The demo client with most events among the first page (a long timeline)."""
    listed = console.get("/v1/clients", limit=40)["items"]
    counts = {c["client_id"]: len(console.get(f"/v1/clients/{c['client_id']}/events",
                                              limit=500)["items"])
              for c in listed if c["kind"] == "customer" and not c["erased"]}
    return max(counts, key=lambda c: counts[c])


def _due_work_order(console: Console) -> str:
    """A visit of the rich client, closed three days ago: the register lists it as due."""
    now = datetime.now(UTC)
    with console.api(Role.OPERATOR) as api:
        opened = api.post("/v1/work-orders", json={
            "client_id": console.client_id, "asset": "Console test car",
            "services": ["Interim service"],
            "stages": ["booking", "reception", "paperwork", "repair_quality", "delivery"],
            "occurred_at": (now.replace(hour=8, minute=0, second=0, microsecond=0)
                            - timedelta(days=3)).isoformat()})
        assert opened.status_code == 201, opened.text
        order = opened.json()["id"]
        closed = api.post(f"/v1/work-orders/{order}/close", json={
            "amount": "120.00", "currency": "GBP",
            "occurred_at": (now.replace(hour=16, minute=0, second=0, microsecond=0)
                            - timedelta(days=3)).isoformat()})
        assert closed.status_code == 200, closed.text
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            due = api.get("/v1/work-orders", params={"survey_status": "due", "limit": 500})
            if any(i["work_order_id"] == order for i in due.json()["items"]):
                return str(order)
            time.sleep(0.1)
    raise AssertionError("the new work order never showed as due")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _SCREENSHOTS:
        folder = _SCREENSHOTS[0].parent
        terminalreporter.write_line(
            f"console screenshots ({len(_SCREENSHOTS)} pages): {folder}")


def remember_screenshot(path: Path) -> None:
    _SCREENSHOTS.append(path)
