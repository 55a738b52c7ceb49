"""Health (no auth), readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. No authentication."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(svc: ServicesDep, response: Response) -> dict[str, Any]:
    """Readiness: the store and read models answer; how far each projection lags."""
    state = svc.readiness()
    response.status_code = 200 if state["ready"] else 503
    return state


@router.get("/metrics")
def metrics(svc: ServicesDep) -> Response:
    """Prometheus metrics."""
    svc.readiness()  # refreshes the lag gauges
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
