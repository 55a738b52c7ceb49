"""Service-station facts: work orders, survey attempts, complaints and specialist assignments.

Rows are facts carrying business time (`*_at`) and record time (`*_recorded_at`) of every state
change, so the survey register and the satisfaction report aggregate at query time and `as_of`
is a WHERE clause. Every write is keyed by the event's own identity (insert-or-replace), so an
event applied twice leaves the rows as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
)

from domain.client import Client
from domain.service import Complaint, WorkOrder
from domain.survey import Survey
from projections.base import UtcDateTime, metadata
from projections.fold import FoldProjection, Need, Rows
from projections.personal import kept_or_legacy

work_orders = Table(
    "svc_work_orders", metadata,
    Column("work_order_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("asset", JSON, nullable=False),  # sealed; clear if stored before v2 (legacy)
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


class ServiceSurveys(FoldProjection):
    """Work orders, surveys, complaints and assignments for the register and satisfaction report."""

    name = "service_surveys"
    tables = (work_orders, surveys, survey_questions, complaints, assignments)
    keeps = (work_orders, surveys)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        kind = type(event).__name__
        if kind == "WorkOrderClosed":
            yield Need(work_orders, "work_order_id", event.originator_id)
        elif kind == "SurveyCompleted":
            yield Need(surveys, "survey_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(rows, event, position)

    def _WorkOrderOpened(self, rows: Rows, e: WorkOrder.WorkOrderOpened, pos: int) -> None:
        rows.put(work_orders, {
            "work_order_id": e.originator_id, "client_id": e.client_id,
            "asset": kept_or_legacy(e, "asset"),
            "stages": list(e.stages), "opened_at": e.occurred_at,
            "opened_recorded_at": e.timestamp, "closed_at": None, "closed_recorded_at": None,
            "amount": None, "currency": None})

    def _WorkOrderClosed(self, rows: Rows, e: WorkOrder.WorkOrderClosed, pos: int) -> None:
        rows.update(work_orders, e.originator_id, closed_at=e.occurred_at,
                    closed_recorded_at=e.timestamp, amount=e.amount, currency=e.currency)

    def _SurveyStarted(self, rows: Rows, e: Survey.SurveyStarted, pos: int) -> None:
        questions = [{"id": q["id"], "stage": q["stage"], "text": q["text"]}
                     for q in e.questions]
        rows.put(survey_questions, {
            "template_id": e.template_id, "template_version": e.template_version,
            "questions": questions})
        rows.put(surveys, {
            "survey_id": e.originator_id, "work_order_id": e.work_order_id,
            "client_id": e.client_id, "template_id": e.template_id,
            "template_version": e.template_version,
            "started_at": e.occurred_at, "started_recorded_at": e.timestamp,
            "start_position": pos, "outcome": None, "completed_at": None,
            "completed_recorded_at": None, "final_ticks": None})

    def _SurveyCompleted(self, rows: Rows, e: Survey.SurveyCompleted, pos: int) -> None:
        # Ticks set along the way are not kept: the completion carries the final ticks.
        rows.update(surveys, e.originator_id, outcome=e.outcome, completed_at=e.occurred_at,
                    completed_recorded_at=e.timestamp, final_ticks=dict(e.final_ticks))

    def _ComplaintRegistered(self, rows: Rows, e: Complaint.ComplaintRegistered,
                             pos: int) -> None:
        rows.put(complaints, {
            "complaint_id": e.originator_id, "client_id": e.client_id,
            "work_order_id": e.work_order_id, "stage": e.stage, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp})

    def _ClientRegistered(self, rows: Rows, e: Client.ClientRegistered, pos: int) -> None:
        self._assign(rows, e, e.specialist_id)

    def _ClientReassigned(self, rows: Rows, e: Client.ClientReassigned, pos: int) -> None:
        self._assign(rows, e, e.specialist_id)

    @staticmethod
    def _assign(rows: Rows, e: Any, specialist_id: Any) -> None:
        rows.put(assignments, {
            "client_id": e.originator_id, "version": e.originator_version,
            "specialist_id": specialist_id, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp})
