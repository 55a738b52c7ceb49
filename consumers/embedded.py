"""Embedded mode: an in-process follower of the store's notification log feeding the projections.

Woken after every save in this process; it also polls, so writes made by other processes on the
same store (a second API worker, `crm demo`) are picked up within a second.
"""

from __future__ import annotations

import logging
import threading
import time

from projections.base import Runner

log = logging.getLogger(__name__)
POLL_SECONDS = 1.0


class EmbeddedFollower:
    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._progress = threading.Condition()
        self._position = runner.position()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.failures = 0

    @property
    def position(self) -> int:
        return self._position

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="projection-follower",
                                        daemon=True)
        self._thread.start()

    def notify(self, _position: int, _events: object = None) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def wait_for(self, position: int, timeout: float) -> bool:
        """Block until the projections have applied `position` (read-your-writes), or time out."""
        deadline = time.monotonic() + timeout
        self._wake.set()
        with self._progress:
            while self._position < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return True

    def run_once(self) -> int:
        applied = self.runner.catch_up()
        with self._progress:
            self._position = self.runner.position()
            self._progress.notify_all()
        return applied

    def start_up(self) -> None:
        """Catch up before serving. Never fails the start: an event a projection cannot apply
        is parked by the runner; anything else (the database away) is reported on /readyz
        and retried by the loop."""
        try:
            self.run_once()
        except Exception as error:
            self.failures += 1
            self.last_error = f"{type(error).__name__}: {error}"
            log.exception("catching up at start failed; the follower retries")

    def _loop(self) -> None:
        backoff = POLL_SECONDS
        while not self._stop.is_set():
            self._wake.wait(backoff)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_once()
                self.last_error = None
                backoff = POLL_SECONDS
            except Exception as error:  # a projection bug must not kill the follower silently
                self.failures += 1
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("projection follower failed; retrying")
                backoff = min(backoff * 2, 30.0)
