"""One router per concern; the write routes are declared as a table (api.routers.writes)."""

from __future__ import annotations

from fastapi import APIRouter


def v1_routers() -> list[APIRouter]:
    """Every router mounted under /v1. One line per router."""
    from api.routers import batch, clients, writes

    return [
        writes.router(),
        batch.router,
        clients.router,
    ]
