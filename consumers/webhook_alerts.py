"""Alerts for webhook subscribers: which alerts a subscriber asked for, and its durable place in
the alert logs (docs/webhooks.md, "Alerts").

A subscriber asks for alerts by naming their CloudEvents types among its `event_types`
(`crm.alert.reception.v1`, ...; `crm.alert.*` for every kind). An empty list keeps meaning every
store event and no alert: subscribers made before alerts could be delivered must not start
getting a new kind of body.

Alerts have no store position: they are rows of two logs (`alert_log`, situations;
`client_alert_log`, follow-ups and visits) keyed by id and stamped `emitted_at` by the scheduler
that logged them. Per subscriber, `webhook_alert_cursor` keeps a `watermark` (the newest
`emitted_at` it passed, or seen when nothing was pending), and `webhook_alert_sent` marks the
ids it passed (delivered, parked, or skipped: logged before it asked for their kind) within
LOOKBACK of the watermark. Pending: of a kind asked for, logged at most LOOKBACK before the
watermark, not marked. Several API workers log at once, so an alert can commit after a newer
one was passed: the look-back still finds it, and the marks keep every alert from going twice.
Marks older than the look-back are dropped (nothing reads them again). Asking for a kind marks
the alerts of that kind already logged in the window as skipped: alerts come from then on, with
no backlog.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Column,
    Connection,
    MetaData,
    String,
    Table,
    Uuid,
    and_,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)

from consumers.alert_hub import ALERT_KINDS, Alert
from consumers.alert_publisher import alert_from_row, alert_type
from consumers.alerts import alert_log
from consumers.client_alerts import client_alert_log
from consumers.client_alerts import from_row as client_alert_from_row
from projections.base import UtcDateTime, upsert

ALERT_PREFIX = "crm.alert."
ALL_ALERTS = "crm.alert.*"
ALERT_TYPES = tuple(alert_type(kind) for kind in ALERT_KINDS)
# How much older than the newest alert passed a late-committed one may be and still be found:
# far beyond a scan's length or the clock skew between API workers.
LOOKBACK = timedelta(hours=1)

# Not projection state: what was delivered depends on the receivers.
webhook_alerts_metadata = MetaData()
webhook_alert_cursor = Table(
    "webhook_alert_cursor", webhook_alerts_metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("watermark", UtcDateTime),  # the newest emitted_at passed; null: the logs were empty
)
webhook_alert_sent = Table(
    "webhook_alert_sent", webhook_alerts_metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("alert_id", Uuid, primary_key=True),
    Column("emitted_at", UtcDateTime, nullable=False),
    Column("outcome", String(16), nullable=False),  # delivered | parked | skipped
    Column("at", UtcDateTime, nullable=False),
)
# The pending query reads both logs from a moment on: an index each (made if missing, so
# databases created before this version get them too).
_INDEXES = (("alert_log_emitted_at", alert_log.name),
            ("client_alert_log_emitted_at", client_alert_log.name))


def is_alert_type(name: str) -> bool:
    return name.startswith(ALERT_PREFIX)


def unknown_alert_types(names: Iterable[str]) -> list[str]:
    known = {*ALERT_TYPES, ALL_ALERTS}
    return sorted(n for n in names if is_alert_type(n) and n not in known)


def kinds_of(types: Iterable[str]) -> frozenset[str]:
    """The alert kinds a subscriber's `event_types` ask for (none: no alerts)."""
    names = set(types)
    if ALL_ALERTS in names:
        return frozenset(ALERT_KINDS)
    return frozenset(kind for kind in ALERT_KINDS if alert_type(kind) in names)


@dataclass(frozen=True)
class Logged:
    """An alert as logged: when, and the alert (its CloudEvent: alert_publisher.to_cloudevent)."""

    emitted_at: datetime
    alert: Alert


def create(conn: Connection) -> None:
    webhook_alerts_metadata.create_all(conn)
    for index, table in _INDEXES:
        conn.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {index} ON {table} (emitted_at)")


def follow(conn: Connection, name: str, kinds: frozenset[str],
           before: frozenset[str] = frozenset()) -> None:
    """Follow the logs for `kinds` (it asked for `before` until now): the alerts of a kind newly
    asked for that are logged already are skipped; with no kind left, forget its place (asking
    again later starts afresh)."""
    if not kinds:
        forget(conn, name)
        return
    cursor = webhook_alert_cursor
    if conn.execute(select(cursor.c.subscriber).where(cursor.c.subscriber == name)).first():
        added = kinds - before
    else:
        added = kinds
        conn.execute(insert(cursor).values(subscriber=name, watermark=newest(conn)))
    if added:
        _skip_logged(conn, name, added)


