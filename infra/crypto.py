"""Personal data at rest: per-client data keys wrapped by a master key (envelope encryption).

Personal fields of an event (each event class lists them in PERSONAL) are sealed with AES-GCM
under the client's data key before the event is stored, so the stored bytes — and the hash chain
over them — hold ciphertext. Erasing a client destroys its data key: every copy of those fields
(store, replays, exports, Kafka) becomes unreadable for good, and reads show placeholders of the
same type ("[erased]", [], {}). Non-personal fields stay clear so reports need no keys.

Sealed value, as stored:  {"_pd_": 1, "t": "s|l|d|o", "c": base64(nonce || ciphertext)}
AAD binds a ciphertext to its client, event type and field, so it cannot be moved elsewhere.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
import threading
from binascii import a2b_base64
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent, find_id_convertor
from eventsourcing.utils import get_topic, resolve_topic
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    Uuid,
    bindparam,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from infra.eventstore import Plan, StateDecoder
from projections.base import UtcDateTime
from projections.personal import is_sealed, placeholder, type_tag

metadata = MetaData()
client_keys = Table(
    "client_keys", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
key_meta = Table(
    "key_meta", metadata,
    Column("name", String(40), primary_key=True),
    Column("value", String(200), nullable=False),
)
# Service secrets (webhook signing secrets), wrapped by the master key like the data keys and
# re-wrapped with them (`crm keys rotate-master`); the additional data binds each to its place.
sealed_secrets = Table(
    "sealed_secrets", metadata,
    Column("purpose", String(40), primary_key=True),
    Column("name", String(100), primary_key=True),
    Column("wrapped", LargeBinary, nullable=False),
)

# Built once: a rebuild fetches one key per client, and building the query each time cost more
# than running it.
_WRAPPED = select(client_keys.c.wrapped).where(client_keys.c.client_id == bindparam("b_client"))


@functools.cache
def _insert_new_keys(dialect: str) -> Any:
    """INSERT of data keys that skips clients holding one already, returning those inserted."""
    from sqlalchemy.dialects import postgresql, sqlite

    make = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return (make(client_keys).on_conflict_do_nothing(index_elements=["client_id"])
            .returning(client_keys.c.client_id))


class MasterKeyError(Exception):
    """The master key is missing, malformed, or not the one the data keys were wrapped with."""


class KeyStoreMissing(MasterKeyError):
    """The key store is new while the event store already holds events: the client data keys
    that sealed them are elsewhere (a deleted or replaced read-model database)."""


def parse_master_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value, validate=True)
    except ValueError:
        raise MasterKeyError("CRM_MASTER_KEY must be base64 of 32 random bytes") from None
    if len(key) != 32:
        raise MasterKeyError(f"CRM_MASTER_KEY must decode to 32 bytes, not {len(key)}")
    return key


def new_master_key() -> str:
    return base64.b64encode(AESGCM.generate_key(256)).decode()


_UNKNOWN: Any = object()


def _check_value(master: bytes) -> str:
    return hmac.new(master, b"crm master key check v1", hashlib.sha256).hexdigest()


class Keyring:
    """Data keys per client, cached unwrapped in memory; destroyed for good on erasure."""

    def __init__(self, engine: Engine, master: bytes, clock: Callable[[], datetime]) -> None:
        self._engine = engine
        self._master = AESGCM(master)
        self._clock = clock
        # Unwrapped data keys (32 bytes each; None: erased). AESGCM objects cost ~2.5 KiB each,
        # so only the recently used are kept as objects (_aead): 100k clients held ~255 MiB.
        self._cache: dict[UUID, bytes | None] = {}
        self._lock = threading.Lock()
        metadata.create_all(engine)
        self._check_master(master)

    def _check_master(self, master: bytes) -> None:
        check = _check_value(master)
        with self._engine.begin() as conn:
            row = conn.execute(select(key_meta.c.value).where(key_meta.c.name == "check")).first()
            # True when this start made the key store: build() refuses it beside a store that
            # already holds events (their data keys would be lost): bootstrap._refuse_lost_keys.
            self.made_now = row is None
            if row is None:
                conn.execute(insert(key_meta).values(name="check", value=check))
            elif not hmac.compare_digest(row.value, check):
                raise MasterKeyError("CRM_MASTER_KEY is not the master key the client data keys "
                                     "were wrapped with; refusing to start")
            self._search = self._search_key(conn)

    def undo_new_store(self) -> None:
        """Take back the key store this start made (the check value and search key), so the
        next start refuses again until the right database is back or the loss is accepted."""
        with self._engine.begin() as conn:
            conn.execute(key_meta.delete())
            conn.execute(client_keys.delete())
        self.made_now = False

    def wrapped_search_key(self) -> bytes:
        """The search-index key as kept (wrapped by the master key), for a full export."""
        with self._engine.connect() as conn:
            value = conn.execute(select(key_meta.c.value)
                                 .where(key_meta.c.name == "search")).scalar_one()
        return base64.b64decode(value)

    def adopt_search_key(self, wrapped: bytes) -> None:
        """Use an imported store's search-index key (same master key), so the rebuilt blind
        index equals the original's."""
        try:
            key = self._master.decrypt(wrapped[:12], wrapped[12:], b"crm search key v1")
        except InvalidTag:
            raise MasterKeyError("the exported search key does not unwrap with the master "
                                 "key") from None
        with self._engine.begin() as conn:
            conn.execute(update(key_meta).where(key_meta.c.name == "search")
                         .values(value=base64.b64encode(wrapped).decode()))
        self._search = key

    def _search_key(self, conn: Any) -> bytes:
        """The key of the blind search index (HMAC of normalised words), made once and kept
        wrapped by the master key beside the data keys."""
        row = conn.execute(select(key_meta.c.value).where(key_meta.c.name == "search")).first()
        if row is not None:
            raw = base64.b64decode(row.value)
            return self._master.decrypt(raw[:12], raw[12:], b"crm search key v1")
        key = os.urandom(32)
        nonce = os.urandom(12)
        wrapped = nonce + self._master.encrypt(nonce, key, b"crm search key v1")
        conn.execute(insert(key_meta).values(name="search",
                                             value=base64.b64encode(wrapped).decode()))
        return key

    def _unwrap(self, client_id: UUID, wrapped: bytes) -> bytes:
        try:
            return self._master.decrypt(wrapped[:12], wrapped[12:], client_id.bytes)
        except InvalidTag:
            raise MasterKeyError(f"the data key of client {client_id} does not unwrap with the "
                                 "master key") from None

    @contextmanager
    def _key_transaction(self) -> Iterator[Connection]:
        """A transaction that may create data keys. On SQLite the keys live in the read-model
        file, whose commits are not flushed to disk (synchronous=NORMAL); a key must be durable
        before the event sealed with it commits in the store, so this commit is FULL (set before
        the transaction starts, as SQLite requires, and put back after)."""
        with self._engine.connect() as conn:
            sqlite = conn.dialect.name == "sqlite"
            if sqlite:
                conn.exec_driver_sql("PRAGMA synchronous=FULL")
                conn.commit()
            try:
                yield conn
                conn.commit()
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                    conn.commit()

    def key(self, client_id: UUID, *, create: bool) -> AESGCM | None:
        with self._lock:
            known = client_id in self._cache
            held = self._cache.get(client_id)
        if known and (held is not None or not create):
            return None if held is None else _aead(held)
        if not create:  # a read: no key is made, so no durable commit to pay for
            with self._engine.connect() as conn:
                row = conn.execute(_WRAPPED, {"b_client": client_id}).first()
            found_key = None if row is None else self._unwrap(client_id, bytes(row.wrapped))
            with self._lock:
                self._cache[client_id] = found_key
            return None if found_key is None else _aead(found_key)
        # Look-up and, for a new client, insert in one transaction (one pool checkout, one
        # commit): ingest creates a key per new client, and two transactions cost twice.
        try:
            with self._key_transaction() as conn:
                row = conn.execute(_WRAPPED, {"b_client": client_id}).first()
                if row is None and create:
                    if conn.dialect.name == "postgresql":
                        # No wait for this commit's WAL flush: the key lives in the event
                        # store's cluster (read_model_url), and the event sealed with it
                        # commits later, synchronously, flushing the WAL past this commit too.
                        conn.execute(text("SET LOCAL synchronous_commit = off"))
                    data_key = AESGCM.generate_key(256)
                    nonce = os.urandom(12)
                    conn.execute(insert(client_keys), {
                        "client_id": client_id, "created_at": self._clock(),
                        "wrapped": nonce + self._master.encrypt(nonce, data_key,
                                                                client_id.bytes)})
                    found: bytes | None = data_key
                else:
                    found = None if row is None else self._unwrap(client_id, bytes(row.wrapped))
        except IntegrityError:  # another writer created it first: use theirs
            return self.key(client_id, create=False)
        with self._lock:
            self._cache[client_id] = found
        return None if found is None else _aead(found)

    def preload(self, client_ids: Iterable[UUID]) -> None:
        """Fetch the data keys of these clients in one query (a projection page reveals the
        values of many); none is made, and a client without one reads as erased."""
        with self._lock:
            wanted = sorted({c for c in client_ids if c not in self._cache})
        if not wanted:
            return
        with self._engine.connect() as conn:
            self._remember(self._stored_keys(conn, wanted))

    def ensure_keys(self, client_ids: Iterable[UUID]) -> None:
        """Fetch, or create, the data keys of the clients a write is about to seal for, all in
        one round (the write's new clients would otherwise cost a transaction each in `key`).
        Clients already in memory, or known to have no key, are left to `key`.

        A key is inserted unless one is stored (ON CONFLICT DO NOTHING ... RETURNING): a write's
        uncached clients are nearly always new ones, so the look-up first was a statement
        (a round trip on PostgreSQL) that found nothing; the stored keys of the others are read
        after. The transaction is durable before the write that seals with its keys begins."""
        with self._lock:
            wanted = sorted({c for c in client_ids if c not in self._cache})
        if not wanted:
            return
        found: dict[UUID, bytes] = {}
        try:
            with self._key_transaction() as conn:
                dialect = conn.dialect.name
                if dialect == "postgresql":  # see key()
                    conn.execute(text("SET LOCAL synchronous_commit = off"))
                new = {c: AESGCM.generate_key(256) for c in wanted}
                now = self._clock()
                rows = []
                for client_id, data_key in new.items():
                    nonce = os.urandom(12)
                    rows.append({"client_id": client_id, "created_at": now,
                                 "wrapped": nonce + self._master.encrypt(
                                     nonce, data_key, client_id.bytes)})
                made = {r[0] for r in conn.execute(_insert_new_keys(dialect), rows)}
                found = {c: k for c, k in new.items() if c in made}
                stored = [c for c in wanted if c not in made]
                if stored:
                    found.update(self._stored_keys(conn, stored))
        except IntegrityError:  # a racing writer made one of them: key() fetches each
            return
        self._remember(found)

    def _stored_keys(self, conn: Connection, client_ids: list[UUID]) -> dict[UUID, bytes]:
        """The data keys stored for these clients, unwrapped."""
        rows = conn.execute(select(client_keys.c.client_id, client_keys.c.wrapped)
                            .where(client_keys.c.client_id.in_(client_ids))).all()
        return {r.client_id: self._unwrap(r.client_id, bytes(r.wrapped)) for r in rows}

    def _remember(self, found: dict[UUID, bytes]) -> None:
        with self._lock:
            for client_id, data_key in found.items():
                self._cache.setdefault(client_id, data_key)  # never revive a destroyed one

    def destroy(self, client_id: UUID) -> bool:
        """Crypto-shredding: delete the wrapped key (secure_delete / VACUUM scrub the bytes)."""
        with self._engine.begin() as conn:
            done = conn.execute(delete(client_keys).where(client_keys.c.client_id == client_id))
        with self._lock:
            self._cache[client_id] = None
        _aead.cache_clear()  # drop the destroyed key's cipher object too (erasures are rare)
        scrub(self._engine, ["client_keys"])
        return bool(done.rowcount)

    def rewrap(self, new_master: bytes, progress: Callable[[int], None] | None = None) -> int:
        """Master-key rotation: re-wrap every data key; returns how many."""
        new = AESGCM(new_master)
        count = 0
        with self._engine.begin() as conn:
            for row in conn.execute(select(client_keys)).all():
                data_key = self._master.decrypt(row.wrapped[:12], row.wrapped[12:],
                                                row.client_id.bytes)
                nonce = os.urandom(12)
                conn.execute(update(client_keys).where(client_keys.c.client_id == row.client_id)
                             .values(wrapped=nonce + new.encrypt(nonce, data_key,
                                                                 row.client_id.bytes)))
                count += 1
                if progress:
                    progress(1)
            for row in conn.execute(select(sealed_secrets)).all():
                aad = _secret_aad(row.purpose, row.name)
                secret = self._master.decrypt(row.wrapped[:12], row.wrapped[12:], aad)
                nonce = os.urandom(12)
                conn.execute(update(sealed_secrets).where(
                    sealed_secrets.c.purpose == row.purpose, sealed_secrets.c.name == row.name)
                    .values(wrapped=nonce + new.encrypt(nonce, secret, aad)))
            conn.execute(update(key_meta).where(key_meta.c.name == "check")
                         .values(value=_check_value(new_master)))
            nonce = os.urandom(12)
            wrapped_search = nonce + new.encrypt(nonce, self._search, b"crm search key v1")
            conn.execute(update(key_meta).where(key_meta.c.name == "search")
                         .values(value=base64.b64encode(wrapped_search).decode()))
        self._master = new
        return count

    def secrets(self, purpose: str) -> SealedSecrets:
        """Secrets of one purpose (e.g. "webhook"), kept wrapped by the master key."""
        return SealedSecrets(self, purpose)

    def _put_secret(self, purpose: str, name: str, secret: str) -> None:
        nonce = os.urandom(12)
        wrapped = nonce + self._master.encrypt(nonce, secret.encode(), _secret_aad(purpose, name))
        where = (sealed_secrets.c.purpose == purpose, sealed_secrets.c.name == name)
        with self._engine.begin() as conn:
            conn.execute(delete(sealed_secrets).where(*where))
            conn.execute(insert(sealed_secrets).values(purpose=purpose, name=name,
                                                       wrapped=wrapped))

    def _get_secret(self, purpose: str, name: str) -> str | None:
        with self._engine.connect() as conn:
            wrapped = conn.execute(select(sealed_secrets.c.wrapped).where(
                sealed_secrets.c.purpose == purpose, sealed_secrets.c.name == name)).scalar()
        if wrapped is None:
            return None
        return self._master.decrypt(wrapped[:12], wrapped[12:],
                                    _secret_aad(purpose, name)).decode()

    def _drop_secret(self, purpose: str, name: str) -> None:
        with self._engine.begin() as conn:
            conn.execute(delete(sealed_secrets).where(sealed_secrets.c.purpose == purpose,
                                                      sealed_secrets.c.name == name))

    def seal(self, client_id: UUID, where: str, value: Any) -> dict[str, Any]:
        return _seal(self.sealing_cipher(client_id), client_id.bytes + where.encode(), value)

    def sealing_cipher(self, client_id: UUID) -> AESGCM:
        """The cipher to seal a client's values with: `key(client_id, create=True)`, without
        the lock when the key is in memory already (a dict read is atomic)."""
        held = self._cache.get(client_id, _UNKNOWN)
        if held.__class__ is bytes:
            return _aead(held)
        key = self.key(client_id, create=True)
        if key is None:
            raise PermissionError(f"client {client_id} was erased")
        return key

    def unseal(self, client_id: UUID, where: str, sealed: dict[str, Any]) -> Any:
        return _open(self.cipher(client_id), client_id.bytes + where.encode(), sealed)

    def erased(self, client_id: UUID) -> bool:
        """Whether the client's data key is gone (every client gets one when registered)."""
        return self.cipher(client_id) is None

    def cipher(self, client_id: UUID) -> AESGCM | None:
        """`key(client_id, create=False)`, without the lock when the key is in memory already
        (a dict read is atomic; decoding asks once per event)."""
        held = self._cache.get(client_id, _UNKNOWN)
        if held is _UNKNOWN:
            return self.key(client_id, create=False)
        return None if held is None else _aead(held)

    def reveal(self, value: Any) -> Any:
        """`value` with every sealed personal value a read model holds (sealed value plus its
        client "k" and field "w", see projections.personal) opened — or shown as the erased
        placeholder once the client's key is gone. Reads call this at the edge, so the
        read-model tables never hold personal data in clear."""
        if isinstance(value, dict):
            if value.get("_pd_") == 1:
                if "k" not in value or "w" not in value:
                    raise ValueError("a sealed value without its client and field reached a read")
                return self.unseal(UUID(value["k"]), value["w"], value)
            return {k: self.reveal(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.reveal(v) for v in value]
        return value

    def blind(self, words: Iterable[str]) -> list[bytes]:
        """Blind-index tokens: a keyed hash (BLAKE2b in its MAC mode, 16 bytes) of each
        normalised word, so the search index holds no personal text and equal words give equal
        tokens. BLAKE2b's keyed mode is one C call per word (HMAC-SHA-256 cost four times as
        much, and a registration indexes ~40 words)."""
        key = self._search
        return [hashlib.blake2b(w.encode(), key=key, digest_size=16).digest() for w in words]


def _secret_aad(purpose: str, name: str) -> bytes:
    return f"crm secret v1/{purpose}/{name}".encode()


class SealedSecrets:
    """One purpose's secrets by name (consumers.webhooks.SecretStore)."""

    def __init__(self, keyring: Keyring, purpose: str) -> None:
        self._keyring = keyring
        self.purpose = purpose

    def put(self, name: str, secret: str) -> None:
        self._keyring._put_secret(self.purpose, name, secret)

    def get(self, name: str) -> str | None:
        return self._keyring._get_secret(self.purpose, name)

    def drop(self, name: str) -> None:
        self._keyring._drop_secret(self.purpose, name)

    def scrub(self, tables: list[str]) -> None:
        """Make values overwritten in `tables` unrecoverable from the database files."""
        scrub(self._keyring._engine, tables)


@functools.lru_cache(maxsize=4096)
def _aead(data_key: bytes) -> AESGCM:
    """The cipher object of a data key, for the recently used keys only."""
    return AESGCM(data_key)


def scrub(engine: Engine, tables: list[str]) -> None:
    """Make deleted or overwritten rows unrecoverable from the database files: SQLite zeroes
    freed space (secure_delete) but old page images stay in the WAL until a checkpoint;
    PostgreSQL keeps dead tuples until VACUUM."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in tables:
            conn.execute(text(f'VACUUM "{table}"'))


class PersonalDataMapper(Mapper[UUID]):
    """Seals personal fields on the way into the store, unseals (or blanks) on the way out;
    with `unseal=False` events come out as stored (projections, the bus, exports)."""

    def __init__(self, inner: Mapper[UUID], keyring: Keyring, *, unseal: bool = True) -> None:
        super().__init__(inner.transcoder, inner.compressor, inner.cipher)
        self.keyring = keyring
        self.unseal = unseal
        # The fast decode (issue 14.4) reads plain JSON state only.
        self._decoder = (StateDecoder.for_transcoder(self.transcoder)
                         if self.cipher is None and self.compressor is None else None)
        self._kinds: dict[str, _Kind] = {}
        self._seals: dict[type[Any], _SealKind] = {}

    def sealed(self) -> PersonalDataMapper:
        """The same mapper leaving personal fields sealed when it decodes."""
        return PersonalDataMapper(self, self.keyring, unseal=False)

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Mapper.to_stored_event of the event with its personal fields sealed: one copy of the
        state (the library's copy of a sealed clone made a second), one key look-up per event,
        the associated data's text made once per event type. The bytes are what the library's
        transcoder makes of the same dict (the same keys in the same order)."""
        cls = domain_event.__class__
        kind = self._seals.get(cls)
        if kind is None:
            kind = self._seals[cls] = _SealKind(cls)
        state = dict(vars(domain_event))
        client_id = getattr(domain_event, "client_id", None) if kind.sealed else None
        if client_id is not None:
            client = client_id.bytes
            ciphers: list[AESGCM] = []  # looked up at the first value to seal, then kept

            def sealed(aad: bytes, value: Any) -> dict[str, Any]:
                if not ciphers:
                    ciphers.append(self.keyring.sealing_cipher(client_id))
                return _seal(ciphers[0], client + aad, value)

            for name, where in kind.personal:
                value = state.get(name)
                if value not in _EMPTY:
                    state[name] = sealed(where, value)
            for name, prefix, keys in kind.by_key:
                changes = state.get(name)
                if isinstance(changes, dict):
                    state[name] = {k: sealed(prefix + k.encode(), v)
                                   if k in keys and v not in _EMPTY else v
                                   for k, v in changes.items()}
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        if kind.class_version > 1:
            state["class_version"] = kind.class_version
        stored_state = self.transcoder.encode(state)
        if self.compressor:
            stored_state = self.compressor.compress(stored_state)
        if self.cipher:
            stored_state = self.cipher.encrypt(stored_state)
        return StoredEvent(originator_id=originator_id, originator_version=originator_version,
                           topic=kind.topic, state=stored_state)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if self._decoder is None:  # a cipher, compressor or another transcoder: the library's
            return self._unsealed(super().to_domain_event(stored_event))
        return self._event(stored_event.originator_id, stored_event.originator_version,
                           stored_event.topic, stored_event.state)

    def decode_rows(self, rows: Iterable[Sequence[Any]], *,
                    ids_as_text: bool = False) -> list[tuple[int, Any]]:
        """[(position, domain event)] from rows (position, originator id, originator version,
        topic, state): a page of the notification log without building the library's
        Notification objects. `ids_as_text`: the ids are hex text, read as UUIDs (as the
        library's SQLite recorder does), each id built once while it recurs."""
        if self._decoder is None:
            return [(r[0], self.to_domain_event(StoredEvent(
                UUID(r[1]) if ids_as_text else r[1], r[2], r[3], r[4]))) for r in rows]
        event = self._event
        if ids_as_text:
            uuid = self._decoder.uuid
            return [(r[0], event(uuid(r[1]), r[2], r[3], r[4])) for r in rows]
        return [(r[0], event(r[1], r[2], r[3], r[4])) for r in rows]

    def _event(self, originator_id: Any, version: int, topic: str, data: bytes) -> Any:
        """Mapper.to_domain_event, the same event from the same row, decoded by StateDecoder."""
        kind = self._kinds.get(topic)
        if kind is None:
            kind = self._kinds[topic] = _Kind(resolve_topic(topic))
        try:
            state = self._decoder.decode(data, kind.plan)  # type: ignore[union-attr]
        except Exception:  # the library decodes again and raises its own error
            return self._unsealed(super().to_domain_event(
                StoredEvent(originator_id, version, topic, data)))
        if originator_id.__class__ is not UUID:
            convert: Any = find_id_convertor
            originator_id = convert(kind.cls, type(originator_id))(originator_id)
        state["originator_id"] = originator_id
        state["originator_version"] = version
        if kind.upcasts or "class_version" in state:
            from_version = state.pop("class_version", 1)
            while from_version < kind.version:
                getattr(kind.cls, f"upcast_v{from_version}_v{from_version + 1}")(state)
                from_version += 1
        event = _new(kind.cls)
        _setattr(event, "__dict__", state)
        if kind.sealed and self.unseal:
            self._open(kind, state)
        return event

    def _unsealed(self, event: Any) -> Any:
        """An event decoded by the library, with its personal fields opened (if unsealing)."""
        kind = _Kind(type(event))
        if kind.sealed and self.unseal:
            self._open(kind, event.__dict__)
        return event

    def _open(self, kind: _Kind, state: dict[str, Any]) -> None:
        """Unseal the personal fields in place: one key look-up per event, AAD bytes made once
        per event type (the client's part once per event)."""
        client_id = state["client_id"]
        aead = self.keyring.cipher(client_id)
        client = client_id.bytes
        for name, where in kind.personal:
            value = state.get(name)
            if value.__class__ is dict and value.get("_pd_") == 1:
                state[name] = _open(aead, client + where, value)
            elif aead is None and value not in _EMPTY:
                # Stored in clear before the field was sealed (an older class version): the
                # row cannot change (the hash chain covers it), so erasure hides it here.
                state[name] = placeholder(type_tag(value))
        for name, prefix in kind.by_key:
            changes = state.get(name)
            if isinstance(changes, dict):
                state[name] = {
                    k: _open(aead, client + prefix + k.encode(), v) if is_sealed(v) else v
                    for k, v in changes.items()}


_new = object.__new__
_setattr = object.__setattr__
_EMPTY: tuple[Any, ...] = (None, "", [], {})


def _seal(aead: AESGCM, aad: bytes, value: Any) -> dict[str, Any]:
    """A personal value sealed under `aad` (client id bytes + "<Event>.<field>[.<key>]")."""
    nonce = os.urandom(12)
    sealed = aead.encrypt(nonce, orjson.dumps(value), aad)
    return {"_pd_": 1, "t": type_tag(value), "c": base64.b64encode(nonce + sealed).decode()}


def _open(aead: AESGCM | None, aad: bytes, sealed: dict[str, Any]) -> Any:
    """A sealed value's clear value, or the erased placeholder when the key is gone."""
    if aead is None:
        return placeholder(sealed["t"])
    raw = a2b_base64(sealed["c"])
    return orjson.loads(aead.decrypt(raw[:12], raw[12:], aad))


class _Kind:
    """What decoding needs of one event type, worked out once."""

    __slots__ = ("by_key", "cls", "personal", "plan", "sealed", "upcasts", "version")

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        self.version: int = getattr(cls, "class_version", 1)
        self.upcasts = self.version > 1
        self.plan = Plan()  # where its ids, times and other objects are (StateDecoder)
        name = cls.__name__
        self.personal = tuple((field, f"{name}.{field}".encode())
                              for field in getattr(cls, "PERSONAL", ()))
        self.by_key = tuple((field, f"{name}.{field}.".encode())
                            for field in getattr(cls, "PERSONAL_KEYS", {}))
        self.sealed = bool(self.personal or self.by_key)


class _SealKind:
    """What encoding needs of one event type, worked out once."""

    __slots__ = ("by_key", "class_version", "personal", "sealed", "topic")

    def __init__(self, cls: type[Any]) -> None:
        self.topic = get_topic(cls)
        self.class_version: int = getattr(cls, "class_version", 1)
        name = cls.__name__
        self.personal = tuple((field, f"{name}.{field}".encode())
                              for field in getattr(cls, "PERSONAL", ()))
        by_key: dict[str, tuple[str, ...]] = getattr(cls, "PERSONAL_KEYS", {})
        self.by_key = tuple((field, f"{name}.{field}.".encode(), keys)
                            for field, keys in by_key.items())
        self.sealed = bool(self.personal or self.by_key)
