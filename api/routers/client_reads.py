"""Client reads beyond the card: the client list with search, and the contact brief."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import PersonalReader, ServicesDep, reveal
from api.responses import JsonBody
from api.routers.clients import existed
from api.routers.read_params import AsOf, At, moments, zone
from api.schemas import PROBLEM_RESPONSES, ClientBrief, ClientList, described
from domain.months import Segment
from domain.values import ClientKind, ContactPurpose
from projections.client_views import brief, opened
from projections.clients import list_clients
from projections.segment_report import segment_members

router = APIRouter(tags=["clients"], responses=PROBLEM_RESPONSES, dependencies=[SESSION_READ])

# A brief for each contact purpose, and `visit`: the reception of a work order (issue 18.1).
BriefPurpose = StrEnum(  # type: ignore[misc]
    "BriefPurpose", {**{p.name: p.value for p in ContactPurpose}, "VISIT": "visit"})

# No knowledge cut-off, for the segments query that requires one.
_EVERYTHING = datetime(8999, 12, 31, tzinfo=UTC)


@router.get("/clients", operation_id="list_clients", **described(ClientList))
def clients(request: Request, svc: ServicesDep, _who: PersonalReader,
            kind: ClientKind | None = None, segment: Segment | None = None,
            specialist: UUID | None = None,
            q: Annotated[str | None, Query(min_length=1, max_length=200, description=(
                "Words that each start a word of the name, tax id or an e-mail "
                "(case-insensitive); or a phone number, matching the start or end of a "
                "phone's digits."))] = None,
            cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
            limit: Annotated[int, Query(ge=1, le=500)] = 50,
            at: At = None, as_of: AsOf = None,
            min_position: MinPosition = None) -> dict[str, Any]:
    """Clients in registration order, filtered by kind, segment at `at`, specialist and text
    (on the current profile; `as_of` keeps the clients known by then)."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        only = None
        if segment is not None:
            only = set(segment_members(conn, at=at_, as_of=as_of_ or _EVERYTHING,
                                       tz=zone(request, None), segment=str(segment)))
        items, after = list_clients(conn, kind=None if kind is None else str(kind),
                                    specialist_id=specialist, q=q, blind=svc.personal.blind,
                                    after=int(cursor or 0), limit=limit, as_of=as_of_,
                                    only=only)
    return {"items": reveal(svc, items), "next_cursor": None if after is None else str(after)}


@router.get("/clients/{client_id}/brief", operation_id="get_client_brief",
            **described(ClientBrief))
def client_brief(request: Request, client_id: UUID, purpose: BriefPurpose,
                 svc: ServicesDep, _who: PersonalReader, at: At = None, as_of: AsOf = None,
                 planned_contact_id: UUID | None = None,
                 min_position: MinPosition = None) -> JsonBody:
    """What a contact of this purpose needs to know about the client, and nothing more."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        found = brief(conn, client_id, str(purpose), at=at_, as_of=as_of_,
                      planned_contact_id=planned_contact_id)
        found = existed(conn, client_id, found, at=at_ if at is not None else None,
                        as_of=as_of_)
    return JsonBody(reveal(svc, opened(svc.personal, found)))
