"""Console sessions: an API key exchanged for a random session id held in an HttpOnly cookie.

The key itself never goes back to the browser: the server keeps it beside the session (in this
process's memory) and checks it again on every request, so a revoked key ends its sessions at
once and every page sees the same principal and role the API would. Each session has a CSRF
token that every form posting to the console carries; before sign-in a short-lived token in its
own cookie protects the sign-in form the same way (double submit).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request, Response

SESSION_COOKIE = "crm_console"
PRE_COOKIE = "crm_console_pre"  # the sign-in form's CSRF token, before any session exists
COOKIE_PATH = "/console"
IDLE_SECONDS = 8 * 3600  # a session unused this long is over
MAX_SECONDS = 12 * 3600  # and none lasts longer than this
MAX_SESSIONS = 10_000  # the oldest are dropped beyond this (memory stays bounded)


@dataclass
class Session:
    id: str
    key: str  # the API key it was opened with; re-verified on every request
    csrf: str
    user_id: str
    role: str
    created: float
    seen: float
    flash: list[str] = field(default_factory=list)


class SessionStore:
    """Sessions of this process (a restart signs everyone out)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def open(self, key: str, user_id: str, role: str) -> Session:
        now = self._clock()
        session = Session(id=secrets.token_urlsafe(32), key=key, csrf=secrets.token_urlsafe(32),
                          user_id=user_id, role=role, created=now, seen=now)
        with self._lock:
            self._expire(now)
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions.values(), key=lambda s: s.seen)
                del self._sessions[oldest.id]
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.seen > IDLE_SECONDS or now - session.created > MAX_SECONDS:
                del self._sessions[session_id]
                return None
            session.seen = now
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.pop(session_id or "", None)

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions)

    def _expire(self, now: float) -> None:
        stale = [s.id for s in self._sessions.values()
                 if now - s.seen > IDLE_SECONDS or now - s.created > MAX_SECONDS]
        for session_id in stale:
            del self._sessions[session_id]


def same(expected: str, given: Any) -> bool:
    """Constant-time comparison of a CSRF token with what a form sent."""
    return isinstance(given, str) and bool(given) and hmac.compare_digest(expected, given)


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def drop_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(name, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
