"""Dead letters: events a projection could not apply, listed and re-driven after a fix (admin)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import Admin, ServicesDep

router = APIRouter(prefix="/admin/deadletters", tags=["admin"])


class DeadLetter(BaseModel):
    projection: str
    event_ref: str
    position: int | None
    type: str | None
    error: str
    attempts: int
    parked_at: str


class DeadLetterList(BaseModel):
    items: list[DeadLetter]
    total: int


class RedriveResult(BaseModel):
    redriven: list[str]
    still_failing: dict[str, str]


@router.get("", operation_id="list_dead_letters", response_model=DeadLetterList)
def list_dead_letters(svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Parked (event, projection) pairs not yet re-driven, in store order, with their error."""
    assert svc.dead_letters is not None
    items = [{**{k: row[k] for k in ("projection", "event_ref", "position", "type", "error",
                                     "attempts")},
              "parked_at": row["parked_at"].isoformat()} for row in svc.dead_letters.parked()]
    return {"items": items, "total": len(items)}


@router.post("/redrive", operation_id="redrive_dead_letters", response_model=RedriveResult)
def redrive_dead_letters(svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Apply every parked event again to the projection that failed it (after a code fix)."""
    assert svc.dead_letters is not None
    report = svc.dead_letters.redrive()
    return {"redriven": report.redriven, "still_failing": report.still_failing}
