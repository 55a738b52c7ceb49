"""Open follow-ups for the alert scheduler (issue 18.2): planned contacts and agreements still
open, with their due instant and whom to tell.

Reads the activity facts (projections.activity) as everything stored now: the scheduler asks
about the present only. The specialist told is the planned contact's own, else the client's
current one (the card); an erased client's follow-ups raise nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from sqlalchemy import Connection, func, or_, select

from projections.activity import agreements, planned_contacts
from projections.card import client_cards


class FollowUp(NamedTuple):
    subject: str  # planned_contact | agreement
    subject_id: UUID
    client_id: UUID
    specialist_id: UUID | None
    due_at: datetime
    recorded_at: datetime  # when the follow-up became known
    purpose: str | None  # a planned contact's purpose


def _sources() -> list[tuple[str, Any, Any, Any, Any, Any]]:
    p, a = planned_contacts.c, agreements.c
    return [("planned_contact", planned_contacts, p.planned_contact_id, p.closed_as,
             p.specialist_id, p.purpose),
            ("agreement", agreements, a.agreement_id, a.outcome, None, None)]


def open_follow_ups(conn: Connection, *, due_before: datetime, due_since: datetime,
                    ids: Collection[UUID] = ()) -> list[FollowUp]:
    """Open follow-ups due in [`due_since`, `due_before`), and those of `ids` due before
    `due_before` (just recorded: one entered late may have fallen due long ago); earliest due
    first."""
    found: dict[UUID, FollowUp] = {}
    card = client_cards.c
    for subject, table, key, closed, own, purpose in _sources():
        specialist = card.specialist_id if own is None else func.coalesce(own, card.specialist_id)
        base = (select(key.label("subject_id"), table.c.client_id,
                       specialist.label("specialist_id"), table.c.due_at, table.c.recorded_at,
                       *([purpose.label("purpose")] if purpose is not None else []))
                .join(client_cards, card.client_id == table.c.client_id, isouter=True)
                .where(closed.is_(None), table.c.due_at < due_before,
                       or_(card.erased.is_(None), card.erased.is_(False))))
        queries = [base.where(table.c.due_at >= due_since)]
        wanted = sorted(ids, key=str)
        queries += [base.where(key.in_(wanted[i:i + 500])) for i in range(0, len(wanted), 500)]
        for query in queries:
            for row in conn.execute(query):
                found[row.subject_id] = FollowUp(
                    subject, row.subject_id, row.client_id, row.specialist_id, row.due_at,
                    row.recorded_at, row.purpose if purpose is not None else None)
    return sorted(found.values(), key=lambda f: (f.due_at, str(f.subject_id)))


def next_due(conn: Connection, after: datetime) -> datetime | None:
    """The earliest due instant at or after `after` among open follow-ups."""
    dues = [conn.execute(select(func.min(table.c.due_at))
                         .where(closed.is_(None), table.c.due_at >= after)).scalar()
            for _subject, table, _key, closed, _own, _purpose in _sources()]
    present = [d for d in dues if d is not None]
    return min(present) if present else None
