"""Service-station facts: work orders, survey attempts, complaints and specialist assignments.

Rows are facts carrying business time (`*_at`) and record time (`*_recorded_at`) of every state
change, so the survey register and the satisfaction report aggregate at query time and `as_of`
is a WHERE clause. Every write is keyed by the event's own identity (insert-or-replace), so an
event applied twice leaves the rows as they were.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
    update,
)

from domain.client import Client
from domain.service import Complaint, WorkOrder
from domain.survey import Survey
from projections.base import Projection, UtcDateTime, metadata, upsert

work_orders = Table(
    "svc_work_orders", metadata,
    Column("work_order_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("asset", String(200), nullable=False),
    Column("stages", JSON, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("opened_recorded_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),
    Column("closed_recorded_at", UtcDateTime),
    Column("amount", Numeric(18, 4)),
    Column("currency", String(3)),
    Index("ix_svc_work_orders_order", "opened_at", "work_order_id"),
)

# One row per survey attempt; the outcome fields stay null while the call is in progress.
surveys = Table(
    "svc_surveys", metadata,
    Column("survey_id", Uuid, primary_key=True),
    Column("work_order_id", Uuid, nullable=False, index=True),
    Column("client_id", Uuid, nullable=False, index=True),  # the card's satisfaction history
    Column("template_id", Uuid, nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("started_recorded_at", UtcDateTime, nullable=False),
    Column("start_position", BigInteger, nullable=False),
    Column("outcome", String(20)),
    Column("completed_at", UtcDateTime, index=True),
    Column("completed_recorded_at", UtcDateTime),
    Column("final_ticks", JSON),
)

# The questions a template version asks (from SurveyStarted, which carries them): kept once per
# version rather than per survey, so the report reads them once.
survey_questions = Table(
    "svc_survey_questions", metadata,
    Column("template_id", Uuid, primary_key=True),
    Column("template_version", Integer, primary_key=True),
    Column("questions", JSON, nullable=False),
)

complaints = Table(
    "svc_complaints", metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("work_order_id", Uuid),
    Column("stage", String(100)),
    Column("occurred_at", UtcDateTime, nullable=False, index=True),
    Column("recorded_at", UtcDateTime, nullable=False),
)

# The client's specialist over business time (registration, then each reassignment).
assignments = Table(
    "svc_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("specialist_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


class ServiceSurveys(Projection):
    """Work orders, surveys, complaints and assignments for the register and satisfaction report."""

    name = "service_surveys"
    tables = (work_orders, surveys, survey_questions, complaints, assignments)

    def apply(self, conn: Connection, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(conn, event, position)

    def _WorkOrderOpened(self, conn: Connection, e: WorkOrder.WorkOrderOpened,
                         pos: int) -> None:
        upsert(conn, work_orders, {
            "work_order_id": e.originator_id, "client_id": e.client_id, "asset": e.asset,
            "stages": list(e.stages), "opened_at": e.occurred_at,
            "opened_recorded_at": e.timestamp, "closed_at": None, "closed_recorded_at": None,
            "amount": None, "currency": None}, ["work_order_id"])

    def _WorkOrderClosed(self, conn: Connection, e: WorkOrder.WorkOrderClosed, pos: int) -> None:
        conn.execute(update(work_orders).where(work_orders.c.work_order_id == e.originator_id)
                     .values(closed_at=e.occurred_at, closed_recorded_at=e.timestamp,
                             amount=e.amount, currency=e.currency))

    def _SurveyStarted(self, conn: Connection, e: Survey.SurveyStarted, pos: int) -> None:
        questions = [{"id": q["id"], "stage": q["stage"], "text": q["text"]}
                     for q in e.questions]
        upsert(conn, survey_questions, {
            "template_id": e.template_id, "template_version": e.template_version,
            "questions": questions}, ["template_id", "template_version"])
        upsert(conn, surveys, {
            "survey_id": e.originator_id, "work_order_id": e.work_order_id,
            "client_id": e.client_id, "template_id": e.template_id,
            "template_version": e.template_version,
            "started_at": e.occurred_at, "started_recorded_at": e.timestamp,
            "start_position": pos, "outcome": None, "completed_at": None,
            "completed_recorded_at": None, "final_ticks": None}, ["survey_id"])

    def _SurveyCompleted(self, conn: Connection, e: Survey.SurveyCompleted, pos: int) -> None:
        # Ticks set along the way are not kept: the completion carries the final ticks.
        conn.execute(update(surveys).where(surveys.c.survey_id == e.originator_id).values(
            outcome=e.outcome, completed_at=e.occurred_at, completed_recorded_at=e.timestamp,
            final_ticks=dict(e.final_ticks)))

    def _ComplaintRegistered(self, conn: Connection, e: Complaint.ComplaintRegistered,
                             pos: int) -> None:
        upsert(conn, complaints, {
            "complaint_id": e.originator_id, "client_id": e.client_id,
            "work_order_id": e.work_order_id, "stage": e.stage, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp}, ["complaint_id"])

    def _ClientRegistered(self, conn: Connection, e: Client.ClientRegistered, pos: int) -> None:
        self._assign(conn, e, e.specialist_id)

    def _ClientReassigned(self, conn: Connection, e: Client.ClientReassigned, pos: int) -> None:
        self._assign(conn, e, e.specialist_id)

    @staticmethod
    def _assign(conn: Connection, e: Any, specialist_id: Any) -> None:
        upsert(conn, assignments, {
            "client_id": e.originator_id, "version": e.originator_version,
            "specialist_id": specialist_id, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp}, ["client_id", "version"])
