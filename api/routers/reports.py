"""Report reads: payments against plan per specialist and month, and the controls."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import Connection

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import READ_REPORTS, Principal, ServicesDep, require
from api.routers.read_params import AsOf, At, moments, zone
from api.routers.situations import _cursor_out as situations_cursor
from api.schemas import (
    PROBLEM_RESPONSES,
    ControlSectionPage,
    ControlsReport,
    PaymentsReport,
    described,
)
from domain.catalogue import jsonable
from domain.errors import InvalidValueError
from domain.periods import chosen_period
from projections.controls import SECTIONS, SORTS, control_section, controls_report
from projections.payments_debts import decode_cursor
from projections.payments_report import payments_report, report_calendar
from projections.promises import promise_keeping
from projections.reaction_times import breached_situations, summary

router = APIRouter(tags=["reports"], responses=PROBLEM_RESPONSES, dependencies=[SESSION_READ])

ReportReader = Annotated[Principal, Depends(require(*READ_REPORTS))]
Period = Annotated[str | None, Query(
    pattern=r"^(19\d\d|[2-8]\d\d\d)-((0[1-9]|1[0-2])|Q[1-4])$",
    examples=["2026-11", "2026-Q4"],
    description="Calendar month YYYY-MM or quarter YYYY-Qn in the zone `tz`; default the month "
                "`at` falls in.")]
Month = Annotated[str | None, Query(
    pattern=r"^(19\d\d|[2-8]\d\d\d)-(0[1-9]|1[0-2])$", examples=["2026-11"],
    description="Alias of `period` for a month (the parameter's earlier name).")]
DebtorSort = Literal["outstanding_desc", "outstanding_asc", "oldest_due", "client"]


@router.get("/reports/payments", operation_id="get_payments_report",
            **described(PaymentsReport))
def payments(request: Request, svc: ServicesDep, _who: ReportReader, period: Period = None,
             month: Month = None, at: At = None, as_of: AsOf = None,
             specialist: UUID | None = None,
             tz: Annotated[str | None, Query(max_length=64, description=(
                 "IANA zone of the calendar months and days; default CRM_TIMEZONE."))] = None,
             calendar: Annotated[str | None, Query(max_length=64, description=(
                 "Name of the calendar whose working days are business days (previous "
                 "business day); default `default`, else the only calendar defined, else "
                 "Monday to Friday."))] = None,
             debtors_sort: Annotated[DebtorSort, Query(description=(
                 "Order of the debtors pages (ties by client id)."))] = "outstanding_desc",
             debtors_cursor: Annotated[str | None, Query(max_length=400, description=(
                 "debtors.next_cursor of the previous page (same sort)."))] = None,
             limit: Annotated[int, Query(ge=1, le=500, description=(
                 "Debtors and acts per page (totals stay exact)."))] = 50,
             min_position: MinPosition = None) -> dict[str, Any]:
    """Payments against plan, the head's morning view: totals and per specialist, last two
    months, change since the previous business day, daily curve with the 80%-by-the-20th
    marks, straight-line and expected forecasts, debtors (pages) and acts not returned."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of, zone(request, tz))
    with svc.engine.connect() as conn:
        return payments_view(conn, period=period, month=month, at=at_, as_of=as_of_,
                             tz=zone(request, tz), specialist=specialist, calendar=calendar,
                             debtors_sort=debtors_sort, debtors_cursor=debtors_cursor,
                             limit=limit)


def payments_view(conn: Connection, *, period: str | None, month: str | None, at: datetime,
                  as_of: datetime | None, tz: str, specialist: UUID | None = None,
                  calendar: str | None = None, debtors_sort: str = "outstanding_desc",
                  debtors_cursor: str | None = None, limit: int = 50) -> dict[str, Any]:
    """The payments route without HTTP (the console calls it too): parameters checked, each
    bad one a 422 naming it; the body as JSON-ready primitives."""
    try:
        chosen = chosen_period(period, month, at, tz)
    except ValueError as error:
        name, _, message = str(error).partition(": ")
        raise InvalidValueError(message, field=f"query.{name}") from None
    try:
        after = decode_cursor(debtors_cursor, debtors_sort) if debtors_cursor else None
    except ValueError as error:
        raise InvalidValueError(str(error), field="query.debtors_cursor") from None
    try:
        business = report_calendar(conn, calendar, as_of, tz)
    except LookupError:
        raise InvalidValueError("no such calendar", field="query.calendar") from None
    report = payments_report(conn, period=chosen, at=at, as_of=as_of, specialist_id=specialist,
                             calendar=business, debtors_sort=debtors_sort, debtors_limit=limit,
                             debtors_after=after, acts_limit=limit)
    return jsonable(report)  # type: ignore[no-any-return]


