"""One router per concern; the write routes are declared as a table (api.routers.writes)."""

from __future__ import annotations

from fastapi import APIRouter


def v1_routers() -> list[APIRouter]:
    """Every router mounted under /v1. One line per router."""
    from api.routers import (
        alerts,
        audit,
        batch,
        client_reads,
        clients,
        deadletters,
        reference,
        reports,
        schemas,
        service_reports,
        situations,
        suggestions,
        webhooks,
        writes,
    )

    return [
        writes.router(),
        audit.router,
        batch.router,
        clients.router,
        client_reads.router,
        suggestions.router,
        reports.router,
        service_reports.router,
        situations.router,
        alerts.router,
        schemas.router,
        deadletters.router,
        webhooks.router,
        reference.router,
    ]
