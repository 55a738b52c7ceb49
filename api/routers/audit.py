"""Audit reads: verify the hash chains, list replay receipts (auditor and admin)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, HTTPException, Query

from api.deps import AUDIT, Principal, ServicesDep, require
from api.schemas import (
    PROBLEM_RESPONSES,
    AuditEventPage,
    ChainReport,
    ReceiptList,
    described,
)
from domain.catalogue import jsonable
from projections.replay import list_receipts

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES)
Auditor = Annotated[Principal, Depends(require(*AUDIT))]


@router.get("/verify", operation_id="verify_audit_chain", **described(ChainReport))
def verify(svc: ServicesDep, _who: Auditor) -> dict[str, Any]:
    """Walk every stored event's hashes; name the first altered, removed, inserted or moved one."""
    if svc.audit_verify is None:
        raise HTTPException(503, "verification is not available in this process")
    return asdict(svc.audit_verify())


@router.get("/events", operation_id="list_audit_events", **described(AuditEventPage))
def events(svc: ServicesDep, _who: Auditor,
           cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$",
                                               description="a position; next page after it")
                             ] = None,
           limit: Annotated[int, Query(ge=1, le=1000)] = 200,
           client: UUID | None = None) -> dict[str, Any]:
    """History as CloudEvents with their hashes and stored bytes (verifiable offline, page by
    page: each page's first event links to the previous page's last)."""
    if svc.export is None:
        raise HTTPException(503, "export is not available in this process")
    lines = list(svc.export(after=int(cursor or 0), limit=limit + 1, client_id=client))
    items = [orjson.loads(line) for line in lines[1:]]
    more = len(items) > limit
    items = items[:limit]
    return {"header": orjson.loads(lines[0]), "items": items,
            "next_cursor": str(items[-1]["position"]) if more and items else None}


@router.get("/receipts", operation_id="list_replay_receipts", **described(ReceiptList))
def receipts(svc: ServicesDep, _who: Auditor,
             limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Replay receipts, newest first: projection, code version, event range and digests."""
    return {"items": [jsonable(r) for r in list_receipts(svc.engine, limit=limit)]}
