"""What went wrong last time (issue 18.1): a client's unresolved or recent dissatisfaction.

The rule (docs/decisions.md, "Reception alert"), at `at` as known at `as_of`:

- a *dissatisfaction* is a situation of kind `complaint` or `survey_dissatisfaction` (opened
  automatically by a complaint, a survey with an unticked question or a contact with the
  purpose `complaint`, or by hand);
- it is *unresolved* when it was opened by `at` and not resolved by then (a reopened one is
  unresolved again); it is *recent* when it was opened, or resolved, in the `window` before `at`
  (default 90 days);
- the client "has a dissatisfaction" when any situation is unresolved or recent. What went
  wrong is shown with it: the unticked questions (id, stage, text) of the surveys completed in
  the window, and the complaints (stage, work order, text) registered in the window or behind
  an unresolved situation.

The projection keeps the complaints' text (sealed with the client's key, blanked on erasure);
situations and surveys are read from their own read models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import JSON, Column, Connection, Index, String, Table, Uuid, select

from domain.base import event_id_of
from domain.client import Client
from domain.service import Complaint
from projections.base import UtcDateTime, metadata
from projections.facts import known
from projections.fold import FoldProjection, Need, Rows
from projections.personal import kept
from projections.situations import clock_rows, situation_rows
from projections.surveys import survey_questions
from projections.surveys import surveys as svc_surveys

WINDOW = timedelta(days=90)
KINDS = ("complaint", "survey_dissatisfaction")

reception_complaints = Table(
    "reception_complaints", metadata,
    Column("complaint_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("work_order_id", Uuid),
    Column("stage", String(100)),
    Column("text", JSON),  # sealed (projections.personal); None once the client is erased
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_reception_complaints_client", "client_id", "occurred_at"),
)


class Reception(FoldProjection):
    """Complaints with their text, for the card, the visit brief and the reception alert."""

    name = "reception"
    tables = (reception_complaints,)
    keeps = ()  # nothing is read back but on erasure, which declares its rows

    def needs(self, event: Any) -> Iterator[Need]:
        if type(event).__name__ == "ClientErased":
            yield Need(reception_complaints, "client_id", event.client_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        kind = type(event).__name__
        if kind == "ComplaintRegistered":
            self._complaint(rows, event)
        elif kind == "ClientErased":
            self._erased(rows, event)

    def _complaint(self, rows: Rows, e: Complaint.ComplaintRegistered) -> None:
        rows.put(reception_complaints, {
            "complaint_id": e.originator_id, "client_id": e.client_id,
            "work_order_id": e.work_order_id, "stage": e.stage, "text": kept(e, "text"),
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp})

    def _erased(self, rows: Rows, e: Client.ClientErased) -> None:
        rows.update_where(reception_complaints, "client_id", e.client_id, text=None)


def last_dissatisfaction(conn: Connection, client_id: UUID, *, at: datetime,
                         as_of: datetime | None,
                         window: timedelta = WINDOW) -> dict[str, Any] | None:
    """The client's unresolved or recent dissatisfaction at `at` as known at `as_of` (the rule
    in the module docstring), or None. Complaint texts stay sealed (opened by the API)."""
    since = at - window
    s, c = situation_rows.c, clock_rows.c
    opened = conn.execute(
        select(s.situation_id, s.kind, s.opened_at, s.trigger_event_id)
        .where(s.client_id == client_id, s.kind.in_(KINDS), s.opened_at <= at,
               known(s.recorded_at, as_of))
        .order_by(s.opened_at, s.situation_id)).all()
    situations = []
    if opened:
        changes: dict[UUID, tuple[str, datetime]] = {}
        for row in conn.execute(
                select(c.situation_id, c.type, c.occurred_at)
                .where(c.situation_id.in_([o.situation_id for o in opened]),
                       c.type.in_(("SituationResolved", "SituationReopened")),
                       c.occurred_at <= at, known(c.recorded_at, as_of))
                .order_by(c.position)):
            changes[row.situation_id] = (row.type, row.occurred_at)
        for o in opened:
            last = changes.get(o.situation_id)
            resolved_at = last[1] if last and last[0] == "SituationResolved" else None
            if resolved_at is None or o.opened_at >= since or resolved_at >= since:
                situations.append({"situation_id": o.situation_id, "kind": o.kind,
                                   "opened_at": o.opened_at,
                                   "state": "open" if resolved_at is None else "resolved",
                                   "resolved_at": resolved_at,
                                   "trigger_event_id": o.trigger_event_id})
    if not situations:
        return None
    unresolved = {x["trigger_event_id"] for x in situations if x["state"] == "open"}
    for x in situations:
        del x["trigger_event_id"]
    r = reception_complaints.c
    complaints = [
        {"complaint_id": row.complaint_id, "at": row.occurred_at, "stage": row.stage,
         "work_order_id": row.work_order_id, "text": row.text}
        for row in conn.execute(
            select(reception_complaints)
            .where(r.client_id == client_id, r.occurred_at <= at, known(r.recorded_at, as_of))
            .order_by(r.occurred_at, r.complaint_id))
        if row.occurred_at >= since or event_id_of(row.complaint_id, 1) in unresolved]
    v, q = svc_surveys.c, survey_questions.c
    surveys = []
    for done in conn.execute(
            select(v.survey_id, v.work_order_id, v.completed_at, v.final_ticks, q.questions)
            .join(survey_questions, (q.template_id == v.template_id)
                  & (q.template_version == v.template_version))
            .where(v.client_id == client_id, v.outcome == "completed",
                   v.completed_at >= since, v.completed_at <= at,
                   known(v.completed_recorded_at, as_of))
            .order_by(v.completed_at, v.survey_id)):
        ticks = dict(done.final_ticks or {})
        unticked = [{"question_id": x["id"], "stage": x["stage"], "text": x["text"]}
                    for x in done.questions if ticks.get(x["id"]) is False]
        if unticked:
            surveys.append({"survey_id": done.survey_id, "work_order_id": done.work_order_id,
                            "completed_at": done.completed_at, "questions": unticked})
    return {"unresolved": bool(unresolved), "window_days": window.days, "since": since,
            "situations": situations, "surveys": surveys, "complaints": complaints}
