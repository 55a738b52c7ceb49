"""API keys: random secrets shown once, stored as SHA-256 hashes, revocable at once.

A key reads `crm_<key id>_<secret>`. The id finds the row; only the hash of the secret is kept,
compared in constant time. Secrets are 32 random bytes, so a plain hash (no slow KDF) is the
standard practice for such tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
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
        return token

    def verify(self, token: str) -> Principal | None:
        parts = _split(token)
        if parts is None:
            return None
        key_id, secret = parts
        with self._engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.key_id == key_id)).first()
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.secret_sha256, _hash(secret)):
            return None
        return Principal(user_id=row.user_id, role=Role(row.role), key_id=key_id)

    def revoke(self, key_id: str, now: datetime) -> bool:
        with self._engine.begin() as conn:
            done = conn.execute(update(api_keys).where(
                api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(
                revoked_at=now))
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
