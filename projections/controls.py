"""The controls report (§5): what was not done in time, at `at` as known at `as_of`.

Sections: overdue planned contacts, late data entry (recorded_at - occurred_at above a
threshold, for activity events (contacts, planned contacts, agreements, works and feedback)
that occurred in the `period` before `at`, with the user who entered them), card completeness
(clients below 100% with the names of the missing fields), overdue agreements, completed work
without feedback after `feedback_days`. Reaction-time breaches come from the reaction-times
report (projections.reaction_times), added by the route, which holds the reaction policy.
Client ids only, no free text:
the report is readable by analysts. The specialist filter uses the planned contact's own
specialist for planned contacts, and the client's specialist at `at` for everything else.
Each section gives its exact count and at most `limit` items (`truncated` says when cut).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from projections.activity import (
    late_entries,
    open_agreements,
    overdue_planned_contacts,
    works_without_feedback,
)
from projections.clients import incomplete_clients
from projections.payments import assignments


def controls_report(conn: Connection, *, at: datetime, as_of: datetime | None,
                    specialist_id: UUID | None = None, late_entry_hours: float = 24,
                    period: timedelta = timedelta(days=30),
                    feedback_days: int = 7, limit: int = 1000) -> dict[str, Any]:
    # Assignment histories are read only when a specialist filter needs them.
    assigned = assignments(conn, as_of) if specialist_id is not None else None

    def mine(client_id: UUID) -> bool:
        return assigned is None or assigned.at(client_id, at) == specialist_id

    # Counted in SQL, and only the first `limit` read: every open contact may be overdue.
    overdue, first = overdue_planned_contacts(conn, at, as_of, specialist_id=specialist_id,
                                              limit=limit)
    planned = [
        {"planned_contact_id": r.planned_contact_id, "client_id": r.client_id,
         "purpose": r.purpose, "due_at": r.due_at, "specialist_id": r.specialist_id,
         "overdue_seconds": int((at - r.due_at).total_seconds())} for r in first]
    threshold = int(late_entry_hours * 3600)
    late = [entry for entry in late_entries(conn, since=at - period, at=at, as_of=as_of,
                                            threshold_seconds=threshold)
            if mine(entry["client_id"])]
    # Stored per client by the directory; folded only for clients changed after as_of.
    incomplete = [c for c in incomplete_clients(conn, as_of) if mine(c["client_id"])]
    agreements = [
        {"agreement_id": r.agreement_id, "client_id": r.client_id, "due_at": r.due_at,
         "made_at": r.made_at, "overdue_seconds": int((at - r.due_at).total_seconds())}
        for r in open_agreements(conn, at, as_of, due_before=at) if mine(r.client_id)]
    unrated = [
        {"work_id": r.work_id, "client_id": r.client_id, "completed_at": r.completed_at}
        for r in works_without_feedback(conn, at, as_of,
                                        completed_before=at - timedelta(days=feedback_days))
        if mine(r.client_id)]
    return {
        "at": at, "as_of": as_of, "specialist_id": specialist_id,
        "thresholds": {"late_entry_hours": late_entry_hours,
                       "late_entry_period_days": period.days, "feedback_days": feedback_days,
                       "items_per_section": limit},
        "overdue_planned_contacts": {"count": overdue, "items": planned,
                                     "truncated": overdue > limit},
        "late_data_entry": _section(late, limit),
        "card_completeness": _section(incomplete, limit),
        "overdue_agreements": _section(agreements, limit),
        "work_without_feedback": _section(unrated, limit),
        "reaction_time_breaches": None,  # hook: the reaction-times projection
    }


def _section(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """The exact count, and the first `limit` items (oldest first) to keep answers bounded."""
    return {"count": len(items), "items": items[:limit], "truncated": len(items) > limit}
