"""Alerts about a client's follow-ups and visits (issue 18.1, 18.2), planned by the scheduler.

Follow-ups: a planned contact (a promised callback is one) or an agreement still open raises
`*_due` when its due day begins (local midnight in CRM_TIMEZONE; at once if it is recorded
later that day) and `*_overdue` the second after its due instant, when it enters the controls'
overdue list. A due alert is moot once the follow-up is overdue; nothing is raised for one done,
cancelled, kept or broken by then, nor for an erased client.

Reception: a work order opening, or a contact on the `visit` channel, for a client with an
unresolved or recent dissatisfaction (projections.reception) raises `reception` as soon as the
read models hold the visit; its detail names the situations, the unticked questions and the
complaints by id (their text is on the card and in the `visit` brief, never on a bus).

Each alert is logged in `client_alert_log` (keyed by its id) before it is published, so it goes
out once, across restarts and workers; the publisher drains this log beside `alert_log`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import JSON, Column, Connection, MetaData, String, Table, Uuid, and_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consumers.alert_hub import (
    AGREEMENT_DUE,
    AGREEMENT_OVERDUE,
    CONTACT_DUE,
    CONTACT_OVERDUE,
    RECEPTION,
    Alert,
)
from projections.activity import contacts
from projections.base import UtcDateTime
from projections.card import client_cards
from projections.follow_ups import FollowUp, next_due, open_follow_ups
from projections.reception import WINDOW, last_dissatisfaction
from projections.report_time import day_end, day_start, local_date
from projections.surveys import work_orders

OVERDUE_AFTER = timedelta(seconds=1)  # overdue once its due instant has passed
_KINDS = {"planned_contact": (CONTACT_DUE, CONTACT_OVERDUE),
          "agreement": (AGREEMENT_DUE, AGREEMENT_OVERDUE)}

# Not a projection table: what was sent depends on when the scheduler ran.
client_alerts_metadata = MetaData()
client_alert_log = Table(
    "client_alert_log", client_alerts_metadata,
    Column("alert_id", Uuid, primary_key=True),
    Column("kind", String(30), nullable=False),
    Column("subject", String(20), nullable=False),
    Column("subject_id", Uuid, nullable=False),
    Column("client_id", Uuid, nullable=False),
    Column("specialist_id", Uuid),
    Column("deadline", UtcDateTime),
    Column("at", UtcDateTime, nullable=False),
    Column("detail", JSON),
    Column("emitted_at", UtcDateTime, nullable=False),
)


@dataclass(frozen=True)
class Visit:
    """A work order opened or a contact on the visit channel, as saved."""

    subject: str  # work_order | contact
    subject_id: UUID
    client_id: UUID
    at: datetime
    # When it was recorded, for a visit found by the sweep: judged as known then, as the scan
    # after its save would have (None: as known now, that scan).
    recorded_at: datetime | None = None


def visit_of(event: Any) -> Visit | None:
    kind = type(event).__name__
    if kind == "WorkOrderOpened":
        return Visit("work_order", event.originator_id, event.client_id, event.occurred_at)
    if kind == "ContactLogged" and getattr(event, "channel", None) == "visit":
        return Visit("contact", event.originator_id, event.client_id, event.occurred_at)
    return None


def unalerted_visits(conn: Connection, since: datetime) -> list[Visit]:
    """The visits recorded since `since` (work orders opened, contacts on the visit channel, as
    the read models hold them) with no reception alert logged: the sweep's candidates (a crash
    between a visit's save and its scan left it unchecked)."""
    log = client_alert_log
    found: list[Visit] = []
    for subject, table, id_col, at_col, recorded_col, extra in (
            ("work_order", work_orders, work_orders.c.work_order_id, work_orders.c.opened_at,
             work_orders.c.opened_recorded_at, None),
            ("contact", contacts, contacts.c.contact_id, contacts.c.occurred_at,
             contacts.c.recorded_at, contacts.c.channel == "visit")):
        query = (select(id_col.label("id"), table.c.client_id, at_col.label("at"),
                        recorded_col.label("recorded_at"))
                 .select_from(table.outerjoin(log, and_(log.c.subject_id == id_col,
                                                        log.c.kind == RECEPTION)))
                 .where(recorded_col >= since, log.c.alert_id.is_(None)))
        if extra is not None:
            query = query.where(extra)
        found.extend(Visit(subject, r.id, r.client_id, r.at, r.recorded_at)
                     for r in conn.execute(query))
    return found


