"""Client reads: the card and the client's event history."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError

from api.deps import PersonalReader, Principal, ServicesDep, reveal
from api.routers.read_params import AsOf, At, moments
from api.schemas import (
    PROBLEM_RESPONSES,
    Actor,
    ClientCard,
    EventOut,
    EventPage,
    described,
)
from commands.fields import Instant
from domain.base import event_id_of
from domain.catalogue import event_data, jsonable
from projections.card import card as card_query
from projections.client_views import full_card, opened
from projections.history import history_page

router = APIRouter(tags=["clients"], responses=PROBLEM_RESPONSES)

MinPosition = Annotated[int | None, Query(ge=0, description=(
    "Wait (bounded) until the read models include this position: read your own write."))]


def wait_until(svc: ServicesDep, min_position: int | None,
               who: Principal | None = None) -> None:
    """Read-your-writes: wait (bounded) until the read models include `min_position` and
    every write this process acknowledged to the caller's key (`who`)."""
    if min_position:
        head = int(svc.app.recorder.max_notification_id() or 0)
        if min_position > head:
            raise RequestValidationError([{
                "loc": ("query", "min_position"), "type": "less_than_equal",
                "msg": f"no event has been stored at position {min_position} (last is {head})"}])
    target = max(min_position or 0, svc.marks.of(who) if who is not None else 0)
    if target and not svc.wait_for(target, svc.read_wait_seconds):
        raise HTTPException(503, f"the read models have not reached position {target} "
                                 "yet; retry shortly", headers={"Retry-After": "1"})


@router.get("/clients/{client_id}/card", operation_id="get_client_card",
            **described(ClientCard))
def client_card(request: Request, client_id: UUID, svc: ServicesDep, _who: PersonalReader,
                at: At = None, as_of: AsOf = None,
                min_position: MinPosition = None) -> dict[str, Any]:
    """The full client card (§5) at `at` as known at `as_of` (see projections.client_views)."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        found = full_card(conn, client_id, at=at_, as_of=as_of_)
    if found is None:
        raise HTTPException(404, f"no client with id {client_id}")
    return reveal(svc, opened(svc.personal, found))  # type: ignore[no-any-return]


@router.get("/clients/{client_id}/events", response_model=EventPage,
            operation_id="list_client_events")
def client_events(client_id: UUID, svc: ServicesDep, _who: PersonalReader,
                  cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  as_of: Annotated[Instant | None, Query(
                      description="Only events recorded at or before this moment.")] = None,
                  min_position: MinPosition = None) -> EventPage:
    """The client's history in store order, with both times and the actor of every event."""
    # Not held to the caller's own writes: this history must stay readable while the read
    # models cannot move (a full disk); reading it from the store itself is issue 21.
    wait_until(svc, min_position)
    if as_of is not None and as_of.tzinfo is None:
        raise HTTPException(422, "as_of needs a UTC offset")
    with svc.engine.connect() as conn:
        rows = history_page(conn, client_id, after=int(cursor or 0), limit=limit + 1,
                            recorded_until=as_of)
        if not rows and cursor is None and card_query(conn, client_id) is None:
            raise HTTPException(404, f"no client with id {client_id}")
    more = len(rows) > limit
    rows = rows[:limit]
    items = _load(svc, rows)
    return EventPage(items=items, next_cursor=str(rows[-1].position) if more else None)


def _load(svc: ServicesDep, rows: list[Any]) -> list[EventOut]:
    """Fetch the events themselves from their streams (one read per stream in the page)."""
    wanted: dict[UUID, list[Any]] = {}
    for row in rows:
        wanted.setdefault(row.stream_id, []).append(row)
    found: dict[tuple[UUID, int], Any] = {}
    for stream_id, stream_rows in wanted.items():
        versions = [r.version for r in stream_rows]
        for event in svc.app.events.get(stream_id, gt=min(versions) - 1, lte=max(versions)):
            found[(stream_id, event.originator_version)] = event
    out = []
    for row in rows:
        event = found[(row.stream_id, row.version)]
        out.append(EventOut(
            event_id=event_id_of(row.stream_id, row.version), type=row.type,
            position=row.position, stream_id=row.stream_id, version=row.version,
            client_id=event.client_id, occurred_at=event.occurred_at.isoformat(),
            recorded_at=event.timestamp.isoformat(),
            actor=Actor(user=event.actor, role=event.actor_role),
            data=jsonable(event_data(event))))
    return out
