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

Subscribers are managed like any resource (admin routes `/v1/webhooks`, `crm webhooks
add|list|update|remove`; docs/webhooks.md). The signing secret is never stored in clear: it is
kept by a `SecretStore` (the keyring's, wrapped by the master key and re-wrapped by `crm keys
rotate-master`); the `secret` column of `webhook_subscribers` stays empty (rows written by older
versions are moved into the store by `create`). Each subscriber's last delivery and current run
of failures are kept in `webhook_status`.

Alerts: a subscriber that names alert CloudEvents types in `event_types` (`crm.alert.reception.v1`,
`crm.alert.*`) also gets the alerts of the scheduler's logs, as the very CloudEvents of
crm.alerts.v1 (`alert_publisher.to_cloudevent`), signed, retried and parked like events (a
parked alert's position is negative: alerts have none), from its own durable place in the alert
logs (consumers.webhook_alerts). The loop reads the logs at every poll, and wakes at once on the
alert hub when it runs beside the scheduler (`attach`).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from secrets import token_urlsafe
from typing import Any, Protocol
from uuid import uuid4

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
    delete,
    func,
    select,
    update,
)

from consumers import webhook_alerts
from consumers.alert_hub import AlertHub
from consumers.alert_publisher import alert_type, to_cloudevent
from consumers.alerts import alerts_metadata
from consumers.client_alerts import client_alerts_metadata
from consumers.cloudevents import CloudEventError, encode, is_published, type_name
from consumers.dlq import RetryPolicy
from consumers.webhook_alerts import Logged
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
    Column("secret", Text, nullable=False),  # empty: secrets live in the SecretStore
    # JSON list of event type names and alert CloudEvents types; [] = every event, no alert
    Column("event_types", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)
webhook_parked = Table(
    "webhook_parked", webhooks_metadata,
    Column("subscriber", String(100), primary_key=True),
    # The event's store position; an alert's is negative (-1, -2... in the order parked)
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(36), nullable=False),
    Column("type", String(200), nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # parked | replayed
    Column("body", LargeBinary, nullable=False),
    Column("parked_at", UtcDateTime, nullable=False),
)

webhook_status = Table(
    "webhook_status", webhooks_metadata,
    Column("subscriber", String(100), primary_key=True),
    Column("delivered_position", BigInteger),  # null when the last delivery was an alert
    Column("delivered_event_id", String(36)),
    Column("delivered_at", UtcDateTime),
    Column("failures", Integer, nullable=False),  # failed attempts in a row (0 after a success)
    Column("last_error", Text),
    Column("last_error_at", UtcDateTime),
)

Reader = Callable[[int, int], Sequence[tuple[int, Any]]]
MIN_SECRET = 32  # characters of a secret given by the caller
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"


class SecretStore(Protocol):
    """Signing secrets by subscriber name, kept sealed (infra.crypto.SealedSecrets)."""

    def put(self, name: str, secret: str) -> None: ...

    def get(self, name: str) -> str | None: ...

    def drop(self, name: str) -> None: ...


class SubscriberError(ValueError):
    """A subscriber's settings are not acceptable; `field` names the one at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class SubscriberExistsError(SubscriberError):
    pass


class UnknownSubscriberError(KeyError):
    pass
# (url, body, headers, timeout seconds) -> HTTP status; raises OSError (or an
# http.client.HTTPException) when there is no usable answer.
Transport = Callable[[str, bytes, dict[str, str], float], int]


def create(engine: Engine, secrets: SecretStore | None = None) -> None:
    """The tables; with `secrets`, also move any secret an older version kept in clear."""
    webhooks_metadata.create_all(engine)
    with engine.begin() as conn:  # the alert logs too: the dispatcher may start first
        alerts_metadata.create_all(conn)
        client_alerts_metadata.create_all(conn)
        webhook_alerts.create(conn)
    if secrets is None:
        return
    moved = 0
    with engine.begin() as conn:
        for row in conn.execute(select(webhook_subscribers.c.name, webhook_subscribers.c.secret)
                                .where(webhook_subscribers.c.secret != "")).all():
            secrets.put(row.name, row.secret)
            conn.execute(update(webhook_subscribers)
                         .where(webhook_subscribers.c.name == row.name).values(secret=""))
            moved += 1
    scrub = getattr(secrets, "scrub", None)
    if moved and scrub is not None:  # the overwritten clear values, out of the files too
        scrub([webhook_subscribers.name])


@dataclass(frozen=True)
class Subscriber:
    name: str
    url: str
    event_types: frozenset[str]  # empty: every event (and no alert)
    position: int

    def wants(self, event: Any) -> bool:
        return not self.event_types or event_type(event) in self.event_types

    @property
    def alert_kinds(self) -> frozenset[str]:
        """The alert kinds it asked for (crm.alert.<kind>.v1, crm.alert.*)."""
        return webhook_alerts.kinds_of(self.event_types)


def new_secret() -> str:
    """A signing secret: 32 random bytes, URL-safe base64 (43 characters)."""
    return token_urlsafe(32)


def _types(event_types: Iterable[str]) -> list[str]:
    given = set(event_types)
    alerts = {t for t in given if webhook_alerts.is_alert_type(t)}
    unknown = webhook_alerts.unknown_alert_types(alerts)
    if unknown:
        raise SubscriberError(f"unknown alert types: {unknown} (known: "
                              f"{[*webhook_alerts.ALERT_TYPES, webhook_alerts.ALL_ALERTS]})",
                              "event_types")
    try:
        names = sorted({type_name(t) if t.startswith("crm.") else t for t in given - alerts})
    except (CloudEventError, ValueError) as error:  # a version this code does not read
        raise SubscriberError(str(error), "event_types") from None
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown:
        raise SubscriberError(f"unknown event types: {unknown}", "event_types")
    return [*names, *sorted(alerts)]


def _check(name: str | None, url: str | None, secret: str | None) -> None:
    if name is not None and not re.fullmatch(NAME_PATTERN, name):
        raise SubscriberError("a name of letters, digits, '.', '_' or '-' (at most 100)",
                              "name")
    if url is not None and not re.fullmatch(r"https?://[^\s/?#]+[^\s]*", url):
        raise SubscriberError(f"webhook URL must be http(s): {url!r}", "url")
    if secret is not None and len(secret) < MIN_SECRET:
        raise SubscriberError(f"the webhook secret must have at least {MIN_SECRET} characters",
                              "secret")


def add_subscriber(engine: Engine, name: str, url: str, secret: str,
                   event_types: Iterable[str] = (), *, secrets: SecretStore, position: int = 0,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Subscriber:
    """Add a subscriber that gets events after store `position` (0: the whole history); for an
    existing name, update its URL, secret and types and keep its position (config in code can
    call this at every start). The secret goes to `secrets`, never to the table."""
    _check(name, url, secret)
    names = _types(event_types)
    create(engine, secrets)
    secrets.put(name, secret)
    before = next((s.alert_kinds for s in subscribers(engine) if s.name == name), frozenset())
    with engine.begin() as conn:
        upsert(conn, webhook_subscribers, {"name": name, "url": url, "secret": "",
                                           "event_types": orjson.dumps(names).decode(),
                                           "position": position, "created_at": clock()},
               ["name"], replace=False)
        conn.execute(update(webhook_subscribers).where(webhook_subscribers.c.name == name)
                     .values(url=url, secret="", event_types=orjson.dumps(names).decode()))
        webhook_alerts.follow(conn, name, webhook_alerts.kinds_of(names), before)
    return subscriber(engine, name)


def register(engine: Engine, name: str, url: str, *, secrets: SecretStore,
             event_types: Iterable[str] = (), position: int = 0, secret: str | None = None,
             clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> tuple[Subscriber, str]:
    """A new subscriber (an existing name: SubscriberError naming `name`); returns it and its
    secret, generated unless given."""
    _check(name, url, secret)
    create(engine, secrets)
    if any(s.name == name for s in subscribers(engine)):
        raise SubscriberExistsError(f"a webhook subscriber {name!r} exists already", "name")
    secret = secret or new_secret()
    return add_subscriber(engine, name, url, secret, event_types, secrets=secrets,
                          position=position, clock=clock), secret


def update_subscriber(engine: Engine, name: str, *, secrets: SecretStore,
                      url: str | None = None, event_types: Iterable[str] | None = None,
                      secret: str | None = None, position: int | None = None) -> Subscriber:
    """Change what is given; a new `position` re-sends (or skips) from there, like replay."""
    _check(None, url, secret)
    current = subscriber(engine, name)
    values: dict[str, Any] = {}
    if url is not None:
        values["url"] = url
    names = None if event_types is None else _types(event_types)
    if names is not None:
        values["event_types"] = orjson.dumps(names).decode()
    if secret is not None:
        secrets.put(name, secret)
    with engine.begin() as conn:
        if values:
            conn.execute(update(webhook_subscribers)
                         .where(webhook_subscribers.c.name == name).values(**values))
        if names is not None:
            webhook_alerts.follow(conn, name, webhook_alerts.kinds_of(names),
                                  current.alert_kinds)
    if position is not None and position != current.position:
        replay(engine, name, position + 1)
    return subscriber(engine, name)


def remove_subscriber(engine: Engine, name: str, *, secrets: SecretStore) -> None:
    """Forget a subscriber: its positions, status, parked deliveries and secret."""
    subscriber(engine, name)
    with engine.begin() as conn:
        webhook_alerts.forget(conn, name)
        conn.execute(delete(webhook_parked).where(webhook_parked.c.subscriber == name))
        conn.execute(delete(webhook_status).where(webhook_status.c.subscriber == name))
        conn.execute(delete(webhook_subscribers).where(webhook_subscribers.c.name == name))
    secrets.drop(name)


def subscriber(engine: Engine, name: str) -> Subscriber:
    found = next((s for s in subscribers(engine) if s.name == name), None)
    if found is None:
        raise UnknownSubscriberError(f"no webhook subscriber {name!r}")
    return found


def subscribers(engine: Engine) -> list[Subscriber]:
    with engine.connect() as conn:
        rows = conn.execute(select(webhook_subscribers).order_by(webhook_subscribers.c.name))
        return [Subscriber(r.name, r.url, frozenset(orjson.loads(r.event_types)), r.position)
                for r in rows]


def status(engine: Engine, name: str | None = None) -> list[dict[str, Any]]:
    """Each subscriber's settings, position, last delivery, failures in a row and parked count
    (never its secret)."""
    create(engine)
    s, st, p = webhook_subscribers, webhook_status, webhook_parked
    parked_count = (select(p.c.subscriber, func.count().label("parked"))
                    .where(p.c.status == "parked").group_by(p.c.subscriber).subquery())
    query = (select(s.c.name, s.c.url, s.c.event_types, s.c.position, s.c.created_at,
                    st.c.delivered_position, st.c.delivered_event_id, st.c.delivered_at,
                    st.c.failures, st.c.last_error, st.c.last_error_at, parked_count.c.parked)
             .outerjoin(st, st.c.subscriber == s.c.name)
             .outerjoin(parked_count, parked_count.c.subscriber == s.c.name)
             .order_by(s.c.name))
    if name is not None:
        query = query.where(s.c.name == name)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
        watermarks = webhook_alerts.watermarks(conn)
    return [{"name": r.name, "url": r.url, "event_types": orjson.loads(r.event_types),
             "position": r.position, "alert_position": watermarks.get(r.name),
             "created_at": r.created_at,
             "last_delivery": None if r.delivered_at is None else {
                 "position": r.delivered_position, "event_id": r.delivered_event_id,
                 "at": r.delivered_at},
             "failures": r.failures or 0, "last_error": r.last_error,
             "last_error_at": r.last_error_at, "parked": r.parked or 0} for r in rows]


def note_delivery(engine: Engine, name: str, *, position: int | None, event_id: str | None,
                  at: datetime, error: str | None = None) -> None:
    """Record an attempt's outcome in webhook_status (a success resets the failures); an
    alert's has no position."""
    with engine.begin() as conn:
        upsert(conn, webhook_status, {"subscriber": name, "failures": 0}, ["subscriber"],
               replace=False)
        st = webhook_status
        if error is None:
            conn.execute(update(st).where(st.c.subscriber == name).values(
                delivered_position=position, delivered_event_id=event_id, delivered_at=at,
                failures=0))
        else:
            conn.execute(update(st).where(st.c.subscriber == name).values(
                failures=st.c.failures + 1, last_error=error[:4000], last_error_at=at))


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


def deliver(sub: Subscriber, secret: str, body: bytes, event_id: str, *,
            transport: Transport, timeout: float, clock: Callable[[], datetime]) -> None:
    """One signed POST of `body`; DeliveryError unless the receiver answers 2xx."""
    timestamp = str(int(clock().timestamp()))
    headers = {"Content-Type": "application/cloudevents+json; charset=utf-8",
               "User-Agent": "crm-webhooks/1", "X-CRM-Event-Id": event_id,
               "X-CRM-Timestamp": timestamp, "X-CRM-Signature": sign(secret, timestamp, body)}
    try:
        code = transport(sub.url, body, headers, timeout)
    # refused, reset, timed out, garbled; or a URL urllib cannot send to (ValueError)
    except (OSError, http.client.HTTPException, ValueError) as error:
        DELIVERIES.labels(sub.name, "failed").inc()
        raise DeliveryError(f"{type(error).__name__}: {error}") from error
    if not 200 <= code < 300:
        DELIVERIES.labels(sub.name, "failed").inc()
        raise DeliveryError(f"HTTP {code}")
    DELIVERIES.labels(sub.name, "delivered").inc()


def ping(engine: Engine, name: str, *, secrets: SecretStore, transport: Transport | None = None,
         timeout: float = 10.0,
         clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> dict[str, Any]:
    """Send a signed test delivery (CloudEvent type `crm.webhook.ping.v1`) now; the outcome."""
    sub = subscriber(engine, name)
    event_id, now = str(uuid4()), clock()
    body = orjson.dumps({"specversion": "1.0", "id": event_id, "source": "crm",
                         "type": "crm.webhook.ping.v1", "subject": name,
                         "time": now.isoformat(), "datacontenttype": "application/json",
                         "data": {"subscriber": name}})
    try:
        deliver(sub, _secret_of(secrets, name), body, event_id,
                transport=transport or urllib_post, timeout=timeout, clock=clock)
    except DeliveryError as error:
        return {"delivered": False, "event_id": event_id, "error": str(error)}
    return {"delivered": True, "event_id": event_id, "error": None}


def resend_parked(engine: Engine, name: str, *, secrets: SecretStore,
                  transport: Transport | None = None, timeout: float = 10.0,
                  clock: Callable[[], datetime] = lambda: datetime.now(UTC)
                  ) -> dict[str, Any]:
    """Send every parked delivery of `name` again now, oldest first, as it was (same body and
    event id, signed anew). Delivered ones are marked `resent`; the others stay parked with
    the new error. The subscriber's position does not move."""
    sub = subscriber(engine, name)
    secret = _secret_of(secrets, name)
    resent, failed = [], {}
    for row in parked(engine, name):
        try:
            deliver(sub, secret, row["body"], row["event_id"],
                    transport=transport or urllib_post, timeout=timeout, clock=clock)
        except DeliveryError as error:
            failed[row["position"]] = str(error)
            with engine.begin() as conn:
                conn.execute(update(webhook_parked).where(
                    webhook_parked.c.subscriber == name,
                    webhook_parked.c.position == row["position"]).values(
                    error=str(error)[:4000], attempts=webhook_parked.c.attempts + 1))
            continue
        resent.append(row["position"])
        with engine.begin() as conn:
            conn.execute(update(webhook_parked).where(
                webhook_parked.c.subscriber == name,
                webhook_parked.c.position == row["position"]).values(status="resent"))
    return {"resent": resent, "still_failing": failed}


def _secret_of(secrets: SecretStore, name: str) -> str:
    secret = secrets.get(name)
    if secret is None:
        raise UnknownSubscriberError(f"webhook subscriber {name!r} has no secret")
    return secret


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


@dataclass
class _FailingAlert:
    """A subscriber whose next alert keeps failing: when to try again."""

    alert_id: str
    attempts: int
    retry_at: float  # time.monotonic()


class Dispatcher:
    def __init__(self, engine: Engine, reader: Reader, *, secrets: SecretStore,
                 transport: Transport = urllib_post,
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
        self._failing_alerts: dict[str, _FailingAlert] = {}
        self._wake = threading.Event()
        self.secrets = secrets
        create(engine, secrets)

    def notify(self, *_saved: Any) -> None:
        """Wake the loop now (hooked to the application's saves when in the same process)."""
        self._wake.set()

    def attach(self, hub: AlertHub) -> None:
        """Wake the loop when the scheduler of this process logs an alert (else the loop's
        poll finds it: another process's scheduler)."""
        hub.add_listener(self.notify)

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
        """One page of events and one of alerts per subscriber; returns the events and alerts
        passed (delivered, parked, not wanted)."""
        return sum(self._advance(s) + self._advance_alerts(s) for s in subscribers(self.engine))

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
                    self._post(sub, body, event, pos)
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

    def _post(self, sub: Subscriber, body: bytes, event: Any, position: int) -> None:
        self._send(sub, body, str(event_id_of(event.originator_id, event.originator_version)),
                   position)

    def _send(self, sub: Subscriber, body: bytes, delivery_id: str,
              position: int | None) -> None:
        """Deliver one body (an event at `position`, or an alert: no position) and note it."""
        try:
            deliver(sub, _secret_of(self.secrets, sub.name), body, delivery_id,
                    transport=self.transport, timeout=self.timeout, clock=self.clock)
        except (DeliveryError, UnknownSubscriberError) as error:
            note_delivery(self.engine, sub.name, position=position, event_id=delivery_id,
                          at=self.clock(), error=str(error))
            raise DeliveryError(str(error)) from error
        note_delivery(self.engine, sub.name, position=position, event_id=delivery_id,
                      at=self.clock())

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

    def _advance_alerts(self, sub: Subscriber) -> int:
        """Deliver the subscriber's pending alerts in the order logged; each is marked passed
        (delivered, or parked after the last attempt) in the transaction that records it."""
        kinds = sub.alert_kinds
        if not kinds:
            return 0
        failing = self._failing_alerts.get(sub.name)
        if failing is not None and time.monotonic() < failing.retry_at:
            return 0  # backing off; the other subscribers go on
        with self.engine.begin() as conn:
            found = webhook_alerts.pending(conn, sub.name, kinds, self.page_size)
        passed = 0
        for logged in found:
            alert_id = str(logged.alert.id)
            body = orjson.dumps(to_cloudevent(logged.alert))  # as on crm.alerts.v1
            try:
                self._post_alert(sub, body, alert_id)
            except DeliveryError as error:
                if not self._park_alert_if_exhausted(sub, logged, body, str(error)):
                    break  # try this alert again after the back-off
            else:
                self._failing_alerts.pop(sub.name, None)
                with self.engine.begin() as conn:
                    webhook_alerts.mark(conn, sub.name, logged, "delivered", self.clock())
            passed += 1
        if passed:
            with self.engine.begin() as conn:
                webhook_alerts.prune(conn, sub.name)
        return passed

    def _post_alert(self, sub: Subscriber, body: bytes, alert_id: str) -> None:
        self._send(sub, body, alert_id, None)

    def _park_alert_if_exhausted(self, sub: Subscriber, logged: Logged, body: bytes,
                                 error: str) -> bool:
        """Count a failed attempt; True if the alert was parked (the subscriber moves on)."""
        alert_id = str(logged.alert.id)
        failing = self._failing_alerts.get(sub.name)
        attempts = 1 if failing is None or failing.alert_id != alert_id else failing.attempts + 1
        if attempts < self.retry.attempts:
            delays = list(self.retry.delays())
            self._failing_alerts[sub.name] = _FailingAlert(
                alert_id, attempts, time.monotonic() + delays[attempts - 1])
            log.info("webhook %s: alert %s failed (%s), attempt %d", sub.name, alert_id,
                     error, attempts)
            return False
        self._failing_alerts.pop(sub.name, None)
        parked_at = self.clock()
        with self.engine.begin() as conn:
            # Alerts have no store position: parked ones are numbered -1, -2... per subscriber.
            lowest = conn.execute(select(func.min(webhook_parked.c.position)).where(
                webhook_parked.c.subscriber == sub.name)).scalar()
            upsert(conn, webhook_parked, {
                "subscriber": sub.name, "position": min(lowest or 0, 0) - 1,
                "event_id": alert_id, "type": alert_type(logged.alert.kind),
                "error": error[:4000], "attempts": attempts, "status": "parked", "body": body,
                "parked_at": parked_at}, ["subscriber", "position"])
            webhook_alerts.mark(conn, sub.name, logged, "parked", parked_at)
        DELIVERIES.labels(sub.name, "parked").inc()
        log.error("webhook %s: parked the alert %s after %d attempts: %s", sub.name, alert_id,
                  attempts, error)
        return True

    def _save(self, name: str, old: int, new: int) -> bool:
        """Move the position from `old` to `new`; False if a replay moved it meanwhile."""
        with self.engine.begin() as conn:
            return bool(conn.execute(update(webhook_subscribers).where(
                webhook_subscribers.c.name == name, webhook_subscribers.c.position == old)
                .values(position=new)).rowcount)
