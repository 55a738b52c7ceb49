"""The alert stream: server-sent events as situations open and their SLA clocks run out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query
from sse_starlette import EventSourceResponse, ServerSentEvent

from api.deps import Principal, ServicesDep, require
from api.schemas import PROBLEM_RESPONSES
from domain.values import Role

router = APIRouter(tags=["alerts"], responses=PROBLEM_RESPONSES)

Watcher = Annotated[Principal, Depends(require(Role.OPERATOR, Role.MANAGER, Role.ADMIN))]


@router.get("/alerts/stream", summary="Stream alerts as server-sent events",
            operation_id="stream_alerts",
            response_class=EventSourceResponse, responses={200: {
    "content": {"text/event-stream": {}},
    "description": "`event: ready` once subscribed, then one event per alert: `id` the alert "
                   "id, `event` its kind, `data` the alert as JSON."}})
async def alert_stream(svc: ServicesDep, _who: Watcher,
                       specialist: Annotated[UUID | None, Query(
                           description="Only alerts for this specialist.")] = None
                       ) -> EventSourceResponse:
    """Alerts as they fall due (new situation, SLA warning and breach, follow-ups due and
    overdue, reception), as server-sent events."""
    scheduler = svc.alerts
    if scheduler is None:
        raise HTTPException(503, "alerts are not configured in this service")

    async def events() -> AsyncIterator[ServerSentEvent]:
        subscription = scheduler.hub.subscribe(specialist)
        try:
            # Sent once the subscription exists: from here on no alert can be missed.
            yield ServerSentEvent(event="ready", retry=5000, data=json.dumps(
                {"specialist_id": None if specialist is None else str(specialist)}))
            while not subscription.closed:
                alert = await subscription.next(timeout=1.0)
                if alert is not None:
                    yield ServerSentEvent(id=str(alert.id), event=alert.kind,
                                          data=json.dumps(alert.to_json()))
        finally:
            subscription.close()

    return EventSourceResponse(events(), ping=scheduler.heartbeat_seconds,
                               headers={"Cache-Control": "no-store"})
