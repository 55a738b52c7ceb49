"""The card's sections that come from other read models: open situations, satisfaction history
and segment of one client, at `at` as known at `as_of`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from domain.months import segment_at
from projections.segments import segment_activity
from projections.situations import clock_rows, situation_rows
from projections.surveys import surveys as svc_surveys

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
# Clock events that leave a situation resolved; any later reopen makes it open again.
_CLOSING, _OPENING = {"SituationResolved"}, {"SituationReopened"}


def _known(recorded: Any, as_of: datetime | None) -> Any:
    return recorded <= (as_of or FAR_FUTURE)


def open_situations(conn: Connection, client_id: UUID, at: datetime,
                    as_of: datetime | None) -> list[dict[str, Any]]:
    s, c = situation_rows.c, clock_rows.c
    opened = conn.execute(select(s.situation_id, s.kind, s.opened_at).where(
        s.client_id == client_id, s.opened_at <= at, _known(s.recorded_at, as_of))
        .order_by(s.opened_at, s.situation_id)).all()
    out = []
    for row in opened:
        changes = conn.execute(select(c.type).where(
            c.situation_id == row.situation_id, c.occurred_at <= at,
            _known(c.recorded_at, as_of), c.type.in_(_CLOSING | _OPENING))
            .order_by(c.position)).scalars().all()
        if not changes or changes[-1] in _OPENING:
            out.append({"situation_id": row.situation_id, "kind": row.kind,
                        "opened_at": row.opened_at})
    return out


def satisfaction_history(conn: Connection, client_id: UUID, at: datetime,
                         as_of: datetime | None) -> list[dict[str, Any]]:
    v = svc_surveys.c
    rows = conn.execute(select(v.survey_id, v.work_order_id, v.outcome, v.completed_at,
                               v.final_ticks).where(
        v.client_id == client_id, v.completed_at.is_not(None), v.completed_at <= at,
        _known(v.completed_recorded_at, as_of)).order_by(v.completed_at, v.survey_id)).all()
    history = []
    for row in rows:
        ticks = dict(row.final_ticks or {})
        history.append({"survey_id": row.survey_id, "work_order_id": row.work_order_id,
                        "completed_at": row.completed_at, "outcome": row.outcome,
                        "satisfied": sum(1 for t in ticks.values() if t),
                        "answered": len(ticks) if row.outcome == "completed" else 0})
    return history


def segment(conn: Connection, client_id: UUID, at: datetime, as_of: datetime | None) -> str:
    """§5: from the last closed work order, or the last contact for clients without visits
    (calendar dates in UTC)."""
    a = segment_activity.c
    latest = dict(conn.execute(select(a.kind, func.max(a.occurred_at)).where(
        a.client_id == client_id, a.occurred_at <= at, _known(a.recorded_at, as_of))
        .group_by(a.kind)).all())
    last = latest.get("visit") or latest.get("contact")
    return str(segment_at(last.astimezone(UTC).date() if last else None, at.astimezone(UTC).date()))
