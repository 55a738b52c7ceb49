"""The app factory: builds a FastAPI app around a container (or builds one from settings)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Gauge

from api import console, errors, middleware, openapi
from api.deps import Services, WriteMarks
from api.routers import health, v1_routers
from consumers import dlq
from consumers.dlq import parked_count
from consumers.integrations_main import start_alert_publisher
from consumers.read_position import TrackedPosition
from infra.bootstrap import Container, build
from infra.chain import verify_store
from infra.eventstore import notification_reader
from infra.export import export_lines
from infra.settings import Settings
from projections.base import positions
from projections.deadletters import parked_by_projection

_LAG = Gauge("crm_projection_lag_events", "Events the read models are behind the store")
_PROJECTION_LAG = Gauge("crm_projection_lag_events_by_projection",
                        "Events one projection is behind the store", ["projection"])


_PROBES = ThreadPoolExecutor(max_workers=4, thread_name_prefix="readiness")
PROBE_SECONDS = 2.0


def _bounded(probe: Callable[[], Any]) -> Any:
    """Run a probe with a deadline: an unreachable database must make /readyz answer 503
    promptly, not hang the caller for the driver's connect retries."""
    return _PROBES.submit(probe).result(timeout=PROBE_SECONDS)


# A projection that parked an event this recently is "failing"; one further behind the store
# than MAX_LAG is "lagging". Either makes /readyz answer 503 and name it (docs/decisions.md).
FAILING_SECONDS = 60.0
MAX_LAG = 1000


def _projections(container: Container, store: int | None) -> dict[str, Any]:
    with container.engine.connect() as conn:
        tracked = positions(conn)
        parked = parked_by_projection(conn)
    now = container.clock()
    out: dict[str, Any] = {}
    for projection in container.runner.projections:
        position = tracked.get(projection.name, 0)
        count, last = parked.get(projection.name, (0, None))
        lag = None if store is None else max(store - position, 0)
        failing = last is not None and (now - last).total_seconds() < FAILING_SECONDS
        out[projection.name] = {"position": position, "lag": lag, "dead_letters": count,
                                "failing": failing,
                                "lagging": lag is not None and lag > MAX_LAG}
        if lag is not None:
            _PROJECTION_LAG.labels(projection.name).set(lag)
    return out


def _readiness(container: Container) -> dict[str, Any]:
    state: dict[str, Any] = {"ready": True, "mode": "embedded"
                             if not container.settings.kafka_bootstrap else "distributed"}
    try:
        store = _bounded(container.store_position)
        state["store"] = {"ok": True, "position": store}
    except Exception as error:
        state["ready"] = False
        state["store"] = {"ok": False, "error": type(error).__name__}
        store = None
    try:
        projected = _bounded(container.runner.position)
        lag = None if store is None else max(store - projected, 0)
        projections = _bounded(lambda: _projections(container, store))
        failing = sorted(n for n, p in projections.items() if p["failing"])
        lagging = sorted(n for n, p in projections.items() if p["lagging"])
        follower_error = container.follower.last_error
        state["read_models"] = {
            "ok": not failing and not lagging and follower_error is None,
            "position": projected, "lag": lag, "follower_error": follower_error,
            # Events parked (by the runner or the Kafka projection consumers), not re-driven.
            "dead_letters": _bounded(lambda: parked_count(container.engine)),
            "failing": failing, "lagging": lagging, "projections": projections}
        if not state["read_models"]["ok"]:
            state["ready"] = False
        if lag is not None:
            _LAG.set(lag)
    except Exception as error:
        state["ready"] = False
        state["read_models"] = {"ok": False, "error": type(error).__name__}
    return state


def _read_models_wait(container: Container) -> Callable[[int, float], bool]:
    """How a read waits for a position (api.consistency): on the tracked positions in
    distributed mode, where the projection consumers (`crm consume`) apply the events, or when
    this process runs no follower; else on the in-process follower, which it also wakes."""
    follower = container.follower
    if container.settings.kafka_bootstrap or not follower.running:
        return TrackedPosition(container.runner.position).wait_for
    return follower.wait_for


class DeadLetters:
    """The parked events of this container's projections, re-driven through its own runner."""

    def __init__(self, container: Container) -> None:
        self._container = container

    def parked(self) -> list[dict[str, Any]]:
        return dlq.parked(self._container.engine)

    def redrive(self) -> dlq.RedriveReport:
        built = self._container
        report = dlq.redrive(built.engine, built.runner.projections, built.clock,
                             runner=built.runner)
        built.follower.notify(0)
        return report


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> FastAPI:
    """An app serving `container` (tests pass their own) or one built from `settings`."""
    owned = container is None
    if container is None:
        container = build(settings or Settings())
    built = container

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # Distributed mode: the scheduler's alerts also go to crm.alerts.v1.
        publisher = start_alert_publisher(built) if owned else None
        yield
        if publisher is not None:
            publisher.stop()
        if owned:
            built.close()

    app = FastAPI(title="CRM event backbone", version="0.1.0", lifespan=lifespan,
                  description="Event-sourced CRM backend. Errors are application/problem+json "
                              "(RFC 9457). Authenticate with `Authorization: Bearer <key>`.")
    app.state.services = Services(
        app=built.app, engine=built.engine, keys=built.keys, personal=built.keyring,
        wait_for=_read_models_wait(built), read_wait_seconds=built.settings.read_wait_seconds,
        # Shared by every API process on PostgreSQL (several workers); in memory on SQLite.
        marks=WriteMarks(None if built.settings.is_sqlite else built.engine),
        head=built.store_position, read_store=notification_reader(built.app),
        clock=built.clock, webhook_secrets=built.keyring.secrets("webhook"),
        readiness=lambda: _readiness(built),
        alerts=built.alerts, audit_verify=lambda: verify_store(built.app),
        export=lambda **kw: export_lines(built, **kw),
        dead_letters=DeadLetters(built),
        rate_limiter=middleware.RateLimiter(built.settings.rate_limit_per_minute))
    app.state.container = built
    errors.install(app)
    middleware.install(app, max_body_bytes=built.settings.max_body_bytes,
                       cors_origins=[o.strip() for o in built.settings.cors_origins.split(",")
                                     if o.strip()])
    app.include_router(health.router)
    for router in v1_routers():
        app.include_router(router, prefix="/v1")
    console.mount(app)  # the web console at /console (not in the OpenAPI)
    app.openapi = openapi.customise(app)  # type: ignore[method-assign]
    return app
