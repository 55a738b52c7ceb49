"""API keys: random secrets shown once, stored as SHA-256 hashes, revocable at once.

A key reads `crm_<key id>_<secret>`. The id finds the row; only the hash of the secret is kept,
compared in constant time. Secrets are 32 random bytes, so a plain hash (no slow KDF) is the
standard practice for such tokens.

Every request verifies its key, so the rows are cached per process for at most `CACHE_SECONDS`:
a key revoked by another process (`crm keys revoke`, another API replica) stops working within
that time; one revoked through this process stops at once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, DateTime, Engine, MetaData, String, Table, insert, select, update

from domain.values import Role

metadata = MetaData()
api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(32), primary_key=True),
    Column("secret_sha256", String(64), nullable=False),
    Column("user_id", String(100), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)


CACHE_SECONDS = 1.0
CACHE_ENTRIES = 10_000  # key ids, known or not (unknown ones are cached too, bounded)


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    key_id: str


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(token: str) -> tuple[str, str] | None:
    parts = token.split("_", 2)  # the secret itself may contain "_"
    if len(parts) != 3 or parts[0] != "crm" or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


class KeyStore:
    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.monotonic,
                 cache_seconds: float = CACHE_SECONDS) -> None:
        self._engine = engine
        self._clock = clock
        self._ttl = cache_seconds
        # key id -> (when read, (secret hash, principal) or None for no usable key)
        self._cache: OrderedDict[str, tuple[float, tuple[str, Principal] | None]] = \
            OrderedDict()
        self._lock = threading.Lock()
        metadata.create_all(engine)

    def create(self, user_id: str, role: Role, now: datetime, token: str | None = None) -> str:
        """Store a new key (or the given token, for CRM_BOOTSTRAP_ADMIN_KEY); return it once."""
        if token is None:
            token = f"crm_{secrets.token_hex(8)}_{secrets.token_urlsafe(32)}"
        parts = _split(token)
        if parts is None:
            raise ValueError("a key reads crm_<id>_<secret>")
        key_id, secret = parts
        with self._engine.begin() as conn:
            conn.execute(insert(api_keys).values(
                key_id=key_id, secret_sha256=_hash(secret), user_id=user_id, role=str(role),
                created_at=now))
        self.forget(key_id)
        return token

    def verify(self, token: str) -> Principal | None:
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        found = self._known(key_id)
        if found is None:
            return None
        digest, principal = found
        if not hmac.compare_digest(digest, _hash(secret)):
            return None
        return principal

    def verify_cached(self, token: str) -> tuple[bool, Principal | None]:
        """(True, what `verify` would answer) when that needs no query, else (False, None)."""
        parts = _split(token)
        if parts is None:
            return True, None
        key_id, secret = parts
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is None or now - cached[0] >= self._ttl:
                return False, None
        found = cached[1]
        if found is None or not hmac.compare_digest(found[0], _hash(secret)):
            return True, None
        return True, found[1]

    def _known(self, key_id: str) -> tuple[str, Principal] | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key_id)
            if cached is not None and now - cached[0] < self._ttl:
                self._cache.move_to_end(key_id)
                return cached[1]
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        found = None
        if row is not None and row.revoked_at is None:
            found = (row.secret_sha256,
                     Principal(user_id=row.user_id, role=Role(row.role), key_id=key_id))
        with self._lock:
            self._cache[key_id] = (now, found)
            self._cache.move_to_end(key_id)
            while len(self._cache) > CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return found

    def forget(self, key_id: str | None = None) -> None:
        """Drop cached key rows (one, or all): the next request reads them again."""
        with self._lock:
            if key_id is None:
                self._cache.clear()
            else:
                self._cache.pop(key_id, None)

    def revoke(self, key_id: str, now: datetime) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(update(api_keys).where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(
                revoked_at=now))
        self.forget(key_id)  # at once in this process; others within CACHE_SECONDS
        return bool(done.rowcount)

    def has_admin(self) -> bool:
        with self._engine.connect() as conn:
            return conn.execute(select(api_keys.c.key_id).where(
                api_keys.c.role == "admin", api_keys.c.revoked_at.is_(None))).first() is not None

    def list(self) -> list[dict[str, object]]:
        with self._engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(
                select(api_keys.c.key_id, api_keys.c.user_id, api_keys.c.role,
                       api_keys.c.created_at, api_keys.c.revoked_at))]