def _skip_logged(conn: Connection, name: str, kinds: frozenset[str]) -> None:
    floor = _floor(conn, name)
    sent = webhook_alert_sent
    for log in (alert_log, client_alert_log):
        query = (select(log.c.alert_id, log.c.emitted_at).select_from(log.outerjoin(sent, and_(
                     sent.c.subscriber == name, sent.c.alert_id == log.c.alert_id)))
                 .where(sent.c.alert_id.is_(None), log.c.kind.in_(sorted(kinds))))
        if floor is not None:
            query = query.where(log.c.emitted_at >= floor)
        rows = conn.execute(query).all()
        if rows:
            conn.execute(insert(sent), [
                {"subscriber": name, "alert_id": r.alert_id, "emitted_at": r.emitted_at,
                 "outcome": "skipped", "at": r.emitted_at} for r in rows])


def _floor(conn: Connection, name: str) -> datetime | None:
    """The oldest `emitted_at` the subscriber's pending alerts can have (None: any)."""
    watermark = conn.execute(select(webhook_alert_cursor.c.watermark).where(
        webhook_alert_cursor.c.subscriber == name)).scalar()
    return None if watermark is None else watermark - LOOKBACK


def forget(conn: Connection, name: str) -> None:
    for table in (webhook_alert_sent, webhook_alert_cursor):
        conn.execute(delete(table).where(table.c.subscriber == name))


def newest(conn: Connection) -> datetime | None:
    found = [conn.execute(select(func.max(log.c.emitted_at))).scalar()
             for log in (alert_log, client_alert_log)]
    return max((f for f in found if f is not None), default=None)


def watermarks(conn: Connection) -> dict[str, datetime | None]:
    """Each following subscriber's watermark (the newest alert passed, by when it was logged)."""
    rows = conn.execute(select(webhook_alert_cursor.c.subscriber,
                               webhook_alert_cursor.c.watermark))
    return {r.subscriber: r.watermark for r in rows}


def pending(conn: Connection, name: str, kinds: frozenset[str], limit: int) -> list[Logged]:
    """The subscriber's next alerts not yet passed, in the order logged (at most `limit`)."""
    cursor = webhook_alert_cursor
    if not conn.execute(select(cursor.c.subscriber).where(cursor.c.subscriber == name)).first():
        follow(conn, name, kinds)  # asked for by other means (a row written by hand): from now
        return []
    floor = _floor(conn, name)
    sent = webhook_alert_sent
    found: list[tuple[datetime, str, Alert]] = []
    for log, to_alert in ((alert_log, alert_from_row),
                          (client_alert_log, client_alert_from_row)):
        query = (select(log).select_from(log.outerjoin(sent, and_(
                     sent.c.subscriber == name, sent.c.alert_id == log.c.alert_id)))
                 .where(sent.c.alert_id.is_(None), log.c.kind.in_(sorted(kinds)))
                 .order_by(log.c.emitted_at, log.c.alert_id).limit(limit))
        if floor is not None:
            query = query.where(log.c.emitted_at >= floor)
        found.extend((r.emitted_at, str(r.alert_id), to_alert(r))
                     for r in conn.execute(query))
    if not found:
        # Nothing wanted is pending: the watermark may rise to the newest alert of any kind
        # (the look-back covers late commits as for a passed one), so the reads stay short.
        _raise(conn, name, newest(conn))
        return []
    found.sort(key=lambda x: (x[0], x[1]))
    return [Logged(at, alert) for at, _id, alert in found[:limit]]


def _raise(conn: Connection, name: str, to: datetime | None) -> None:
    if to is None:
        return
    cursor = webhook_alert_cursor
    conn.execute(update(cursor).where(cursor.c.subscriber == name, or_(
        cursor.c.watermark.is_(None), cursor.c.watermark < to)).values(watermark=to))


def mark(conn: Connection, name: str, logged: Logged, outcome: str, at: datetime) -> None:
    """The alert passed (delivered or parked): never again, and the watermark moves up to it."""
    upsert(conn, webhook_alert_sent, {"subscriber": name, "alert_id": logged.alert.id,
                                      "emitted_at": logged.emitted_at, "outcome": outcome,
                                      "at": at}, ["subscriber", "alert_id"])
    _raise(conn, name, logged.emitted_at)


def prune(conn: Connection, name: str) -> None:
    """Drop the marks the pending query can no longer reach."""
    floor = _floor(conn, name)
    if floor is not None:
        conn.execute(delete(webhook_alert_sent).where(
            webhook_alert_sent.c.subscriber == name, webhook_alert_sent.c.emitted_at < floor))