FOLLOW_UP_CREATED = frozenset({"ContactPlanned", "AgreementMade"})
FOLLOW_UP_CLOSED = frozenset({"PlannedContactCompleted", "PlannedContactCancelled",
                              "AgreementFulfilled", "AgreementBroken"})


def planned_follow_up_alerts(f: FollowUp, now: datetime,
                             zone: ZoneInfo) -> list[tuple[Alert, datetime]]:
    """The alerts a follow-up calls for, each with the moment it became knowable."""
    due_kind, overdue_kind = _KINDS[f.subject]
    detail = {"purpose": f.purpose} if f.purpose is not None else {}

    def alert(kind: str, at: datetime) -> Alert:
        return Alert(Alert.follow_up(f.subject_id, kind, f.due_at), kind, None, f.client_id,
                     f.specialist_id, None, None, f.due_at, at, f.subject, f.subject_id,
                     {**detail, "due_at": f.due_at.astimezone(UTC).isoformat()})

    overdue_at = f.due_at + OVERDUE_AFTER
    out = []
    if overdue_at > now:
        begins = day_start(local_date(f.due_at, zone), zone)
        out.append((alert(due_kind, begins), max(begins, f.recorded_at)))
    out.append((alert(overdue_kind, overdue_at), max(overdue_at, f.recorded_at)))
    return out


def follow_up_alerts(conn: Connection, now: datetime, zone: ZoneInfo, max_age: timedelta,
                     fresh: set[UUID]) -> tuple[list[Alert], datetime | None]:
    """The follow-up alerts due by `now` (not older than `max_age` when they became knowable),
    and when the next one falls due."""
    stale = now - max_age
    today_ends = day_end(local_date(now, zone), zone)
    items = open_follow_ups(conn, due_before=today_ends, due_since=stale - OVERDUE_AFTER,
                            ids=fresh)
    fire = [a for f in items for a, known in planned_follow_up_alerts(f, now, zone)
            if a.at <= now and known >= stale]
    upcoming = []
    soonest = next_due(conn, now)
    if soonest is not None:
        upcoming.append(soonest + OVERDUE_AFTER)
    tomorrow = next_due(conn, today_ends)
    if tomorrow is not None:
        upcoming.append(day_start(local_date(tomorrow, zone), zone))
    return fire, min(upcoming, default=None)


def reception_alert(conn: Connection, visit: Visit, now: datetime,
                    window: timedelta = WINDOW) -> Alert | None:
    """The reception alert for a visit, if the client has an unresolved or recent
    dissatisfaction at the visit as known now (or when it was recorded: the sweep's)."""
    found = last_dissatisfaction(conn, visit.client_id, at=visit.at,
                                 as_of=visit.recorded_at or now, window=window)
    if found is None:
        return None
    specialist = conn.execute(select(client_cards.c.specialist_id).where(
        client_cards.c.client_id == visit.client_id)).scalar()
    detail = {
        "visit_at": visit.at.astimezone(UTC).isoformat(), "unresolved": found["unresolved"],
        "window_days": found["window_days"],
        "situations": [{"situation_id": str(s["situation_id"]), "kind": s["kind"],
                        "state": s["state"]} for s in found["situations"]],
        "surveys": [{"survey_id": str(s["survey_id"]),
                     "question_ids": [q["question_id"] for q in s["questions"]],
                     "stages": sorted({q["stage"] for q in s["questions"]})}
                    for s in found["surveys"]],
        "complaints": [{"complaint_id": str(c["complaint_id"]), "stage": c["stage"]}
                       for c in found["complaints"]]}
    return Alert(Alert.follow_up(visit.subject_id, RECEPTION, visit.at), RECEPTION, None,
                 visit.client_id, specialist, None, None, None, visit.at, visit.subject,
                 visit.subject_id, detail)


def record(conn: Connection, alert: Alert, now: datetime) -> bool:
    """Insert the alert into the log unless it is there already; True if this call added it."""
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(client_alert_log).values(
        alert_id=alert.id, kind=alert.kind, subject=alert.subject, subject_id=alert.about,
        client_id=alert.client_id, specialist_id=alert.specialist_id, deadline=alert.deadline,
        at=alert.at, detail=alert.detail, emitted_at=now,
    ).on_conflict_do_nothing(index_elements=["alert_id"])
    return conn.execute(stmt.returning(client_alert_log.c.alert_id)).first() is not None


def from_row(row: Any) -> Alert:
    return Alert(row.alert_id, row.kind, None, row.client_id, row.specialist_id, None, None,
                 row.deadline, row.at, row.subject, row.subject_id, row.detail)
