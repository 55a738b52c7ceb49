"""Webhooks (`crm webhooks`): each subscriber gets the events it asked for as signed HTTP POSTs,
in store order, retried with back-off, parked after N failures, replayable from a position.

Source: the event store's notification log, not Kafka: a subscriber can be backfilled from any
position however old (topic retention never limits it) and webhooks keep working while the
broker is away. Each subscriber has its own durable position (`webhook_subscribers.position`,
the last store position delivered, parked, or not wanted), saved after each success; a crash
re-sends at most the event in flight, with the same CloudEvent id (receivers drop repeats by id).

Request: POST <url>, body = the event as CloudEvents structured JSON (docs/bus.md; personal
fields sealed, as on Kafka), headers Content-Type application/cloudevents+json,
X-CRM-Event-Id, X-CRM-Timestamp (Unix seconds) and X-CRM-Signature
"sha256=" + hex HMAC-SHA256(secret, timestamp + "." + body). A 2xx answer is a delivery;
anything else (or no answer within the timeout) is retried after 1, 2, 4... s (capped), and after
`retry.attempts` failures the event is parked in `webhook_parked` with the error and the
subscriber moves on. `replay(engine, name, from_position)` sends everything from that position
again, parked events included. Run one dispatcher process: two would both deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import Counter
from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

from consumers.cloudevents import encode, is_published, type_name
from consumers.dlq import RetryPolicy
from domain.base import event_id_of
from domain.catalogue import EVENT_TYPES, event_type
from projections.base import UtcDateTime, upsert

log = logging.getLogger(__name__)

DELIVERIES = Counter("crm_webhook_deliveries_total", "Webhook delivery attempts by outcome",
                     ["subscriber", "outcome"])

# Not projection state: delivery depends on the receivers, not only on events.
webhooks_metadata = MetaData()
webhook_subscribers = Table(
    "webhook_subscribers", webhooks_metadata,
    Column("name", String(100), primary_key=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("event_types", Text, nullable=False),  # JSON list of event type names; [] = all
    Column("position", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
webhook_parked = Table(
    "webhook_parked", webhooks_metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("type", String(200), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # parked | replayed
    Column("body", LargeBinary, nullable=False),
    Column("parked_at", UtcDateTime, nullable=False),
)

Reader = Callable[[int, int], Sequence[tuple[int, Any]]]
# (url, body, headers, timeout seconds) -> HTTP status; raises OSError (or an
# http.client.HTTPException) when there is no usable answer.
Transport = Callable[[str, bytes, dict[str, str], float], int]


def create(engine: Engine) -> None:
    webhooks_metadata.create_all(engine)


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str
    secret: str
    event_types: frozenset[str]  # empty: every event
    position: int

    def wants(self, event: Any) -> bool:
        return not self.event_types or event_type(event) in self.event_types


def add_subscriber(engine: Engine, name: str, url: str, secret: str,
                   event_types: Iterable[str] = (), *, position: int = 0,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Subscriber:
    """Add a subscriber that gets events after store `position` (0: the whole history); for an
    existing name, update its URL, secret and types and keep its position (config in code can
    call this at every start)."""
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"webhook URL must be http(s): {url!r}")
    if len(secret) < 16:
        raise ValueError("the webhook secret must have at least 16 characters")
    names = sorted({type_name(t) if t.startswith("crm.") else t for t in event_types})
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown:
        raise ValueError(f"unknown event types: {unknown}")
    create(engine)
    with engine.begin() as conn:
        upsert(conn, webhook_subscribers, {"name": name, "url": url, "secret": secret,
                                           "event_types": orjson.dumps(names).decode(),
                                           "position": position, "created_at": clock()},
               ["name"], replace=False)
        conn.execute(update(webhook_subscribers).where(webhook_subscribers.c.name == name)
                     .values(url=url, secret=secret, event_types=orjson.dumps(names).decode()))
    return next(s for s in subscribers(engine) if s.name == name)


def subscribers(engine: Engine) -> list[Subscriber]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_subscribers).order_by(webhook_subscribers.c.name))
        return [Subscriber(r.name, r.url, r.secret, frozenset(orjson.loads(r.event_types)),
                           r.position) for r in rows]


def parked(engine: Engine, subscriber: str | None = None) -> list[dict[str, Any]]:
    query = select(webhook_parked).where(webhook_parked.c.status == "parked")
    if subscriber is not None:
        query = query.where(webhook_parked.c.subscriber == subscriber)
    with engine.connect() as conn:
        rows = conn.execute(query.order_by(webhook_parked.c.subscriber,
                                           webhook_parked.c.position))
        return [dict(r._mapping) for r in rows]


def replay(engine: Engine, subscriber: str, from_position: int) -> None:
    """Deliver again every wanted event at or after `from_position` (parked ones included)."""
    if from_position < 1:
        raise ValueError("positions start at 1")
    with engine.begin() as conn:
        moved = conn.execute(update(webhook_subscribers)
                             .where(webhook_subscribers.c.name == subscriber)
                             .values(position=from_position - 1)).rowcount
        if not moved:
            raise KeyError(f"no webhook subscriber {subscriber!r}")
        conn.execute(update(webhook_parked).where(
            webhook_parked.c.subscriber == subscriber,
            webhook_parked.c.position >= from_position).values(status="replayed"))


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def urllib_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except urllib.error.URLError as error:
        # The cause names the trouble (ConnectionRefusedError, TimeoutError...) for the park row.
        if isinstance(error.reason, OSError):
            raise error.reason from error
        raise


class DeliveryError(Exception):
    pass


@dataclass
class _Failing:
    """A subscriber whose next event keeps failing: when to try again."""

    position: int
    attempts: int
    retry_at: float  # time.monotonic()
    error: str


class Dispatcher:
    def __init__(self, engine: Engine, reader: Reader, *, transport: Transport = urllib_post,
                 retry: RetryPolicy | None = None, page_size: int = 500,
                 poll_seconds: float = 0.5, timeout: float = 10.0,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.engine = engine
        self.reader = reader
        self.transport = transport
        self.retry = retry or RetryPolicy(attempts=6, first_delay=1.0, max_delay=60.0)
        self.page_size = page_size
        self.poll_seconds = poll_seconds
        self.timeout = timeout
        self.clock = clock
        self.last_error: str | None = None
        self._failing: dict[str, _Failing] = {}
        self._wake = threading.Event()
        create(engine)

    def notify(self, *_saved: Any) -> None:
        """Wake the loop now (hooked to the application's saves when in the same process)."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                busy = self.step()
                self.last_error = None
            except Exception as error:  # the store or read-model database away: wait, retry
                self.last_error = f"{type(error).__name__}: {error}"
                log.warning("webhook dispatch failed (%s); retrying", self.last_error)
                busy = 0
            if not busy:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()

    def step(self) -> int:
        """One page per subscriber; returns the events passed (delivered, parked, not wanted)."""
        return sum(self._advance(s) for s in subscribers(self.engine))

    def _advance(self, sub: Subscriber) -> int:
        failing = self._failing.get(sub.name)
        if failing is not None and failing.position <= sub.position:
            del self._failing[sub.name]  # parked, or moved past by hand meanwhile
            failing = None
        if failing is not None and time.monotonic() < failing.retry_at:
            return 0  # backing off; the other subscribers go on
        saved = position = sub.position
        passed = 0
        for pos, event in self.reader(sub.position + 1, self.page_size):
            if is_published(event) and sub.wants(event):
                body = encode(pos, event)
                try:
                    self._post(sub, body, event)
                except DeliveryError as error:
                    if not self._park_if_exhausted(sub, pos, event, body, str(error), saved):
                        break  # try this event again after the back-off
                    saved = pos  # parked: the position moved past it
                else:
                    if not self._save(sub.name, saved, pos):
                        return passed  # replayed meanwhile: go on from the new position
                    saved = pos
            position = pos
            passed += 1
        if position != saved:  # events not wanted, passed over since the last save
            self._save(sub.name, saved, position)
        return passed

    def _post(self, sub: Subscriber, body: bytes, event: Any) -> None:
        timestamp = str(int(self.clock().timestamp()))
        headers = {"Content-Type": "application/cloudevents+json; charset=utf-8",
                   "User-Agent": "crm-webhooks/1",
                   "X-CRM-Event-Id": str(event_id_of(event.originator_id,
                                                     event.originator_version)),
                   "X-CRM-Timestamp": timestamp,
                   "X-CRM-Signature": sign(sub.secret, timestamp, body)}
        try:
            status = self.transport(sub.url, body, headers, self.timeout)
        except (OSError, http.client.HTTPException) as error:  # refused, reset, timed out, garbled
            DELIVERIES.labels(sub.name, "failed").inc()
            raise DeliveryError(f"{type(error).__name__}: {error}") from error
        if not 200 <= status < 300:
            DELIVERIES.labels(sub.name, "failed").inc()
            raise DeliveryError(f"HTTP {status}")
        DELIVERIES.labels(sub.name, "delivered").inc()

    def _park_if_exhausted(self, sub: Subscriber, position: int, event: Any, body: bytes,
                           error: str, saved: int) -> bool:
        """Count a failed attempt; True if the event was parked (the subscriber moves on)."""
        failing = self._failing.get(sub.name)
        attempts = 1 if failing is None or failing.position != position else failing.attempts + 1
        if attempts < self.retry.attempts:
            delays = list(self.retry.delays())
            self._failing[sub.name] = _Failing(position, attempts,
                                               time.monotonic() + delays[attempts - 1], error)
            log.info("webhook %s: event at %d failed (%s), attempt %d", sub.name, position,
                     error, attempts)
            return False
        self._failing.pop(sub.name, None)
        with self.engine.begin() as conn:
            moved = conn.execute(update(webhook_subscribers).where(
                webhook_subscribers.c.name == sub.name,
                webhook_subscribers.c.position == saved).values(position=position)).rowcount
            if moved:
                upsert(conn, webhook_parked, {
                    "subscriber": sub.name, "position": position,
                    "event_id": str(event_id_of(event.originator_id, event.originator_version)),
                    "type": event_type(event), "error": error[:4000], "attempts": attempts,
                    "status": "parked", "body": body, "parked_at": self.clock()},
                    ["subscriber", "position"])
        if moved:
            DELIVERIES.labels(sub.name, "parked").inc()
            log.error("webhook %s: parked the event at %d after %d attempts: %s", sub.name,
                      position, attempts, error)
        return bool(moved)

    def _save(self, name: str, old: int, new: int) -> bool:
        """Move the position from `old` to `new`; False if a replay moved it meanwhile."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(webhook_subscribers).where(
                webhook_subscribers.c.name == name, webhook_subscribers.c.position == old)
                .values(position=new)).rowcount)
