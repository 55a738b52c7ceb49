"""The composition root: builds the application, stores, projections and follower from settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from sqlalchemy import Engine

from commands.application import CrmApplication
from consumers.embedded import EmbeddedFollower
from domain.values import Role
from infra.clock import system_clock
from infra.db import make_engine
from infra.eventstore import (
    max_position, notification_reader, position_lookup, read_model_url, store_env,
)
from infra.keys import KeyStore
from infra.settings import Settings
from projections.base import Runner
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

    def store_position(self) -> int:
        return max_position(self.app)

    def close(self) -> None:
        self.follower.stop()
        self.app.close()
        self.engine.dispose()


def build(settings: Settings, *, clock: Callable[[], datetime] = system_clock,
          new_id: Callable[[], UUID] = uuid4, start_follower: bool = True) -> Container:
    app = CrmApplication(store_env(settings), clock=clock, new_id=new_id)
    app.position_of = position_lookup(app)
    engine = make_engine(read_model_url(settings))
    keys = KeyStore(engine)
    if settings.bootstrap_admin_key and not keys.has_admin():
        keys.create("bootstrap-admin", Role.ADMIN, clock(), token=settings.bootstrap_admin_key)
    runner = Runner(engine, all_projections(), notification_reader(app))
    follower = EmbeddedFollower(runner)
    app.saved_listeners.append(follower.notify)
    if start_follower:
        follower.run_once()
        follower.start()
    return Container(settings, clock, app, engine, keys, runner, follower)
