"""Situation reads: the list with clock states, the evidence of each figure, the reaction report.

No personal data here (ids, kinds, times and figures only), so every reporting role may read.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import READ_REPORTS, Principal, ServicesDep, require
from api.routers.read_params import Moment, resolve
from api.schemas import (
    PROBLEM_RESPONSES,
    ReactionTimesReport,
    SituationEvidence,
    SituationList,
    described,
)
from commands.fields import Instant
from domain.catalogue import jsonable
from domain.errors import InvalidValueError
from domain.values import SituationKind
from projections.reaction_times import (
    ReactionPolicy,
    evidence,
    list_situations,
    reaction_report,
    summary,
)

router = APIRouter(tags=["situations"], responses=PROBLEM_RESPONSES,
                   dependencies=[SESSION_READ])

Reader = Annotated[Principal, Depends(require(*READ_REPORTS))]
At = Annotated[Moment | None, Query(description=(
    "The business moment the clocks are read at (RFC 3339 with offset, or a date: the end of "
    "that day in CRM_TIMEZONE); default now."))]
AsOf = Annotated[Moment | None, Query(description=(
    "Knowledge cut-off: only events recorded at or before it count (RFC 3339 with offset, or "
    "a date: the end of that day in CRM_TIMEZONE); default now."))]
Basis = Annotated[Literal["as_measured", "current"], Query(description=(
    "Calendar and SLA target versions: those in force (by recorded time) when each clock "
    "stopped, or those in force now (as of `as_of`)."))]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = r"^\d{1,20}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_MICRO = timedelta(microseconds=1)


def _moments(request: Request, svc: ServicesDep, at: datetime | date | None,
             as_of: datetime | date | None) -> tuple[datetime, datetime, ReactionPolicy]:
    scheduler = svc.alerts
    if scheduler is None:
        raise HTTPException(503, "reaction times are not configured in this service")
    now = scheduler.clock()
    at, as_of = resolve(request, at), resolve(request, as_of)
    return (at or now).astimezone(UTC), (as_of or now).astimezone(UTC), scheduler.policy


def _cursor_out(key: tuple[datetime, UUID] | None) -> str | None:
    return None if key is None else f"{(key[0] - _EPOCH) // _MICRO}_{key[1]}"


def _cursor_in(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    micros, situation_id = cursor.split("_", 1)
    try:
        return _EPOCH + int(micros) * _MICRO, UUID(situation_id)
    except (ValueError, OverflowError):  # the pattern admits some that are no cursor of ours
        raise InvalidValueError("not a cursor this list gave", field="query.cursor") from None


@router.get("/situations", summary="List situations with their clocks at a moment",
            operation_id="list_situations", **described(SituationList))
def situations(request: Request, svc: ServicesDep, _who: Reader,
               status: Annotated[Literal["open", "paused", "resolved"] | None, Query(
                   description="The situation's status at `at`.")] = None,
               breached: Annotated[bool | None, Query(
                   description="Whether either clock is past its SLA target at `at`.")] = None,
               kind: SituationKind | None = None, specialist: UUID | None = None,
               cursor: Annotated[str | None, Query(pattern=_CURSOR)] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 50, at: At = None,
               as_of: AsOf = None, calendar: Basis = "as_measured",
               min_position: MinPosition = None) -> dict[str, Any]:
    """Situations in order of opening, with both clocks' figures and SLA state at `at`."""
    wait_until(svc, min_position, _who)
    at_, as_of_, policy = _moments(request, svc, at, as_of)
    with svc.engine.connect() as conn:
        items, last = list_situations(
            conn, policy, at=at_, as_of=as_of_, basis=calendar, status=status,
            breached=breached, kind=None if kind is None else str(kind), specialist=specialist,
            after=_cursor_in(cursor), limit=limit)
    return jsonable({"at": at_, "as_of": as_of_, "calendar": calendar,  # type: ignore[no-any-return]
                     "items": [summary(m) for m in items], "next_cursor": _cursor_out(last)})


@router.get("/situations/{situation_id}/evidence", operation_id="get_situation_evidence",
            **described(SituationEvidence),
            summary="The evidence behind a situation's reaction figures")
def situation_evidence(request: Request, situation_id: UUID, svc: ServicesDep, _who: Reader,
                       at: At = None, as_of: AsOf = None, calendar: Basis = "as_measured",
                       min_position: MinPosition = None) -> dict[str, Any]:
    """The events that start, stop and pause each clock, the calendar and SLA target versions
    applied, and the arithmetic: enough to recompute every figure by hand."""
    wait_until(svc, min_position, _who)
    at_, as_of_, policy = _moments(request, svc, at, as_of)
    with svc.engine.connect() as conn:
        found = evidence(conn, policy, situation_id, at=at_, as_of=as_of_, basis=calendar)
    if found is None:
        raise HTTPException(404, f"no situation {situation_id} opened by {at_.isoformat()} "
                                 f"and recorded by {as_of_.isoformat()}")
    return jsonable(found)  # type: ignore[no-any-return]


REPORT_IDS = 100  # ids per list by default: a report over every situation stays small


@router.get("/reports/reaction-times", tags=["reports"],
            operation_id="get_reaction_times_report", **described(ReactionTimesReport),
            summary="Reaction times per specialist and kind")
def reaction_times(request: Request, svc: ServicesDep, _who: Reader,
                   from_: Annotated[Instant | None, Query(
                       alias="from", description="Situations opened at or after (business time).")
                   ] = None,
                   to: Annotated[Instant | None, Query(
                       description="Situations opened before (business time).")] = None,
                   kind: SituationKind | None = None, specialist: UUID | None = None,
                   at: At = None, as_of: AsOf = None, calendar: Basis = "as_measured",
                   ids_limit: Annotated[int | None, Query(ge=0, le=1_000_000, description=(
                       "At most this many ids in each list of situation ids (the first by "
                       "id; counts stay exact; `ids_truncated` tells if a list was cut). "
                       "Omitted: 100."))] = None,
                   all_ids: Annotated[bool, Query(description=(
                       "List every situation id (ignores ids_limit)."))] = False,
                   min_position: MinPosition = None) -> dict[str, Any]:
    """Per specialist and kind: count, median, p90 (nearest rank) and breach rate of the first
    reaction and resolution clocks; every figure names the situation and events behind it."""
    if from_ is not None and to is not None and to <= from_:
        raise HTTPException(422, "`to` must be after `from`")
    wait_until(svc, min_position, _who)
    at_, as_of_, policy = _moments(request, svc, at, as_of)
    with svc.engine.connect() as conn:
        report = reaction_report(
            conn, policy, at=at_, as_of=as_of_, basis=calendar, opened_from=from_,
            opened_before=to, kind=None if kind is None else str(kind), specialist=specialist,
            ids_limit=None if all_ids else REPORT_IDS if ids_limit is None else ids_limit)
    return jsonable(report)  # type: ignore[no-any-return]
