"""Client reads: the card and the client's event history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, NamedTuple
from uuid import UUID

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, select

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import PersonalReader, ServicesDep, reveal
from api.errors import NotYet
from api.responses import JsonBody
from api.routers.read_params import AsOf, At, Moment, moments, resolve
from api.schemas import (
    PROBLEM_RESPONSES,
    Actor,
    ClientCard,
    EventOut,
    EventPage,
    described,
)
from domain.base import event_id_of
from domain.catalogue import event_data, jsonable
from projections.base import positions
from projections.client_views import full_card, opened
from projections.clients import client_state
from projections.history import ClientHistory, history_page
from projections.history import client_events as history_rows

_STORE_PAGE = 2000
router = APIRouter(tags=["clients"], responses=PROBLEM_RESPONSES)

@router.get("/clients/{client_id}/card", operation_id="get_client_card",
            dependencies=[SESSION_READ], **described(ClientCard))
def client_card(request: Request, client_id: UUID, svc: ServicesDep, _who: PersonalReader,
                at: At = None, as_of: AsOf = None,
                min_position: MinPosition = None) -> JsonBody:
    """The full client card (§5) at `at` as known at `as_of` (see projections.client_views)."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        found = existed(conn, client_id, full_card(conn, client_id, at=at_, as_of=as_of_),
                        at=at_ if at is not None else None, as_of=as_of_)
    return JsonBody(reveal(svc, opened(svc.personal, found)))


def existed(conn: Any, client_id: UUID, found: dict[str, Any] | None, *, at: datetime | None,
            as_of: datetime | None) -> dict[str, Any]:
    """`found` (a card or brief), or 404 naming the parameter: for a knowledge cut-off before
    the client was first recorded (`as_of`), and alike for a business moment before its
    earliest event (`at`, when given; history entered later but dated before the
    registration counts): before the client existed there is no card (docs/decisions.md)."""
    if found is None:
        if as_of is not None and client_state(conn, client_id, None) is not None:
            raise NotYet(f"client {client_id} was not yet recorded at {as_of.isoformat()}",
                         "query.as_of")
        raise HTTPException(404, f"no client with id {client_id}")
    if at is not None:
        query = select(func.min(history_rows.c.occurred_at)).where(
            history_rows.c.client_id == client_id)
        if as_of is not None:
            query = query.where(history_rows.c.recorded_at <= as_of)
        first = conn.execute(query).scalar()
        if first is not None and at < first:
            raise NotYet(f"client {client_id} has no event before {first.isoformat()} "
                         f"(business time), after {at.isoformat()}", "query.at")
    return found


@router.get("/clients/{client_id}/events", response_model=EventPage,
            operation_id="list_client_events")
def client_events(request: Request, client_id: UUID, svc: ServicesDep, _who: PersonalReader,
                  cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100,
                  as_of: Annotated[Moment | None, Query(description=(
                      "Only events recorded at or before this moment (an instant with "
                      "offset, or a date: the end of that day in CRM_TIMEZONE)."))] = None,
                  min_position: Annotated[int | None, Query(ge=0, description=(
                      "Accepted for symmetry with the other reads; never waited for: this "
                      "history is read from the store, complete up to the request."))] = None
                  ) -> EventPage:
    """The client's history in store order, with both times and the actor of every event;
    read from the event store, so it holds every event stored before the request, however far
    the read models lag."""
    head = svc.head()
    if min_position is not None and min_position > head:
        raise RequestValidationError([{
            "loc": ("query", "min_position"), "type": "less_than_equal",
            "msg": f"no event has been stored at position {min_position} (last is {head})"}])
    until = resolve(request, as_of)
    refs = _history(svc, client_id, after=int(cursor or 0), limit=limit + 1, until=until,
                    head=head)
    if not refs and cursor is None:
        _known(svc, client_id, until)
    more = len(refs) > limit
    refs = refs[:limit]
    items = _load(svc, refs)
    return EventPage(items=items, next_cursor=str(refs[-1].position) if more else None)


class _Ref(NamedTuple):
    position: int
    stream_id: UUID
    version: int
    type: str


def _history(svc: ServicesDep, client_id: UUID, *, after: int, limit: int,
             until: datetime | None, head: int) -> list[_Ref]:
    """The client's first `limit` events after `after`, up to the store's `head`: from the
    client_history index as far as it has gone, the rest straight from the store's log (in
    pages, stopping once enough are found), so the read models' lag never hides an event."""
    with svc.engine.connect() as conn:
        # Read before the rows: every event at or below it is in the index (same transaction).
        indexed = positions(conn, [ClientHistory.name]).get(ClientHistory.name, 0)
        found = {r.position: _Ref(r.position, r.stream_id, r.version, r.type)
                 for r in history_page(conn, client_id, after=after, limit=limit,
                                       recorded_until=until)}
    start, tail = max(indexed, after) + 1, 0
    while start <= head and tail < limit:
        page = svc.read_store(start, min(_STORE_PAGE, head - start + 1))
        if not page:
            break
        for position, event in page:
            if position > head:
                break
            if getattr(event, "client_id", None) == client_id and (
                    until is None or event.timestamp <= until):
                tail += 1
                found.setdefault(position, _Ref(position, event.originator_id,
                                                event.originator_version, type(event).__name__))
        start = page[-1][0] + 1
    return sorted(found.values())[:limit]


def _known(svc: ServicesDep, client_id: UUID, until: datetime | None) -> None:
    """404 for a client the store does not hold (or did not hold by `until`)."""
    registered = svc.app.recorder.select_events(client_id, limit=1)
    if not registered:
        raise HTTPException(404, f"no client with id {client_id}")
    if until is not None:
        first = svc.app.events.get(client_id, lte=1)
        recorded = next(iter(first)).timestamp
        if recorded > until:
            raise NotYet(f"client {client_id} was first recorded at {recorded.isoformat()}, "
                         "after this moment", "query.as_of")


def _load(svc: ServicesDep, rows: list[_Ref]) -> list[EventOut]:
    """Fetch the events themselves from their streams (one read per stream in the page)."""
    wanted: dict[UUID, list[_Ref]] = {}
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
