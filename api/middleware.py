"""Cross-cutting HTTP protections: body size limit, security headers, CORS, per-key rate limit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import problem

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# The interactive docs load Swagger UI's scripts; everything else is data only.
API_CSP = "default-src 'none'; frame-ancestors 'none'"


class BodyLimit:
    """Refuses bodies over the limit with 413 before reading them into memory (also when the
    client sends no Content-Length and streams)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        # Buffer the body up to the limit (it is small by then), so an oversized stream is
        # refused before any route parses it.
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.limit:
                await self._refuse(scope, receive, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(413, f"the request body is larger than {self.limit} bytes")
        await response(scope, receive, send)


class RateLimiter:
    """A token bucket per API key: `rate` requests a minute, bursts up to a tenth of it."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(per_minute / 10.0, 10.0)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when allowed, else the seconds to wait."""
        if self.rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate


class SecurityHeaders:
    """Adds SECURITY_HEADERS (and the API's Content-Security-Policy) to every answer that does
    not set them itself. Plain ASGI: it only edits the start message on its way out (Starlette's
    BaseHTTPMiddleware ran each request in a task of its own and streamed the body through a
    queue, a tenth of a card request's CPU)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._common = [(name.lower().encode(), value.encode())
                        for name, value in SECURITY_HEADERS.items()]
        self._csp = (b"content-security-policy", API_CSP.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        wanted = list(self._common)
        if not scope["path"].startswith(("/docs", "/redoc")):
            wanted.append(self._csp)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _value in headers}
                headers.extend(pair for pair in wanted if pair[0] not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, *, max_body_bytes: int, cors_origins: list[str]) -> None:
    app.add_middleware(SecurityHeaders)
    if cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=cors_origins, allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Idempotency-Key",
                                          "If-Match", "X-API-Key"],
                           expose_headers=["ETag", "Idempotent-Replayed", "Retry-After"])
    app.add_middleware(BodyLimit, limit=max_body_bytes)
