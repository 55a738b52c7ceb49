"""Service-station reads: the survey register, the satisfaction report and the segments report.

Every read takes `at` (the business moment described, default now) and `as_of` (only events
recorded at or before it, default now), both RFC 3339 with an offset, and `tz` (the zone of
calendar days and months, default the server's CRM_TIMEZONE).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import READ_REPORTS, PersonalReader, Principal, ServicesDep, require
from api.routers.read_params import Moment, resolve
from api.schemas import (
    PROBLEM_RESPONSES,
    SatisfactionReport,
    SegmentsReport,
    WorkOrderRegister,
    described,
)
from commands.fields import Instant
from domain.catalogue import jsonable
from domain.errors import InvalidValueError
from domain.values import EARLIEST_YEAR, LATEST_YEAR
from projections.personal import shown
from projections.satisfaction import satisfaction_report
from projections.segment_report import (
    DEFAULT_REVENUE_BANDS,
    DEFAULT_VISIT_BANDS,
    segments_report,
)
from projections.survey_register import RegisterKey, survey_register

router = APIRouter(tags=["service reports"], responses=PROBLEM_RESPONSES,
                   dependencies=[SESSION_READ])

ReportReader = Annotated[Principal, Depends(require(*READ_REPORTS))]
At = Annotated[Moment | None, Query(
    description="The business moment the answer describes (RFC 3339 with offset, or a date: "
                "the end of that day in `tz`); default now.")]
AsOf = Annotated[Moment | None, Query(
    description="Knowledge cut-off: only events recorded at or before it (RFC 3339 with "
                "offset, or a date: the end of that day in `tz`); default now.")]
Tz = Annotated[str | None, Query(
    max_length=64, description="IANA zone of calendar days and months; default CRM_TIMEZONE.",
    examples=["Europe/Berlin"])]
Limit = Annotated[int, Query(ge=1, le=500)]
SurveyStatus = Literal["open", "not_due", "due", "overdue", "done", "unreachable"]
SegmentName = Literal["active", "low_active", "at_risk", "lost", "never"]


# The instants writes take (commands.base.Instant), so month shifts and local days have room.
def _in_range(**instants: datetime | None) -> None:
    for name, value in instants.items():
        if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise InvalidValueError(f"must lie in the years {EARLIEST_YEAR} to {LATEST_YEAR}",
                                    field=f"query.{name}")


def _moments(request: Request, at: datetime | date | None, as_of: datetime | date | None,
             tz: str | None) -> tuple[datetime, datetime, str]:
    """Defaults from this app's clock and settings (a test's manual clock included)."""
    container = getattr(request.app.state, "container", None)
    now = container.clock() if container is not None else datetime.now(UTC)
    zone = tz or (container.settings.timezone if container is not None else "UTC")
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError, OSError):
        raise InvalidValueError(f"unknown IANA time zone {zone!r}", field="query.tz") from None
    at, as_of = resolve(request, at, zone), resolve(request, as_of, zone)
    _in_range(at=at, as_of=as_of)
    return at or now, as_of or now, zone


def _json(body: dict[str, Any]) -> dict[str, Any]:
    """Exact JSON: decimals as strings, instants RFC 3339, dates ISO, ids as strings."""
    out: dict[str, Any] = jsonable(body)
    return out


@router.get("/work-orders", operation_id="list_work_orders",
            **described(WorkOrderRegister))
def work_orders(request: Request, svc: ServicesDep, _who: PersonalReader,
                survey_status: SurveyStatus | None = None, at: At = None, as_of: AsOf = None,
                tz: Tz = None,
                cursor: Annotated[str | None, Query(pattern=r"^-?\d{1,20}_[0-9a-f]{32}$")] = None,
                limit: Limit = 100, min_position: MinPosition = None) -> dict[str, Any]:
    """The survey register: work orders with their survey status (due 3-4 local days after
    closing, overdue after, done, unreachable; not_due and open too), oldest opened first."""
    wait_until(svc, min_position, _who)
    at_, as_of_, zone = _moments(request, at, as_of, tz)
    try:
        after = RegisterKey.decode(cursor) if cursor else None
    except (ValueError, OverflowError):
        raise InvalidValueError("not a cursor this list gave out", field="query.cursor") from None
    _in_range(cursor=after.opened_at if after else None)
    with svc.engine.connect() as conn:
        items, more = survey_register(conn, at=at_, as_of=as_of_, tz=zone,
                                      status=survey_status, limit=limit, after=after)
    svc.personal.preload(item["client_id"] for item in items)
    for item in items:  # the asset is personal: opened here, "[erased]" once erased
        item["asset"] = shown(svc.personal, item["client_id"], item["asset"])
    return _json({"at": at_, "as_of": as_of_, "timezone": zone, "items": items,
                  "next_cursor": more.encode() if more else None})


@router.get("/reports/satisfaction", operation_id="get_satisfaction_report",
            **described(SatisfactionReport))
def satisfaction(request: Request, svc: ServicesDep, _who: ReportReader,
                 from_: Annotated[Instant | None, Query(
                     alias="from", description="Period start (inclusive), by survey end "
                                               "occurred_at.")] = None,
                 to: Annotated[Instant | None, Query(
                     description="Period end (exclusive).")] = None,
                 at: At = None, as_of: AsOf = None, tz: Tz = None,
                 specialist: Annotated[UUID | None, Query(
                     description="Only clients assigned to this specialist at the time.")] = None,
                 segment: Annotated[SegmentName | None, Query(
                     description="Only clients in this segment at `at`.")] = None,
                 by_segment: Annotated[bool, Query(
                     description="Add the figures per client segment at `at`.")] = False,
                 min_position: MinPosition = None) -> dict[str, Any]:
    """Satisfaction: surveys attempted/completed, reach, fully satisfied, % satisfied per question
    and stage, complaints per stage, monthly trend, stages worst first (no personal data)."""
    wait_until(svc, min_position, _who)
    at_, as_of_, zone = _moments(request, at, as_of, tz)
    _in_range(**{"from": from_, "to": to})
    if from_ is not None and to is not None and to <= from_:
        raise InvalidValueError("must be later than from", field="query.to")
    with svc.engine.connect() as conn:
        report = satisfaction_report(conn, at=at_, as_of=as_of_, tz=zone, start=from_, end=to,
                                     specialist=specialist, segment=segment,
                                     by_segment=by_segment)
    return _json({"at": at_, "as_of": as_of_, "timezone": zone, "from": from_, "to": to,
                  "specialist": specialist, "segment": segment,
                  "by_segment": report.pop("by_segment", None), **report})


@router.get("/reports/segments", operation_id="get_segments_report",
            **described(SegmentsReport))
def segments(request: Request, svc: ServicesDep, _who: ReportReader, at: At = None,
             as_of: AsOf = None, tz: Tz = None,
             segment: Annotated[SegmentName | None, Query(
                 description="Also list this segment's client ids (paginated).")] = None,
             cursor: Annotated[UUID | None, Query(
                 description="next_cursor of the previous page of client ids.")] = None,
             limit: Limit = 100,
             visit_bands: Annotated[str, Query(
                 pattern=r"^\d{1,6}(,\d{1,6}){0,9}$",
                 description="Lower-inclusive visit thresholds of the matrix rows.")]
             = ",".join(map(str, DEFAULT_VISIT_BANDS)),
             revenue_bands: Annotated[str, Query(
                 pattern=r"^\d{1,14}(\.\d{1,4})?(,\d{1,14}(\.\d{1,4})?){0,9}$",
                 description="Lower-inclusive revenue thresholds of the matrix columns.")]
             = ",".join(map(str, DEFAULT_REVENUE_BANDS)),
             currency: Annotated[str | None, Query(
                 pattern=r"^[A-Z]{3}$", description="Revenue currency; needed only when the "
                                                    "window holds several.")] = None,
             min_position: MinPosition = None) -> dict[str, Any]:
    """Segments at `at` (active, low_active, at_risk, lost, never), the loyalty-value matrix over
    the last 13 months and the transitions since the same day a month earlier."""
    wait_until(svc, min_position, _who)
    at_, as_of_, zone = _moments(request, at, as_of, tz)
    # The patterns above admit only digits, so these conversions cannot fail.
    visits = tuple(int(v) for v in visit_bands.split(","))
    revenue = tuple(Decimal(v) for v in revenue_bands.split(","))
    with svc.engine.connect() as conn:
        try:
            report = segments_report(conn, at=at_, as_of=as_of_, tz=zone, segment=segment,
                                     after=cursor, limit=limit, visit_bands=visits,
                                     revenue_bands=revenue, currency=currency)
        except InvalidValueError as error:  # bands, or revenue in several currencies
            raise InvalidValueError(error.message, field=f"query.{error.field}") from None
    return _json({"at": at_, "as_of": as_of_, "timezone": zone, **report})
