"""Reference-data reads: specialists, survey templates, calendars, SLA targets, plans.

Each lists what was known at `as_of` (default: everything recorded). Specialists carry staff
names and e-mail addresses, so analysts (reports without personal data) do not read them; the
rest is readable by every reading role (docs/access.md).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import READ_REPORTS, PersonalReader, Principal, ServicesDep, require
from api.routers.read_params import AsOf, moments
from api.schemas import (
    PROBLEM_RESPONSES,
    CalendarList,
    PlanList,
    SlaTargetList,
    SpecialistList,
    SurveyTemplateList,
    described,
)
from domain.catalogue import jsonable
from projections.reference import (
    list_calendars,
    list_plans,
    list_sla_targets,
    list_specialists,
    list_templates,
)

router = APIRouter(tags=["reference data"], responses=PROBLEM_RESPONSES,
                   dependencies=[SESSION_READ])

Reader = Annotated[Principal, Depends(require(*READ_REPORTS))]


def _body(items: list[dict[str, Any]], as_of: Any) -> dict[str, Any]:
    return jsonable({"as_of": as_of, "items": items})  # type: ignore[no-any-return]


@router.get("/specialists", operation_id="list_specialists", **described(SpecialistList))
def specialists(request: Request, svc: ServicesDep, who: PersonalReader, as_of: AsOf = None,
                min_position: MinPosition = None) -> dict[str, Any]:
    """Specialists (staff who serve clients), by name."""
    wait_until(svc, min_position, who)
    cut = moments(request, None, as_of)[1]
    with svc.engine.connect() as conn:
        return _body(list_specialists(conn, cut), cut)


@router.get("/survey-templates", operation_id="list_survey_templates",
            **described(SurveyTemplateList))
def survey_templates(request: Request, svc: ServicesDep, who: Reader, as_of: AsOf = None,
                     min_position: MinPosition = None) -> dict[str, Any]:
    """Survey templates: the newest version's questions (with stages) and every version."""
    wait_until(svc, min_position, who)
    cut = moments(request, None, as_of)[1]
    with svc.engine.connect() as conn:
        return _body(list_templates(conn, cut), cut)


@router.get("/calendars", operation_id="list_calendars", **described(CalendarList))
def calendars(request: Request, svc: ServicesDep, who: Reader, as_of: AsOf = None,
              min_position: MinPosition = None) -> dict[str, Any]:
    """Business calendars: the latest version of each (time zone, hours, holidays)."""
    wait_until(svc, min_position, who)
    cut = moments(request, None, as_of)[1]
    with svc.engine.connect() as conn:
        return _body(list_calendars(conn, cut), cut)


@router.get("/sla-targets", operation_id="list_sla_targets", **described(SlaTargetList))
def sla_targets(request: Request, svc: ServicesDep, who: Reader, as_of: AsOf = None,
                min_position: MinPosition = None) -> dict[str, Any]:
    """SLA targets per situation kind: the latest version of each."""
    wait_until(svc, min_position, who)
    cut = moments(request, None, as_of)[1]
    with svc.engine.connect() as conn:
        return _body(list_sla_targets(conn, cut), cut)


@router.get("/plans", operation_id="list_plans", **described(PlanList))
def plans(request: Request, svc: ServicesDep, who: Reader, as_of: AsOf = None,
          month: Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                             examples=["2026-11"])] = None,
          specialist: UUID | None = None, min_position: MinPosition = None) -> dict[str, Any]:
    """Payment plans in force per specialist and month (the latest set of each)."""
    wait_until(svc, min_position, who)
    cut = moments(request, None, as_of)[1]
    with svc.engine.connect() as conn:
        return _body(list_plans(conn, cut, month=month, specialist_id=specialist), cut)
