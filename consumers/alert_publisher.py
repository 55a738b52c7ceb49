"""Alerts on crm.alerts.v1: each alert of the scheduler as a CloudEvent, at least once, same id.

The scheduler's durable `alert_log` is the outbox: `drain()` sends every logged alert not yet
marked sent in `alert_published`, so an alert logged just before a crash, or while the broker was
away, still goes out. A background thread drains every few seconds, and at once when the hub
publishes an alert (the listener only wakes it: a slow broker never blocks the scheduler or the
live streams). An alert is marked after the broker acknowledged it; a crash in between sends it
again with the same CloudEvent id (the alert's id, derived from situation, kind, clock and
deadline), so consumers drop repeats by id.

The scheduler's `client_alert_log` (follow-ups and reception, consumers.client_alerts) is
drained the same way, in one order with `alert_log` (when logged).

CloudEvent: type crm.alert.<kind>.v1 (new_situation | sla_warning | sla_breach |
planned_contact_due | planned_contact_overdue | agreement_due | agreement_overdue | reception),
source crm, subject the id of what the alert is about (situation, planned contact, agreement,
work order or contact), time when the alert fell due, key = the specialist id (the client id
when the client has no specialist), data = Alert.to_json(); extensions clientid, specialistid.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import Column, Engine, MetaData, Table, Uuid, select

from consumers.alert_hub import Alert, AlertHub
from consumers.alerts import alert_log
from consumers.bus import KafkaPort, close_quietly
from consumers.client_alerts import client_alert_log, client_alerts_metadata
from consumers.client_alerts import from_row as client_alert_from_row
from projections.base import UtcDateTime, upsert

log = logging.getLogger(__name__)

ALERTS_TOPIC = "crm.alerts.v1"
SOURCE = "crm"

PUBLISHED = Counter("crm_alerts_published_total", "Alerts sent to crm.alerts.v1 (with repeats)",
                    ["kind"])

# Not projection state: what was sent depends on the broker, not only on events.
alert_publisher_metadata = MetaData()
alert_published = Table(
    "alert_published", alert_publisher_metadata,
    Column("alert_id", Uuid, primary_key=True),
    Column("published_at", UtcDateTime, nullable=False),
)


def alert_type(kind: str) -> str:
    return f"crm.alert.{kind}.v1"


def alert_key(alert: Alert) -> bytes:
    """Per-specialist order on the topic; an unassigned client's alerts keyed by the client."""
    return str(alert.specialist_id or alert.client_id).encode()


def to_cloudevent(alert: Alert) -> dict[str, Any]:
    out: dict[str, Any] = {
        "specversion": "1.0", "id": str(alert.id), "source": SOURCE,
        "type": alert_type(alert.kind), "subject": str(alert.about),
        "time": alert.at.astimezone(UTC).isoformat(), "datacontenttype": "application/json",
        "clientid": str(alert.client_id), "data": alert.to_json()}
    if alert.specialist_id is not None:
        out["specialistid"] = str(alert.specialist_id)
    return out


def alert_from_row(row: Any) -> Alert:
    """An alert of `alert_log` (a situation's)."""
    return Alert(row.alert_id, row.kind, row.situation_id, row.client_id, row.specialist_id,
                 row.situation_kind, row.clock, row.deadline, row.at)


