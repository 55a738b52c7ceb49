"""Request dependencies: the services of this app instance, and authentication by API key."""

from __future__ import annotations

import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request
from sqlalchemy import BigInteger, Column, Engine, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from starlette.concurrency import run_in_threadpool

from domain.catalogue import jsonable
from domain.values import Role
from projections.personal import Personal

log = logging.getLogger(__name__)


class Principal(Protocol):
    user_id: str
    role: Role


class KeyVerifier(Protocol):
    def verify(self, token: str) -> Any: ...


class WriteMarks:
    """Session consistency (§4, api.consistency): the latest store position acknowledged to
    each API key. A read by that key waits (bounded) until the read models include it.

    Kept in memory for this process; with `engine` (PostgreSQL: any number of API processes
    on one database) also in the `session_marks` table, so a write acknowledged by one process
    is waited for by a read on another."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._lock = threading.Lock()
        self._marks: dict[str, int] = {}
        self._engine = engine
        if engine is not None:
            _marks_metadata.create_all(engine)

    @property
    def shared(self) -> bool:
        """True when reading a mark queries the database (`of` then blocks)."""
        return self._engine is not None

    @staticmethod
    def _key(who: Principal) -> str:
        return str(getattr(who, "key_id", None) or who.user_id)

    def note(self, who: Principal, position: int) -> None:
        key = self._key(who)
        with self._lock:
            if position > self._marks.get(key, 0):
                self._marks[key] = position
        if self._engine is not None:
            try:
                with self._engine.begin() as conn:
                    statement = pg_insert(session_marks).values(key_id=key, position=position)
                    conn.execute(statement.on_conflict_do_update(
                        index_elements=["key_id"],
                        set_={"position": func.greatest(session_marks.c.position,
                                                        statement.excluded.position)}))
            except Exception:  # the write is stored: answer it; this process still knows
                log.warning("could not share the session mark of key %s", key, exc_info=True)

    def of(self, who: Principal) -> int:
        key = self._key(who)
        with self._lock:
            local = self._marks.get(key, 0)
        if self._engine is None:
            return local
        with self._engine.connect() as conn:
            shared = conn.execute(select(session_marks.c.position)
                                  .where(session_marks.c.key_id == key)).scalar()
        return max(local, int(shared or 0))


_marks_metadata = MetaData()
session_marks = Table(
    "session_marks", _marks_metadata,
    Column("key_id", String(100), primary_key=True),
    Column("position", BigInteger, nullable=False),
)


@dataclass
class Services:
    """What routes need, built by the app factory (routers never import infra)."""

    app: Any  # commands.application.CrmApplication
    engine: Any  # sqlalchemy Engine of the read models
    keys: KeyVerifier
    personal: Personal  # opens the sealed personal values read models hold (the keyring)
    wait_for: Callable[[int, float], bool]
    read_wait_seconds: float
    readiness: Callable[[], dict[str, Any]]
    alerts: Any = None  # consumers.alerts.AlertScheduler: clock, reaction policy, alert hub
    audit_verify: Callable[[], Any] | None = None  # walks the hash chains (infra.chain)
    rate_limiter: Any = None  # api.middleware.RateLimiter
    export: Callable[..., Any] | None = None  # infra.export.export_lines over this container
    dead_letters: Any = None  # api.app.DeadLetters: list and re-drive parked events
    marks: WriteMarks = field(default_factory=WriteMarks)  # read-your-writes per API key
    head: Callable[[], int] = lambda: 0  # the store's last position
    # (start, limit) -> [(position, event)] from the store's log, personal fields sealed.
    read_store: Callable[[int, int], Sequence[tuple[int, Any]]] = lambda _s, _l: []
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # the container's clock
    webhook_secrets: Any = None  # consumers.webhooks.SecretStore (the keyring's, sealed)
    webhook_transport: Any = None  # consumers.webhooks.Transport; None: HTTP (urllib)


def reveal(svc: Services, body: Any) -> Any:
    """`body` as JSON with its personal values opened (read models keep them sealed)."""
    return svc.personal.reveal(jsonable(body))


async def services(request: Request) -> Services:
    # async (here and in the other cheap dependencies): a plain `def` dependency runs in the
    # thread pool, one hand-over each, a fifth of a card request's CPU.
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def _token(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


async def principal(request: Request, svc: ServicesDep) -> Principal:
    token = _token(request)
    if not token:
        raise HTTPException(401, "an API key is required (Authorization: Bearer <key>)",
                            headers={"WWW-Authenticate": "Bearer"})
    cached = getattr(svc.keys, "verify_cached", None)
    hit, found = cached(token) if cached is not None else (False, None)
    if not hit:  # the key's row is read from the database: off the event loop
        found = await run_in_threadpool(svc.keys.verify, token)
    if found is None:
        raise HTTPException(401, "the API key is unknown or revoked",
                            headers={"WWW-Authenticate": "Bearer"})
    if svc.rate_limiter is not None:
        wait = svc.rate_limiter.allow(found.key_id)
        if wait > 0:
            raise HTTPException(429, "too many requests for this API key; slow down",
                                headers={"Retry-After": str(max(1, round(wait)))})
    request.state.principal = found
    return found  # type: ignore[no-any-return]


def require(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    allowed = frozenset(roles)

    async def check(who: Annotated[Principal, Depends(principal)]) -> Principal:
        if who.role not in allowed:
            raise HTTPException(403, f"the role {who.role} may not do this; allowed: "
                                     + ", ".join(sorted(allowed)))
        return who

    return check


OPERATE = (Role.OPERATOR, Role.ADMIN)
ADMINISTER = (Role.ADMIN,)
READ_PERSONAL = (Role.OPERATOR, Role.MANAGER, Role.AUDITOR, Role.ADMIN)
AUDIT = (Role.AUDITOR, Role.ADMIN)
READ_REPORTS = (Role.OPERATOR, Role.MANAGER, Role.AUDITOR, Role.ANALYST, Role.ADMIN)

Operator = Annotated[Principal, Depends(require(*OPERATE))]
Admin = Annotated[Principal, Depends(require(*ADMINISTER))]
PersonalReader = Annotated[Principal, Depends(require(*READ_PERSONAL))]
