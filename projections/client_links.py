"""The card's sections that come from other read models: open situations, satisfaction history
and segment of one client, at `at` as known at `as_of`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, bindparam, func, select

from domain.months import segment_at
from projections.facts import client_params
from projections.segments import segment_activity
from projections.situations import clock_rows, situation_rows
from projections.surveys import surveys as svc_surveys

# Clock events that leave a situation resolved; any later reopen makes it open again.
_CLOSING, _OPENING = {"SituationResolved"}, {"SituationReopened"}


def open_situations(conn: Connection, client_id: UUID, at: datetime,
                    as_of: datetime | None) -> list[dict[str, Any]]:
    params = client_params(client_id, at, as_of)
    opened = conn.execute(_OPENED, params).all()
    if not opened:
        return []
    # The last closing or reopening change of each situation, for all of them in one query.
    last: dict[UUID, str] = {}
    for situation_id, kind in conn.execute(_CHANGES, params):
        last[situation_id] = kind
    return [{"situation_id": row.situation_id, "kind": row.kind, "opened_at": row.opened_at}
            for row in opened if last.get(row.situation_id) not in _CLOSING]


# Built once and run with parameters (building them per card read cost more than running them).
_s, _c = situation_rows.c, clock_rows.c
_OPENED = (select(_s.situation_id, _s.kind, _s.opened_at)
           .where(_s.client_id == bindparam("b_client"), _s.opened_at <= bindparam("b_at"),
                  _s.recorded_at <= bindparam("b_as_of"))
           .order_by(_s.opened_at, _s.situation_id))
_CHANGES = (select(_c.situation_id, _c.type)
            .where(_c.situation_id.in_(select(_s.situation_id)
                                       .where(_s.client_id == bindparam("b_client"))),
                   _c.occurred_at <= bindparam("b_at"), _c.recorded_at <= bindparam("b_as_of"),
                   _c.type.in_(sorted(_CLOSING | _OPENING)))
            .order_by(_c.position))


def satisfaction_history(conn: Connection, client_id: UUID, at: datetime,
                         as_of: datetime | None) -> list[dict[str, Any]]:
    rows = conn.execute(_SURVEYS, client_params(client_id, at, as_of)).all()
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
    latest = dict(conn.execute(_LATEST, client_params(client_id, at, as_of)).all())
    last = latest.get("visit") or latest.get("contact")
    return str(segment_at(last.astimezone(UTC).date() if last else None, at.astimezone(UTC).date()))
_v, _a = svc_surveys.c, segment_activity.c
_SURVEYS = (select(_v.survey_id, _v.work_order_id, _v.outcome, _v.completed_at, _v.final_ticks)
            .where(_v.client_id == bindparam("b_client"), _v.completed_at.is_not(None),
                   _v.completed_at <= bindparam("b_at"),
                   _v.completed_recorded_at <= bindparam("b_as_of"))
            .order_by(_v.completed_at, _v.survey_id))
_LATEST = (select(_a.kind, func.max(_a.occurred_at))
           .where(_a.client_id == bindparam("b_client"), _a.occurred_at <= bindparam("b_at"),
                  _a.recorded_at <= bindparam("b_as_of"))
           .group_by(_a.kind))
