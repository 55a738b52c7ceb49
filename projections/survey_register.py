"""The survey register: every work order with its survey status at a business moment, as known then.

Day arithmetic: `age_days` = local calendar date of `at` minus local calendar date of the work
order's closing, both in the report's time zone. A closed work order without a completed survey is
`not_due` at age 0-2, `due` at age 3 or 4, `overdue` from age 5. `done` (a survey completed with
outcome completed) and `unreachable` (the latest attempt, by start, ended unreachable or refused)
take precedence over the age. A work order not closed at `at` is `open`. Only events that occurred
at or before `at` and were recorded at or before `as_of` count.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, and_, exists, not_, or_, select
from sqlalchemy.sql.elements import ColumnElement

from projections.report_time import day_start, local_date, zone_of
from projections.surveys import surveys, work_orders

STATUSES = ("open", "not_due", "due", "overdue", "done", "unreachable")
DUE_FROM_DAYS = 3
DUE_UNTIL_DAYS = 4
_SCAN = 500
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class RegisterKey:
    """Where a page ends: the register is ordered by (opened_at, work_order_id)."""

    opened_at: datetime
    work_order_id: UUID

    def encode(self) -> str:
        micros = (self.opened_at - _EPOCH) // timedelta(microseconds=1)
        return f"{micros}_{self.work_order_id.hex}"

    @classmethod
    def decode(cls, cursor: str) -> RegisterKey:
        micros, _, hex_id = cursor.partition("_")
        return cls(_EPOCH + timedelta(microseconds=int(micros)), UUID(hex=hex_id))


def survey_register(conn: Connection, *, at: datetime, as_of: datetime, tz: str,
                    status: str | None = None, after: RegisterKey | None = None,
                    limit: int = 100) -> tuple[list[dict[str, Any]], RegisterKey | None]:
    """One page of the register (optionally one status) and the key to continue from."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown survey status {status!r}")
    zone = zone_of(tz)
    query = (select(work_orders)
             .where(work_orders.c.opened_recorded_at <= as_of, work_orders.c.opened_at <= at)
             .order_by(work_orders.c.opened_at, work_orders.c.work_order_id))
    if status is not None:
        query = query.where(_prefilter(status, at, as_of, zone))
    found: list[dict[str, Any]] = []
    key = after
    while True:
        page = query
        if key is not None:
            page = page.where(or_(work_orders.c.opened_at > key.opened_at, and_(
                work_orders.c.opened_at == key.opened_at,
                work_orders.c.work_order_id > key.work_order_id)))
        rows = list(conn.execute(page.limit(_SCAN)))
        attempts = _attempts(conn, [r.work_order_id for r in rows], at, as_of)
        for row in rows:
            entry = _entry(row, attempts.get(row.work_order_id, []), at, as_of, zone)
            if status is None or entry["status"] == status:
                if len(found) == limit:
                    last = found[-1]
                    return found, RegisterKey(last["opened_at"], last["work_order_id"])
                found.append(entry)
        if len(rows) < _SCAN:
            return found, None
        key = RegisterKey(rows[-1].opened_at, rows[-1].work_order_id)


def _closed_known(at: datetime, as_of: datetime) -> ColumnElement[bool]:
    return and_(work_orders.c.closed_at.is_not(None), work_orders.c.closed_at <= at,
                work_orders.c.closed_recorded_at <= as_of)


def _prefilter(status: str, at: datetime, as_of: datetime, zone: Any) -> ColumnElement[bool]:
    """A cheap SQL superset of the work orders that can have `status`; the exact rule is _entry."""
    closed = _closed_known(at, as_of)
    if status == "open":
        return not_(closed)
    today = local_date(at, zone)
    # Age in local days: closed on or after this instant means age <= DUE_FROM_DAYS - 1.
    young = day_start(today - timedelta(days=DUE_FROM_DAYS - 1), zone)
    old = day_start(today - timedelta(days=DUE_UNTIL_DAYS), zone)
    if status == "not_due":
        return and_(closed, work_orders.c.closed_at >= young)
    if status == "due":
        return and_(closed, work_orders.c.closed_at >= old, work_orders.c.closed_at < young)
    if status == "overdue":
        return and_(closed, work_orders.c.closed_at < old)
    outcomes = ("completed",) if status == "done" else ("unreachable", "refused")
    return and_(closed, exists().where(
        surveys.c.work_order_id == work_orders.c.work_order_id,
        surveys.c.outcome.in_(outcomes), surveys.c.completed_at <= at,
        surveys.c.completed_recorded_at <= as_of))


def _attempts(conn: Connection, ids: list[UUID], at: datetime,
              as_of: datetime) -> dict[UUID, list[Any]]:
    """Survey attempts known at the cut-off per work order, oldest start first."""
    if not ids:
        return {}
    rows = conn.execute(
        select(surveys.c.survey_id, surveys.c.work_order_id, surveys.c.started_at,
               surveys.c.start_position, surveys.c.outcome, surveys.c.completed_at,
               surveys.c.completed_recorded_at)
        .where(surveys.c.work_order_id.in_(ids), surveys.c.started_at <= at,
               surveys.c.started_recorded_at <= as_of)
        .order_by(surveys.c.started_at, surveys.c.start_position))
    out: dict[UUID, list[Any]] = defaultdict(list)
    for row in rows:
        out[row.work_order_id].append(row)
    return out


def _outcome(attempt: Any, at: datetime, as_of: datetime) -> str:
    """The attempt's outcome as known then (`in_progress` when its end is later or unknown)."""
    if (attempt.outcome is None or attempt.completed_at > at
            or attempt.completed_recorded_at > as_of):
        return "in_progress"
    return str(attempt.outcome)


def _entry(row: Any, attempts: list[Any], at: datetime, as_of: datetime,
           zone: Any) -> dict[str, Any]:
    closed = (row.closed_at is not None and row.closed_at <= at
              and row.closed_recorded_at <= as_of)
    outcomes = [_outcome(a, at, as_of) for a in attempts]
    age = (local_date(at, zone) - local_date(row.closed_at, zone)).days if closed else None
    if age is None:
        status = "open"
    elif "completed" in outcomes:
        status = "done"
    elif outcomes and outcomes[-1] in ("unreachable", "refused"):
        status = "unreachable"
    elif age < DUE_FROM_DAYS:
        status = "not_due"
    elif age <= DUE_UNTIL_DAYS:
        status = "due"
    else:
        status = "overdue"
    done_at = [a.completed_at for a, o in zip(attempts, outcomes, strict=True)
               if o == "completed"]
    return {
        "work_order_id": row.work_order_id, "client_id": row.client_id, "asset": row.asset,
        "opened_at": row.opened_at, "closed_at": row.closed_at if closed else None,
        "age_days": age, "status": status,
        "survey": {"attempts": len(attempts), "last_outcome": outcomes[-1] if outcomes else None,
                   "completed_at": min(done_at) if done_at else None},
    }