@router.get("/reports/controls", operation_id="get_controls_report",
            **described(ControlsReport))
def controls(request: Request, svc: ServicesDep, _who: ReportReader, at: At = None,
             as_of: AsOf = None, specialist: UUID | None = None,
             late_entry_hours: Annotated[float, Query(gt=0, le=24 * 365)] = 24,
             late_entry_days: Annotated[int, Query(ge=1, le=366, description=(
                 "Look for late entries among events that occurred in these days."))] = 30,
             feedback_days: Annotated[int, Query(ge=0, le=366)] = 7,
             limit: Annotated[int, Query(ge=1, le=1000, description=(
                 "Items on each section's first page (counts stay exact; the next pages: "
                 "/v1/reports/controls/{section})."))] = 100,
             promise_months: Annotated[int, Query(ge=1, le=36, description=(
                 "Promise keeping: agreements due in this many calendar months, ending "
                 "with the month of `at`."))] = 3,
             tz: Annotated[str | None, Query(max_length=64, description=(
                 "IANA zone of the calendar months; default CRM_TIMEZONE."))] = None,
             min_position: MinPosition = None) -> dict[str, Any]:
    """Overdue planned contacts and agreements, late data entry, card gaps, work unrated,
    promise keeping: each section's exact count and first page (`next_cursor` continues it on
    /v1/reports/controls/{section})."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        report = controls_report(conn, at=at_, as_of=as_of_, specialist_id=specialist,
                                 late_entry_hours=late_entry_hours,
                                 period=timedelta(days=late_entry_days),
                                 feedback_days=feedback_days, limit=limit)
        if svc.alerts is not None:  # exact count; the rest: /v1/situations?breached=true
            count, first, more = breached_situations(conn, svc.alerts.policy, at=at_,
                                                     as_of=as_of_ or at_,
                                                     specialist=specialist, limit=limit)
            report["reaction_time_breaches"] = {
                "count": count, "items": [summary(m) for m in first],
                "truncated": more is not None, "sort": "opened_at",
                "next_cursor": situations_cursor(more)}
        report["promise_keeping"] = promise_keeping(
            conn, at=at_, as_of=as_of_, tz=zone(request, tz), months=promise_months,
            specialist_id=specialist)
    return jsonable(report)  # type: ignore[no-any-return]


if TYPE_CHECKING:  # built from the projection's names at run time; plain strings to mypy
    ControlName = str
    ControlSort = str
else:
    ControlName = Literal[SECTIONS]
    ControlSort = Literal[tuple(sorted({s for sorts in SORTS.values() for s in sorts}))]


@router.get("/reports/controls/{section}", operation_id="get_controls_section",
            **described(ControlSectionPage))
def controls_section_page(
        request: Request, svc: ServicesDep, _who: ReportReader,
        section: Annotated[ControlName, Path(description="The controls section to page.")],
        at: At = None, as_of: AsOf = None, specialist: UUID | None = None,
        late_entry_hours: Annotated[float, Query(gt=0, le=24 * 365)] = 24,
        late_entry_days: Annotated[int, Query(ge=1, le=366)] = 30,
        feedback_days: Annotated[int, Query(ge=0, le=366)] = 7,
        sort: Annotated[ControlSort | None, Query(description=(
            "Order of the items: overdue_planned_contacts and overdue_agreements due_at or "
            "-due_at; late_data_entry occurred_at, -occurred_at or -delay_seconds; "
            "card_completeness registered or -registered; work_without_feedback completed_at "
            "or -completed_at. Default the first; ties by id."))] = None,
        cursor: Annotated[str | None, Query(max_length=400, description=(
            "next_cursor of the previous page (same section, sort and filters)."))] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        min_position: MinPosition = None) -> dict[str, Any]:
    """One page of a controls section, with its exact count, in the order asked."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        try:
            page = control_section(conn, section, at=at_, as_of=as_of_,
                                   specialist_id=specialist, late_entry_hours=late_entry_hours,
                                   period=timedelta(days=late_entry_days),
                                   feedback_days=feedback_days, sort=sort, cursor=cursor,
                                   limit=limit)
        except InvalidValueError as error:  # a sort of another section, or a foreign cursor
            raise InvalidValueError(error.message, field=f"query.{error.field}") from None
    return jsonable({"section": section, "at": at_, "as_of": as_of_,  # type: ignore[no-any-return]
                     "specialist_id": specialist, **page})
