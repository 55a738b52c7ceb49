"""The alert scheduler: emits new-situation, SLA-warning and SLA-breach alerts when the clock
runs out, whether or not anyone reads; driven by an injectable clock.

A thread sleeps until the next alert falls due (or a poll interval passes, or it is woken by a
save or by `wake()`), then measures the situations that changed or fell due, at now and under
today's calendars and targets. Each alert is written to a durable log keyed by its id before it
is published, so it goes out once per situation, kind, clock and deadline, across restarts and
workers sharing the database. Alerts that fell due longer than `max_age` before anyone could
know (the last event of the situation) are not sent: a first start on an old history does not
flood the streams.

The same scan raises the alerts about a client's follow-ups (planned contacts and agreements
falling due and overdue) and visits (reception), planned in consumers.client_alerts and logged
in their own table; their next due moment sets the sleep like a situation's. A reception alert
is raised by the scan after the visit's save; so that a crash between the two does not lose it,
the first scan and one every `sweep_seconds` also check the visits recorded in the last
`max_age` that have no reception alert logged and this process has not checked (judged as
known when recorded; logging is idempotent by the alert id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, Uuid
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consumers.alert_hub import NEW_SITUATION, SLA_BREACH, SLA_WARNING, Alert, AlertHub
from consumers.client_alerts import (
    FOLLOW_UP_CLOSED,
    FOLLOW_UP_CREATED,
    Visit,
    client_alerts_metadata,
    follow_up_alerts,
    reception_alert,
    unalerted_visits,
    visit_of,
)
from consumers.client_alerts import record as record_client_alert
from domain.reaction import CLOCK_EVENT_TYPES, CONTACT, FIRST_REACTION, STOPPED, timeline
from projections.base import UtcDateTime
from projections.reaction_times import CURRENT, Measured, ReactionPolicy, measure
from projections.situations import (
    SituationFacts,
    changed_since,
    last_clock_position,
    load_reference,
    load_situations,
    reference_position,
)

log = logging.getLogger(__name__)

# Not a projection table: what was sent depends on when the scheduler ran, not only on events.
alerts_metadata = MetaData()
alert_log = Table(
    "alert_log", alerts_metadata,
    Column("alert_id", Uuid, primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("clock", String(20)),
    Column("situation_id", Uuid, nullable=False),
    Column("client_id", Uuid, nullable=False),
    Column("specialist_id", Uuid),
    Column("situation_kind", String(40), nullable=False),
    Column("deadline", UtcDateTime),
    Column("at", UtcDateTime, nullable=False),
    Column("emitted_at", UtcDateTime, nullable=False),
)


def planned_alerts(m: Measured, now: datetime) -> list[tuple[Alert, datetime]]:
    """Every alert a situation calls for, due or not, each with the moment it became knowable."""
    f = m.facts
    known = max(e.recorded_at for e in f.events)

    def alert(kind: str, clock: str | None, deadline: datetime | None,
              at: datetime) -> Alert:
        return Alert(Alert.identity(f.situation_id, kind, clock, deadline), kind,
                     f.situation_id, f.client_id, f.specialist_id, f.kind, clock, deadline, at)

    out = [(alert(NEW_SITUATION, None, m.figures[FIRST_REACTION].deadline, m.timeline.opened.at),
            f.recorded_at)]
    for name, fig in m.figures.items():
        if fig.target is None:
            continue
        breach_due = fig.breach_at is not None and fig.breach_at <= now
        # Warnings only while a clock runs (a stopped one needs no nudge); a breach for any.
        if fig.warn_at is not None and fig.clock.state != STOPPED and not breach_due:
            out.append((alert(SLA_WARNING, name, fig.deadline, fig.warn_at),
                        max(fig.warn_at, known)))
        if fig.breach_at is not None and (fig.breached or fig.clock.state != STOPPED):
            out.append((alert(SLA_BREACH, name, fig.deadline, fig.breach_at),
                        max(fig.breach_at, known)))
    return out


class AlertScheduler:
    """Owns the alert hub; `clock` and `policy` are shared with the read routes ("now", the
    default calendar)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime], policy: ReactionPolicy, *,
                 hub: AlertHub | None = None,
                 wait_for: Callable[[int, float], bool] | None = None,
                 poll_seconds: float = 5.0, max_age: timedelta = timedelta(days=1),
                 heartbeat_seconds: float = 15.0, min_interval_seconds: float = 0.2,
                 sweep_seconds: float = 300.0, timezone: str = "UTC") -> None:
        self.engine = engine
        self.zone = ZoneInfo(timezone)  # follow-ups fall due when their local day begins
        self.clock = clock
        self.policy = policy
        self.hub = hub or AlertHub()
        self.poll_seconds = poll_seconds
        self.max_age = max_age
        self.heartbeat_seconds = heartbeat_seconds
        # At most one scan per interval: a bulk load (thousands of saves) costs a few scans.
        self.min_interval_seconds = min_interval_seconds
        self.last_error: str | None = None
        self._wait_for = wait_for
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._target = 0  # a store position the read models should reach before a scan
        self._position = 0  # clock events seen
        self._reference = -1  # calendar/SLA change seen; -1 forces a full scan
        self._due: dict[UUID, datetime] = {}  # situation -> when its next alert falls due
        # Follow-ups and visits (consumers.client_alerts): saves hand them over under
        # `_inbox`; the scan takes them.
        self._inbox = threading.Lock()
        self._fresh: set[UUID] = set()  # follow-ups just recorded (maybe due long ago)
        self._visits: list[Visit] = []
        self._follow_next: datetime | None = None  # when the next follow-up alert falls due
        self._sent: dict[UUID, datetime] = {}  # follow-up alerts logged: id -> at
        self.sweep_seconds = sweep_seconds
        self._swept: float | None = None  # time.monotonic() of the last sweep of visits
        self._checked: dict[UUID, datetime] = {}  # visits judged here: subject id -> when
        alerts_metadata.create_all(engine)
        client_alerts_metadata.create_all(engine)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="alert-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.hub.close()

    def wake(self) -> None:
        """Scan now (after a clock change, or to check without waiting for the poll)."""
        self._wake.set()

    def notify(self, position: int, events: Any = None) -> None:
        """After a save (an application listener): if it touched a situation's clock, a
        calendar or a target, scan once the read models have applied `position`. Other saves
        cost nothing here."""
        if events is not None and not self._take(events) and not any(
                _relevant(e) for e in events):
            return
        self._target = max(self._target, position)
        self._wake.set()

    def _take(self, events: Iterable[Any]) -> bool:
        """Note the visits and new follow-ups of a save; True if it had any follow-up or visit."""
        mine = False
        with self._inbox:
            for event in events:
                kind = type(event).__name__
                visit = visit_of(event)
                if visit is not None:
                    self._visits.append(visit)
                    mine = True
                elif kind in FOLLOW_UP_CREATED:
                    self._fresh.add(event.originator_id)
                    mine = True
                elif kind in FOLLOW_UP_CLOSED:
                    mine = True
        return mine

    def _client_alerts(self, now: datetime) -> list[Alert]:
        with self._inbox:
            fresh, self._fresh = self._fresh, set()
            visits, self._visits = self._visits, []
        fire: list[Alert] = []
        with self.engine.connect() as conn:
            if self._swept is None or time.monotonic() - self._swept >= self.sweep_seconds:
                self._swept = time.monotonic()
                live = {v.subject_id for v in visits}
                visits.extend(v for v in unalerted_visits(conn, now - self.max_age)
                              if v.subject_id not in self._checked
                              and v.subject_id not in live)
            for visit in visits:
                try:
                    found = reception_alert(conn, visit, now)
                except Exception as error:  # one bad visit must not silence the others
                    self.last_error = f"visit {visit.subject_id}: {error}"
                    log.exception("reception alert failed for %s", visit.subject_id)
                    continue
                self._checked[visit.subject_id] = now
                if found is not None:
                    fire.append(found)
            due, self._follow_next = follow_up_alerts(conn, now, self.zone, self.max_age,
                                                      fresh)
        fire.extend(a for a in due if a.id not in self._sent)
        stale = now - self.max_age - timedelta(days=2)
        for key in [k for k, at in self._sent.items() if at < stale]:
            del self._sent[key]
        for key in [k for k, at in self._checked.items() if at < stale]:
            del self._checked[key]
        return fire

    def run_once(self) -> list[Alert]:
        """One scan at the clock's now; returns the alerts it sent."""
        with self._lock:
            now = self.clock()
            client = self._client_alerts(now)
            with self.engine.connect() as conn:
                facts, full = self._changed(conn, now)
                reference = load_reference(conn, now)
            if full:
                self._due.clear()
            fire: list[Alert] = []
            for f in facts:
                try:
                    fire.extend(self._plan(f, reference, now, full))
                except Exception as error:  # one bad situation must not silence the others
                    self.last_error = f"situation {f.situation_id}: {error}"
                    log.exception("alert planning failed for situation %s", f.situation_id)
                    self._due.pop(f.situation_id, None)
            fire.extend(client)
            return self._emit(fire, now) if fire else []

    def next_wait(self) -> float:
        """Seconds until the next alert falls due, at most the poll interval."""
        with self._lock:
            soonest = min([*self._due.values(),
                           *([self._follow_next] if self._follow_next else [])], default=None)
        if soonest is None:
            return self.poll_seconds
        return max(0.0, min(self.poll_seconds, (soonest - self.clock()).total_seconds()))

    def _changed(self, conn: Connection, now: datetime) -> tuple[list[SituationFacts], bool]:
        reference = reference_position(conn)
        if reference != self._reference:  # calendars or targets changed: every deadline may
            position = last_clock_position(conn)
            facts = load_situations(conn, as_of=now)
            self._reference, self._position = reference, position
            return facts, True
        ids, position = changed_since(conn, self._position)
        ids |= {sid for sid, due in self._due.items() if due <= now}
        self._position = position
        if not ids:
            return [], False
        return load_situations(conn, as_of=now, ids=sorted(ids)), False

    def _plan(self, f: SituationFacts, reference: Any, now: datetime,
              full: bool) -> list[Alert]:
        stale = now - self.max_age
        if full and f.events and max(e.recorded_at for e in f.events) < stale:
            found = timeline(f.events, now)  # cheap: no calendar arithmetic
            if found is not None and all(c.state == STOPPED for c in
                                         (found.first_reaction, found.resolution)):
                return []  # finished long ago: anything it could raise is stale
        m = measure(f, reference, self.policy, at=now, as_of=now, basis=CURRENT)
        if m is None:  # opened a little in the future (clock skew): look again then
            self._due[f.situation_id] = f.opened_at
            return []
        planned = planned_alerts(m, now)
        later = [a.at for a, _known in planned if a.at > now]
        if later:
            self._due[f.situation_id] = min(later)
        else:
            self._due.pop(f.situation_id, None)
        return [a for a, known in planned if a.at <= now and known >= stale]

    def _emit(self, alerts: list[Alert], now: datetime) -> list[Alert]:
        sent = []
        with self.engine.begin() as conn:
            for alert in alerts:
                if alert.situation_id is None:
                    if record_client_alert(conn, alert, now):
                        sent.append(alert)
                    self._sent[alert.id] = alert.at
                elif _record(conn, alert, now):
                    sent.append(alert)
        # Published after the commit: a crash in between loses the live copy, never duplicates.
        for alert in sent:
            self.hub.publish(alert)
        return sent

    def _loop(self) -> None:
        timeout = 0.0
        while True:
            self._wake.wait(timeout)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if self._target and self._wait_for is not None:
                    self._wait_for(self._target, self.poll_seconds)
                self.run_once()
                self.last_error = None
            except Exception as error:  # a bad row must not end alerting silently
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("alert scan failed; retrying")
            self._stop.wait(self.min_interval_seconds)
            timeout = self.next_wait()


_REFERENCE_EVENTS = frozenset({"CalendarDefined", "CalendarChanged", "SlaTargetDefined",
                               "SlaTargetChanged"})


def _relevant(event: object) -> bool:
    kind = type(event).__name__
    if kind == CONTACT:
        return getattr(event, "situation_id", None) is not None
    return kind in CLOCK_EVENT_TYPES or kind in _REFERENCE_EVENTS


def _record(conn: Connection, alert: Alert, now: datetime) -> bool:
    """Insert the alert into the log unless it is there already; True if this call added it."""
    assert alert.situation_id is not None and alert.situation_kind is not None
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(alert_log).values(
        alert_id=alert.id, kind=alert.kind, clock=alert.clock, situation_id=alert.situation_id,
        client_id=alert.client_id, specialist_id=alert.specialist_id,
        situation_kind=alert.situation_kind, deadline=alert.deadline, at=alert.at,
        emitted_at=now).on_conflict_do_nothing(index_elements=["alert_id"])
    # RETURNING, not rowcount: psycopg reports -1 for this statement.
    return conn.execute(stmt.returning(alert_log.c.alert_id)).first() is not None
