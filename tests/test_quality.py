"""House style as tests: ruff over the whole project, mypy --strict over the product code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["domain", "commands", "projections", "consumers", "api", "infra", "demo"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_ruff_finds_nothing() -> None:
    done = _run("ruff", "check", *PRODUCT, "bench", "tests")
    assert done.returncode == 0, done.stdout[-4000:]


def test_mypy_strict_finds_nothing_in_the_product_code() -> None:
    done = _run("mypy", "--no-incremental")
    assert done.returncode == 0, done.stdout[-4000:]
