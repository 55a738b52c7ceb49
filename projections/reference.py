"""Reference data as read: specialists and survey template versions (issue 18.5).

Calendars and SLA targets are kept by the situations projection, plans by the payments
projection; this one adds what no read model held: each specialist's registration and every
version of each survey template. Each row carries its business and record time, so `as_of`
is a WHERE clause. The reads here list all four kinds of reference data, each as known at a
cut-off.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Connection, Integer, String, Table, Uuid, select

from domain.reference import Specialist
from domain.survey import SurveyTemplate
from projections.base import UtcDateTime, metadata
from projections.facts import FAR_FUTURE, money
from projections.fold import FoldProjection, Rows
from projections.payments import payment_plans
from projections.situations import calendar_rows, target_rows

specialists = Table(
    "ref_specialists", metadata,
    Column("specialist_id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("email", String(320)),
    Column("user_id", String(200)),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

templates = Table(
    "ref_survey_templates", metadata,
    Column("template_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(200), nullable=False),
    Column("questions", JSON, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


class ReferenceData(FoldProjection):
    """Specialists and survey template versions; every event writes a whole row of its own."""

    name = "reference"
    tables = (specialists, templates)
    keeps = ()  # nothing is read back

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if isinstance(event, Specialist.SpecialistRegistered):
            rows.put(specialists, {
                "specialist_id": event.originator_id, "name": event.name,
                "email": event.email, "user_id": event.user_id,
                "registered_at": event.occurred_at, "recorded_at": event.timestamp})
        elif isinstance(event, (SurveyTemplate.SurveyTemplateDefined,
                                SurveyTemplate.SurveyTemplateRevised)):
            rows.put(templates, {
                "template_id": event.originator_id, "version": event.originator_version,
                "name": event.name, "questions": list(event.questions),
                "occurred_at": event.occurred_at, "recorded_at": event.timestamp})


def list_specialists(conn: Connection, as_of: datetime | None) -> list[dict[str, Any]]:
    t = specialists
    query = select(t).where(t.c.recorded_at <= (as_of or FAR_FUTURE)).order_by(
        t.c.name, t.c.specialist_id)
    return [dict(r._mapping) for r in conn.execute(query)]


def list_templates(conn: Connection, as_of: datetime | None) -> list[dict[str, Any]]:
    """Each template with its newest version known at `as_of` and the earlier ones."""
    t = templates
    query = select(t).where(t.c.recorded_at <= (as_of or FAR_FUTURE)).order_by(
        t.c.template_id, t.c.version)
    found: dict[UUID, dict[str, Any]] = {}
    for row in conn.execute(query):
        version = {"version": row.version, "name": row.name, "questions": row.questions,
                   "occurred_at": row.occurred_at, "recorded_at": row.recorded_at}
        entry = found.setdefault(row.template_id, {"template_id": row.template_id,
                                                   "versions": []})
        entry["versions"].append(version)
        entry.update({k: version[k] for k in ("version", "name", "questions")})
    return sorted(found.values(), key=lambda e: (e["name"], str(e["template_id"])))


def list_calendars(conn: Connection, as_of: datetime | None) -> list[dict[str, Any]]:
    t = calendar_rows
    query = select(t).where(t.c.recorded_at <= (as_of or FAR_FUTURE)).order_by(
        t.c.calendar_id, t.c.version)
    found: dict[UUID, dict[str, Any]] = {}
    for row in conn.execute(query):
        found[row.calendar_id] = {"calendar_id": row.calendar_id, "name": row.name,
                                  "version": row.version, "definition": row.definition,
                                  "recorded_at": row.recorded_at}
    return sorted(found.values(), key=lambda e: (e["name"] or "", str(e["calendar_id"])))


def list_sla_targets(conn: Connection, as_of: datetime | None) -> list[dict[str, Any]]:
    t = target_rows
    query = select(t).where(t.c.recorded_at <= (as_of or FAR_FUTURE)).order_by(
        t.c.target_id, t.c.version)
    found: dict[str, dict[str, Any]] = {}
    for row in conn.execute(query):
        found[row.situation_kind] = {
            "situation_kind": row.situation_kind, "version": row.version,
            "first_reaction_seconds": row.first_reaction_seconds,
            "resolution_seconds": row.resolution_seconds,
            "business_hours": row.business_hours, "warn_ratio": row.warn_ratio,
            "calendar_id": row.calendar_id, "recorded_at": row.recorded_at}
    return [found[k] for k in sorted(found)]


def list_plans(conn: Connection, as_of: datetime | None, *, month: str | None = None,
               specialist_id: UUID | None = None) -> list[dict[str, Any]]:
    """The plan in force per specialist and month: the latest set recorded by `as_of`."""
    t = payment_plans
    query = select(t).where(t.c.recorded_at <= (as_of or FAR_FUTURE))
    if month is not None:
        query = query.where(t.c.month == month)
    if specialist_id is not None:
        query = query.where(t.c.specialist_id == specialist_id)
    best: dict[tuple[UUID, str], Any] = {}
    for row in conn.execute(query):
        key = (row.specialist_id, row.month)
        current = best.get(key)
        if current is None or (row.recorded_at, row.version) > (current.recorded_at,
                                                                 current.version):
            best[key] = row
    return [{"specialist_id": r.specialist_id, "month": r.month, "amount": money(r.amount),
             "currency": r.currency, "set_at": r.occurred_at, "recorded_at": r.recorded_at}
            for _k, r in sorted(best.items(), key=lambda kv: (kv[0][1], str(kv[0][0])))]
