"""Health (no auth), readiness and Prometheus metrics (these two need a key, as every route)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import READ_REPORTS, Principal, ServicesDep, require
from api.schemas import Health, Readiness

router = APIRouter(tags=["health"])
# §8: no endpoint but health works anonymously; these carry no personal data, so any role.
AnyRole = Annotated[Principal, Depends(require(*READ_REPORTS))]


@router.get("/healthz", operation_id="healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """Liveness: the process answers. No authentication."""
    return {"status": "ok"}


@router.get("/readyz", operation_id="readyz", response_model=None, responses={
    200: {"model": Readiness},
    503: {"model": Readiness, "description": "Not ready: a store is unreachable"}})
def readyz(svc: ServicesDep, response: Response, _who: AnyRole) -> dict[str, Any]:
    """Readiness: the store and read models answer; how far each projection lags."""
    state = svc.readiness()
    response.status_code = 200 if state["ready"] else 503
    return state


@router.get("/metrics", operation_id="metrics", response_class=PlainTextResponse, responses={
    200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition"}})
def metrics(svc: ServicesDep, _who: AnyRole) -> Response:
    """Prometheus metrics."""
    svc.readiness()  # refreshes the lag gauges
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