class AlertPublisher:
    def __init__(self, engine: Engine, port: KafkaPort, *, topic: str = ALERTS_TOPIC,
                 client_id: str = "crm-alerts", clock: Callable[[], datetime] | None = None,
                 max_age: timedelta = timedelta(days=1), drain_seconds: float = 5.0,
                 flush_timeout: float = 15.0) -> None:
        self.engine = engine
        self.port = port
        self.topic = topic
        self.client_id = client_id
        self.clock = clock or (lambda: datetime.now(UTC))
        # Logged alerts older than this are not sent late: a first start on an old log must
        # not flood the topic (the scheduler applies the same rule to the live streams).
        self.max_age = max_age
        self.drain_seconds = drain_seconds
        self.flush_timeout = flush_timeout
        self.last_error: str | None = None
        self._producer: Any = None
        self._topic_ready = False
        self._lock = threading.Lock()  # the drain thread and direct callers of drain()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        alert_publisher_metadata.create_all(engine)
        client_alerts_metadata.create_all(engine)

    def attach(self, hub: AlertHub) -> None:
        hub.add_listener(self.publish)

    def publish(self, _alert: Alert) -> None:
        """The hub's listener: the alert is in the log already; have the thread send it now."""
        self._wake.set()

    def drain(self) -> int:
        """Send every logged alert of the last `max_age` not yet marked sent; returns how many.

        Send, wait for every acknowledgement, then mark them sent (one transaction)."""
        with self._lock:  # one drain at a time: two would both send what neither marked yet
            since = self.clock() - self.max_age
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(alert_log).outerjoin(
                        alert_published, alert_published.c.alert_id == alert_log.c.alert_id)
                    .where(alert_published.c.alert_id.is_(None),
                           alert_log.c.emitted_at >= since)
                    .order_by(alert_log.c.emitted_at, alert_log.c.alert_id)).all()
            with self.engine.connect() as conn:
                client_rows = conn.execute(
                    select(client_alert_log).outerjoin(
                        alert_published,
                        alert_published.c.alert_id == client_alert_log.c.alert_id)
                    .where(alert_published.c.alert_id.is_(None),
                           client_alert_log.c.emitted_at >= since)
                    .order_by(client_alert_log.c.emitted_at, client_alert_log.c.alert_id)).all()
            # Both logs (situations; follow-ups and visits), in the order they were logged.
            logged = sorted([(r.emitted_at, str(r.alert_id), alert_from_row(r)) for r in rows]
                            + [(r.emitted_at, str(r.alert_id), client_alert_from_row(r))
                               for r in client_rows], key=lambda x: (x[0], x[1]))
            alerts = [alert for _at, _id, alert in logged]
            if not alerts:
                return 0
            try:
                producer = self._ready_producer()
                futures = [producer.send(self.topic, key=alert_key(a),
                                         value=orjson.dumps(to_cloudevent(a))) for a in alerts]
                producer.flush(timeout=self.flush_timeout)
                for future in futures:
                    future.get(timeout=self.flush_timeout)
            except Exception:
                # A restarted broker forgets producer ids: the next attempt needs a new one.
                self._discard_producer()
                raise
            now = self.clock()
            with self.engine.begin() as conn:
                for alert in alerts:
                    upsert(conn, alert_published, {"alert_id": alert.id, "published_at": now},
                           ["alert_id"], replace=False)
            for alert in alerts:
                PUBLISHED.labels(alert.kind).inc()
            return len(alerts)

    def start(self) -> None:
        """Drain in a background thread: when woken by an alert, and every `drain_seconds`."""
        self._thread = threading.Thread(target=self.run, args=(self._stop,),
                                        name="alert-publisher", daemon=True)
        self._thread.start()

    def run(self, stop: threading.Event) -> None:
        wait, backoff = 0.0, 0.5
        while not stop.is_set():
            self._wake.wait(wait)
            self._wake.clear()
            if stop.is_set():
                break
            try:
                self.drain()
                self.last_error, wait, backoff = None, self.drain_seconds, 0.5
            except Exception as error:  # broker or database away: try again later
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("alert drain failed (%s); retrying", self.last_error)
                wait, backoff = backoff, min(backoff * 2, self.drain_seconds * 6)
        self._discard_producer()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._discard_producer()

    def _ready_producer(self) -> Any:
        if not self._topic_ready:
            self.port.ensure_topics({self.topic: 1})
            self._topic_ready = True
        if self._producer is None:
            self._producer = self.port.producer(self.client_id)
        return self._producer

    def _discard_producer(self) -> None:
        producer, self._producer = self._producer, None
        self._topic_ready = False
        close_quietly(producer, timeout=1)
