"""Report reads: payments against plan per specialist and month, and the controls."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from api.deps import READ_REPORTS, Principal, ServicesDep, require
from api.routers.clients import MinPosition, wait_until
from api.routers.read_params import AsOf, At, moments, zone
from api.schemas import PROBLEM_RESPONSES, ControlsReport, PaymentsReport, described
from domain.catalogue import jsonable
from projections.controls import controls_report
from projections.payments_report import payments_report
from projections.promises import promise_keeping
from projections.reaction_times import list_situations, summary

router = APIRouter(tags=["reports"], responses=PROBLEM_RESPONSES)

ReportReader = Annotated[Principal, Depends(require(*READ_REPORTS))]
Month = Annotated[str, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", examples=["2026-11"],
                             description="Calendar month YYYY-MM in the zone `tz`.")]


@router.get("/reports/payments", operation_id="get_payments_report",
            **described(PaymentsReport))
def payments(request: Request, svc: ServicesDep, _who: ReportReader, month: Month,
             at: At = None, as_of: AsOf = None, specialist: UUID | None = None,
             tz: Annotated[str | None, Query(max_length=64, description=(
                 "IANA zone of the calendar months and days; default CRM_TIMEZONE."))] = None,
             min_position: MinPosition = None) -> dict[str, Any]:
    """Payments against plan per specialist: daily cumulative %, forecast, debtors, acts."""
    wait_until(svc, min_position, _who)
    if not 1900 <= int(month[:4]) < 9000:
        raise HTTPException(422, "month: the year must lie between 1900 and 9000")
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        report = payments_report(conn, month=month, tz=zone(request, tz), at=at_,
                                 as_of=as_of_, specialist_id=specialist)
    return jsonable(report)  # type: ignore[no-any-return]


@router.get("/reports/controls", operation_id="get_controls_report",
            **described(ControlsReport))
def controls(request: Request, svc: ServicesDep, _who: ReportReader, at: At = None,
             as_of: AsOf = None, specialist: UUID | None = None,
             late_entry_hours: Annotated[float, Query(gt=0, le=24 * 365)] = 24,
             late_entry_days: Annotated[int, Query(ge=1, le=366, description=(
                 "Look for late entries among events that occurred in these days."))] = 30,
             feedback_days: Annotated[int, Query(ge=0, le=366)] = 7,
             limit: Annotated[int, Query(ge=1, le=10_000, description=(
                 "Items per section (counts stay exact)."))] = 1000,
             promise_months: Annotated[int, Query(ge=1, le=36, description=(
                 "Promise keeping: agreements due in this many calendar months, ending "
                 "with the month of `at`."))] = 3,
             tz: Annotated[str | None, Query(max_length=64, description=(
                 "IANA zone of the calendar months; default CRM_TIMEZONE."))] = None,
             min_position: MinPosition = None) -> dict[str, Any]:
    """Overdue planned contacts and agreements, late data entry, card gaps, work unrated,
    promise keeping."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        report = controls_report(conn, at=at_, as_of=as_of_, specialist_id=specialist,
                                 late_entry_hours=late_entry_hours,
                                 period=timedelta(days=late_entry_days),
                                 feedback_days=feedback_days, limit=limit)
        if svc.alerts is not None:
            breached, _next = list_situations(conn, svc.alerts.policy, at=at_,
                                              as_of=as_of_ or at_, breached=True,
                                              specialist=specialist, limit=limit)
            report["reaction_time_breaches"] = {
                "count": len(breached),
                "items": [summary(m) for m in breached]}
        report["promise_keeping"] = promise_keeping(
            conn, at=at_, as_of=as_of_, tz=zone(request, tz), months=promise_months,
            specialist_id=specialist)
    return jsonable(report)  # type: ignore[no-any-return]
