"""Waiting for the read models to reach a store position, whoever applies them.

In embedded mode the API's own follower applies events and signals its progress
(consumers.embedded). In distributed mode the projection consumers (`crm consume`) apply them
in other processes and record their progress in the tracking rows, in the same transaction as
the rows (projections.base): this waits on those rows. One waiting thread reads them at a time
(every `poll_seconds`); the others wait on its answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TrackedPosition:
    def __init__(self, position: Callable[[], int], poll_seconds: float = 0.01) -> None:
        self._position = position  # the least tracked position of the read models
        self.poll_seconds = poll_seconds
        self._cond = threading.Condition()
        self._seen = 0
        self._polling = False

    def wait_for(self, position: int, timeout: float) -> bool:
        """True once the read models include `position`; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._seen < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                if self._polling:  # another thread reads the position: wait for its answer
                    self._cond.wait(min(remaining, self.poll_seconds))
                    continue
                self._polling = True
                self._cond.release()
                try:
                    seen: int | None = self._position()
                except Exception:  # the database away: wait and read again until the deadline
                    seen = None
                finally:
                    self._cond.acquire()
                    self._polling = False
                if seen is not None and seen > self._seen:
                    self._seen = seen
                self._cond.notify_all()
                if self._seen < position:
                    self._cond.wait(min(max(deadline - time.monotonic(), 0), self.poll_seconds))
            return True
