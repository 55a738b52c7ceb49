"""A full disk gives 503 problem+json, not corruption: every acknowledged write is intact, the
hash chain verifies, reads keep working, and writes succeed again once there is space."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import build
from infra.chain import verify_store
from infra.settings import Settings
from tests.support import TEST_MASTER_KEY, Api, store_count

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (root can mount one on these machines; CI runs as root)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"cannot mount a small tmpfs: {done.stderr}"
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_answers_503_and_corrupts_nothing(small_disk: Path) -> None:
    container = build(Settings(database_url=f"sqlite:///{small_disk}/crm.db",
                               master_key=TEST_MASTER_KEY, rate_limit_per_minute=0))
    try:
        api = Api(container)
        acked = []
        status = 201
        for i in range(5000):
            response = api.post("/v1/clients", {"kind": "customer", "form": "person",
                                                "name": f"client {i}", "tags": ["x" * 40] * 20})
            status = response.status_code
            if status != 201:
                break
            acked.append(response.json()["id"])
        assert status == 503, status
        assert response.headers["content-type"].startswith("application/problem+json")
        assert len(acked) > 5
        assert verify_store(container.app).ok
        registered = store_count(container)
        assert registered == len(acked)  # nothing half-written, nothing lost
        assert api.get(f"/v1/clients/{acked[0]}/events").status_code == 200
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        again = api.post("/v1/clients", {"kind": "customer", "form": "person", "name": "more"})
        assert again.status_code == 201, again.text
        assert verify_store(container.app).ok
    finally:
        container.close()
