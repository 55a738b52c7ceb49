"""One router per concern; the write routes are declared as a table (api.routers.writes)."""

from __future__ import annotations

from fastapi import APIRouter


def v1_routers() -> list[APIRouter]:
    """Every router mounted under /v1. One line per router."""
    from api.routers import audit, batch, clients, writes
    from api.routers import client_reads, reports
    from api.routers import service_reports
    from api.routers import situations
    from api.routers import alerts
    from api.routers import schemas

    return [
        writes.router(),
        audit.router,
        batch.router,
        clients.router,
        client_reads.router,
        reports.router,
        service_reports.router,
        situations.router,
        alerts.router,
        schemas.router,
    ]
