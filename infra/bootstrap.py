"""The composition root: builds the application, stores, projections and follower from settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from commands.application import CrmApplication
from commands.reference import calendar_id
from consumers.alerts import AlertScheduler
from consumers.embedded import EmbeddedFollower
from domain.business_calendar import BusinessCalendar
from domain.values import Role
from infra.audit import signing_key
from infra.clock import system_clock
from infra.crypto import (
    Keyring,
    KeyStoreMissing,
    MasterKeyError,
    PersonalDataMapper,
    new_master_key,
    parse_master_key,
    scrub,
)
from infra.db import make_engine, schema_lock
from infra.eventstore import (
    max_position,
    notification_reader,
    position_lookup,
    read_model_url,
    store_env,
)
from infra.keys import KeyStore
from infra.settings import Settings
from projections.base import Runner
from projections.reaction_times import ReactionPolicy
from projections.registry import all_projections


@dataclass
class Container:
    settings: Settings
    clock: Callable[[], datetime]
    app: CrmApplication
    engine: Engine
    keys: KeyStore
    runner: Runner
    follower: EmbeddedFollower
    keyring: Keyring
    alerts: AlertScheduler | None = None  # reaction-time alerts (issue 4)
    signer: Ed25519PrivateKey | None = None  # signs chain heads (infra.audit); None: unsigned

    def store_position(self) -> int:
        return max_position(self.app)

    def close(self) -> None:
        if self.alerts is not None:
            self.alerts.stop()
        self.follower.stop()
        self.app.close()
        self.engine.dispose()


def build(settings: Settings, *, clock: Callable[[], datetime] = system_clock,
          new_id: Callable[[], UUID] = uuid4, start_follower: bool = True) -> Container:
    engine = make_engine(read_model_url(settings))
    # Everything that creates or reshapes tables (event store, keys, read models, tracking,
    # dead letters, alerts, the indexes made after the first catch-up), the master key file and
    # the bootstrap admin key is set up by one process at a time: replicas started together on
    # an empty database all come up.
    with schema_lock(engine):
        keyring = Keyring(engine, master_key(settings), clock)
        signer = signing_key(settings.signing_key,
                             settings.sqlite_path if settings.is_sqlite else None)
        app = CrmApplication(store_env(settings), clock=clock, new_id=new_id,
                             mapper_wrapper=lambda inner: PersonalDataMapper(inner, keyring))
        app.position_of = position_lookup(app)
        _refuse_lost_keys(settings, keyring, app)
        app.before_save = lambda events: keyring.ensure_keys(_sealed_for(events))
        keys = KeyStore(engine)
        if settings.bootstrap_admin_key and not keys.has_admin():
            keys.create("bootstrap-admin", Role.ADMIN, clock(),
                        token=settings.bootstrap_admin_key)
        runner = Runner(engine, all_projections(keyring), notification_reader(app))
        runner.after_page = lambda page: _scrub_after_erasure(engine, runner, page)
        follower = EmbeddedFollower(runner)
        app.saved_listeners.append(follower.notify)
        app.saved_listeners.append(lambda _p, events: _shred_erased(keyring, events))
        # Alerts fire when a clock runs out; the default calendar is Mon-Fri 09-18 in
        # CRM_TIMEZONE.
        alerts = AlertScheduler(engine, clock, ReactionPolicy(
            BusinessCalendar.default(settings.timezone), calendar_id("default")),
            wait_for=follower.wait_for, timezone=settings.timezone)
        app.saved_listeners.append(alerts.notify)
        if start_follower:
            # The first catch-up also makes the indexes of the tables just created (after the
            # bulk load): part of the set-up another replica must not race. A replica that
            # waited finds the read models current and catches up in no time.
            follower.start_up()
    if start_follower:
        follower.start()
        alerts.start()
    return Container(settings, clock, app, engine, keys, runner, follower, keyring, alerts,
                     signer=signer)


def _sealed_for(events: list[object]) -> set[UUID]:
    """Clients whose data keys a write's events will be sealed with (infra.crypto)."""
    found: set[UUID] = set()
    for event in events:
        client_id = getattr(event, "client_id", None)
        kind = type(event)
        if isinstance(client_id, UUID) and (getattr(kind, "PERSONAL", None)
                                            or getattr(kind, "PERSONAL_KEYS", None)):
            found.add(client_id)
    return found


def _refuse_lost_keys(settings: Settings, keyring: Keyring, app: CrmApplication) -> None:
    """A key store made by this start beside an event store that already holds events means
    the client data keys that sealed those events are elsewhere (on SQLite they live in the
    read-model file, which looks disposable but is not). Going on would make new keys for the
    next writes and leave every earlier sealed value unreadable; refuse, and keep refusing."""
    held = max_position(app)
    if not keyring.made_now or not held or settings.accept_new_key_store:
        return
    keyring.undo_new_store()
    where = (f"{read_model_url(settings).removeprefix('sqlite:///')}" if settings.is_sqlite
             else "the key tables (client_keys, key_meta) of the database")
    raise KeyStoreMissing(
        f"the event store holds events (up to position {held}) but the key store is new: the "
        f"client data keys are kept in {where}, which is missing or was replaced. Restore "
        "it from the backup taken with the event store; only if the keys are lost for good, "
        "start with CRM_ACCEPT_NEW_KEY_STORE=true (personal data sealed before stays unreadable)")


def _shred_erased(keyring: Keyring, events: list[object]) -> None:
    """After a ClientErased is stored, destroy that client's data key (crypto-shredding)."""
    for event in events:
        if type(event).__name__ == "ClientErased":
            keyring.destroy(event.client_id)  # type: ignore[attr-defined]


def _scrub_after_erasure(engine: Engine, runner: Runner,
                         page: Sequence[tuple[int, object]]) -> None:
    if any(type(event).__name__ == "ClientErased" for _p, event in page):
        scrub(engine, sorted({t.name for p in runner.projections for t in p.tables}))


def master_key(settings: Settings) -> bytes:
    """CRM_MASTER_KEY, or on SQLite a key file beside the database made on first start."""
    if settings.master_key is not None:
        return parse_master_key(settings.master_key)
    if not settings.is_sqlite:
        raise MasterKeyError("CRM_MASTER_KEY is required with PostgreSQL (base64 of 32 bytes; "
                             "make one with: crm keys new-master)")
    path = settings.sqlite_path.with_name(settings.sqlite_path.stem + ".master.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(new_master_key())
    return parse_master_key(path.read_text().strip())
