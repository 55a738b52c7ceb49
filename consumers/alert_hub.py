"""Alerts and their in-process delivery: the `Alert` shape and a publish/subscribe hub.

The scheduler (consumers.alerts) publishes from its thread; subscribers are server-sent-event
streams (each an asyncio queue on its own event loop, fed thread-safely) and plain listeners (a
Kafka publisher for `crm.alerts.v1` can be one). Delivery to subscribers is at most once: a
stream that is not connected when an alert fires does not get it (the durable record is the
scheduler's alert log).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid5

log = logging.getLogger(__name__)

NEW_SITUATION, SLA_WARNING, SLA_BREACH = "new_situation", "sla_warning", "sla_breach"
# Follow-ups (issue 18.2): a planned contact or an agreement falls due (its day begins) and
# becomes overdue (its due instant passed, still open); reception (issue 18.1): a visit opens
# for a client with an unresolved or recent dissatisfaction.
CONTACT_DUE, CONTACT_OVERDUE = "planned_contact_due", "planned_contact_overdue"
AGREEMENT_DUE, AGREEMENT_OVERDUE = "agreement_due", "agreement_overdue"
RECEPTION = "reception"
ALERT_KINDS = (NEW_SITUATION, SLA_WARNING, SLA_BREACH, CONTACT_DUE, CONTACT_OVERDUE,
               AGREEMENT_DUE, AGREEMENT_OVERDUE, RECEPTION)
_ALERT_NS = UUID("3c1f6a0e-6f53-4a9e-8a57-0d4b8f6c2e71")


@dataclass(frozen=True)
class Alert:
    """One alert. Its id is derived from what it is about, so the same alert always has the
    same id (a consumer can drop duplicates by id). `subject` names what it is about: a
    situation (situation_id and situation_kind set), a planned contact, an agreement, or a
    visit (work_order or contact); `detail` holds ids and catalogue values only, never
    personal data (the card and the brief show the rest)."""

    id: UUID
    kind: str  # one of ALERT_KINDS
    situation_id: UUID | None
    client_id: UUID
    specialist_id: UUID | None
    situation_kind: str | None
    clock: str | None  # first_reaction | resolution; None for new_situation
    deadline: datetime | None  # the last instant the target is met; a follow-up's due instant
    at: datetime  # when the alert fell due: the opening, the warning share, the breach
    subject: str = "situation"  # situation | planned_contact | agreement | work_order | contact
    subject_id: UUID | None = None  # None: the situation
    detail: dict[str, Any] | None = field(default=None, hash=False, compare=False)

    @property
    def about(self) -> UUID:
        """The id of what the alert is about."""
        found = self.subject_id or self.situation_id
        assert found is not None
        return found

    @staticmethod
    def identity(situation_id: UUID, kind: str, clock: str | None,
                 deadline: datetime | None) -> UUID:
        """One alert per situation, kind, clock and deadline; a new situation alerts once."""
        if kind == NEW_SITUATION:
            deadline = None
        stamp = "" if deadline is None else deadline.astimezone(UTC).isoformat()
        return uuid5(_ALERT_NS, f"{situation_id}|{kind}|{clock or ''}|{stamp}")

    @staticmethod
    def follow_up(subject_id: UUID, kind: str, due_at: datetime) -> UUID:
        """One alert per planned contact or agreement, kind and due instant (a new due date
        is a new alert); one reception alert per visit (due_at: the visit's instant)."""
        return uuid5(_ALERT_NS, f"{subject_id}|{kind}|{due_at.astimezone(UTC).isoformat()}")

    def to_json(self) -> dict[str, Any]:
        def instant(value: datetime | None) -> str | None:
            return None if value is None else value.astimezone(UTC).isoformat()

        return {"id": str(self.id), "kind": self.kind,
                "situation_id": None if self.situation_id is None else str(self.situation_id),
                "client_id": str(self.client_id),
                "specialist_id": None if self.specialist_id is None else str(self.specialist_id),
                "situation_kind": self.situation_kind, "clock": self.clock,
                "deadline": instant(self.deadline), "at": instant(self.at),
                "subject": self.subject, "subject_id": str(self.about),
                "detail": self.detail}


class Subscription:
    """One stream's queue on its event loop. `next()` gives an alert, or None on a quiet
    interval (time for a heartbeat); `closed` turns true when the hub shuts down."""

    def __init__(self, hub: AlertHub, specialist: UUID | None, loop: asyncio.AbstractEventLoop,
                 maxsize: int) -> None:
        self.specialist = specialist
        self.closed = False
        self.dropped = 0
        self._hub = hub
        self._loop = loop
        self._queue: asyncio.Queue[Alert | None] = asyncio.Queue(maxsize)

    def matches(self, alert: Alert) -> bool:
        return self.specialist is None or alert.specialist_id == self.specialist

    def offer(self, alert: Alert | None) -> None:
        """Thread-safe: hand the alert (None: end of stream) to the subscriber's loop."""
        try:
            self._loop.call_soon_threadsafe(self._put, alert)
        except RuntimeError:  # its loop is gone: the stream ended without unsubscribing
            self._hub.unsubscribe(self)

    def _put(self, alert: Alert | None) -> None:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            self.dropped += 1  # a stream too slow to read loses alerts, never blocks others

    async def next(self, timeout: float) -> Alert | None:
        try:
            alert = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if alert is None:
            self.closed = True
        return alert

    def close(self) -> None:
        self._hub.unsubscribe(self)


class AlertHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()
        self._listeners: list[Callable[[Alert], None]] = []

    def subscribe(self, specialist: UUID | None = None, *, maxsize: int = 1000) -> Subscription:
        """A subscription on the running event loop (call it from the stream's coroutine)."""
        subscription = Subscription(self, specialist, asyncio.get_running_loop(), maxsize)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._subscriptions.discard(subscription)

    def add_listener(self, listener: Callable[[Alert], None]) -> None:
        """A synchronous listener, called on the scheduler's thread for every alert."""
        with self._lock:
            self._listeners.append(listener)

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscriptions)

    def publish(self, alert: Alert) -> None:
        with self._lock:
            listeners = list(self._listeners)
            subscriptions = [s for s in self._subscriptions if s.matches(alert)]
        for listener in listeners:
            try:
                listener(alert)
            except Exception:  # one failing listener must not starve the others
                log.exception("alert listener failed")
        for subscription in subscriptions:
            subscription.offer(alert)

    def close(self) -> None:
        """End every stream (shutdown), so servers do not wait on open connections."""
        with self._lock:
            subscriptions = list(self._subscriptions)
            self._subscriptions.clear()
        for subscription in subscriptions:
            subscription.offer(None)
