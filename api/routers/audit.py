"""Audit reads: verify the hash chains, list replay receipts (auditor and admin)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from api.deps import AUDIT, Principal, ServicesDep, require
from api.schemas import PROBLEM_RESPONSES
from domain.catalogue import jsonable
from projections.replay import list_receipts

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES)
Auditor = Annotated[Principal, Depends(require(*AUDIT))]


@router.get("/verify")
def verify(svc: ServicesDep, _who: Auditor) -> dict[str, Any]:
    """Walk every stored event's hashes; name the first altered, removed, inserted or moved one."""
    if svc.audit_verify is None:
        raise HTTPException(503, "verification is not available in this process")
    return asdict(svc.audit_verify())


@router.get("/receipts")
def receipts(svc: ServicesDep, _who: Auditor,
             limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Replay receipts, newest first: projection, code version, event range and digests."""
    return {"items": [jsonable(r) for r in list_receipts(svc.engine, limit=limit)]}
