"""The ingest consumer (`crm ingest`): commands from other systems on crm.ingest.v1, executed
exactly once in effect, rejects parked on crm.ingest.v1.rejects with the reason (docs/ingest.md).

Message (value, UTF-8 JSON; the Kafka key is the idempotency key and is required):
    {"command": "log_contact", "data": {...the same fields as the API's command...},
     "actor": "telephony"}
`command` is a name of commands.registry.COMMANDS that an operator may run (admin-only
commands such as erase_client are refused); `data` is validated by the same pydantic model as
the API; `actor` is the sending system's id, recorded as the events' actor with role operator.

Each message runs as `app.execute([command], Actor(actor, "operator"), idempotency_key=key)`:
the idempotency record is saved in the same atomic write as the events, so a redelivered message
(a crash before the offset commit, a rebalance) gets the first answer and writes nothing.
Offsets are committed only after every record of the poll was written or rejected. A reject
(malformed, unknown or refused command, invalid data, a domain rule, the key reused with another
body) goes to the rejects topic with the reason and the original message, is counted, and the
partition goes on. Database trouble is not a reject: it is retried until the database is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from eventsourcing.persistence import InterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from commands.application import Actor, CrmApplication, Receipt
from commands.base import Command
from commands.errors import (
    CommandError,
    IdempotencyConflictError,
    NotFoundError,
    VersionConflictError,
)
from commands.registry import COMMANDS
from consumers.bus import KafkaPort, PollLoop, close_quietly
from consumers.dlq import RetryPolicy, backoff_sleep, is_transient
from domain.errors import DomainError

log = logging.getLogger(__name__)

INGEST_TOPIC = "crm.ingest.v1"
REJECT_KIND = "crm.ingest.reject.v1"
# The API lets only admins run these (api/routers/writes.py); another system acts as an operator.
ADMIN_ONLY = frozenset({"erase_client", "set_payment_plan", "register_specialist",
                        "define_survey_template", "set_calendar", "set_sla_target"})
OPERATOR_COMMANDS = frozenset(COMMANDS) - ADMIN_ONLY
MAX_KEY_LENGTH = 200

EXECUTED = Counter("crm_ingest_commands_total", "Ingested commands executed (replayed: a "
                   "redelivery answered from the idempotency record)", ["command", "outcome"])
REJECTS = Counter("crm_ingest_rejects_total", "Ingest messages rejected and parked", ["reason"])


@dataclass(frozen=True)
class IngestTopics:
    """The command topic and its rejects; one partition keeps every sender's order (a contact
    logged for a client registered just before must not overtake it)."""

    commands: str = INGEST_TOPIC
    rejects: str = INGEST_TOPIC + ".rejects"
    partitions: int = 1

    @classmethod
    def named(cls, base: str, partitions: int = 1) -> IngestTopics:
        return cls(base, base + ".rejects", partitions)

    def layout(self) -> dict[str, int]:
        return {self.commands: self.partitions, self.rejects: 1}


class IngestMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    command: str = Field(min_length=1, max_length=100)
    data: dict[str, Any]
    actor: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:@/-]{0,99}$")


class Rejected(Exception):
    """A message that can never succeed as sent; `reason` is a stable word for dashboards."""

    def __init__(self, reason: str, message: str, errors: list[dict[str, Any]] | None = None,
                 command: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.errors = errors or []
        self.command = command


def field_errors(error: ValidationError, prefix: str = "") -> list[dict[str, Any]]:
    return [{"field": prefix + ".".join(str(p) for p in item.get("loc", ())),
             "message": item.get("msg", ""), "type": item.get("type", "")}
            for item in error.errors()]


def parse(key: bytes | None, value: bytes | None,
          allowed: frozenset[str] = OPERATOR_COMMANDS) -> tuple[Command, Actor, str]:
    """The command, the acting system and the idempotency key of a message, or Rejected."""
    if not key:
        raise Rejected("no_key", "the message has no key: the key is its idempotency key")
    try:
        idempotency_key = key.decode()
    except UnicodeDecodeError:
        raise Rejected("no_key", "the key is not UTF-8 text") from None
    if len(idempotency_key) > MAX_KEY_LENGTH:
        raise Rejected("no_key", f"the key is longer than {MAX_KEY_LENGTH} characters")
    try:
        message = IngestMessage.model_validate_json(value or b"")
    except ValidationError as error:
        raise Rejected("malformed", "the message is not {command, data, actor} JSON",
                       field_errors(error)) from None
    cls = COMMANDS.get(message.command)
    if cls is None:
        raise Rejected("unknown_command", f"unknown command {message.command!r}",
                       command=message.command)
    if message.command not in allowed:
        raise Rejected("not_allowed", f"{message.command} is not accepted on ingest "
                       "(it needs an administrator)", command=message.command)
    try:
        command = cls.model_validate(message.data)
    except ValidationError as error:
        raise Rejected("validation", f"the data of {message.command} is not valid",
                       field_errors(error, "data."), message.command) from None
    return command, Actor(message.actor, "operator"), idempotency_key


def is_database_trouble(error: BaseException) -> bool:
    """Trouble that says nothing about the message: retried, never rejected."""
    return (isinstance(error, (StoreOperationalError, InterfaceError, ConnectionError))
            or is_transient(error))


@dataclass
class IngestStats:
    written: int = 0
    replayed: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


class Ingest(PollLoop):
    label = "ingest"

    def __init__(self, app: CrmApplication, port: KafkaPort, topics: IngestTopics | None = None,
                 *, group_id: str = "crm-ingest", client_id: str = "crm-ingest",
                 allowed: frozenset[str] = OPERATOR_COMMANDS, retry: RetryPolicy | None = None,
                 poll_timeout_ms: int = 200, clock: Callable[[], datetime] | None = None,
                 after_message: Callable[[Any], None] | None = None) -> None:
        self.app = app
        self.port = port
        self.topics = topics or IngestTopics()
        self.group_id = group_id
        self.client_id = client_id
        self.allowed = allowed
        self.retry = retry or RetryPolicy()
        self.poll_timeout_ms = poll_timeout_ms
        self.clock = clock or (lambda: datetime.now(UTC))
        self.after_message = after_message  # a test hook: after a record's write, before commit
        self.stats = IngestStats()
        self.last_error: str | None = None
        self.consumer: Any = None
        self._producer: Any = None
        self._pending: list[Any] = []  # rejects sent, not yet acknowledged
        self._stop: threading.Event | None = None
        self._topics_ready = False

    def poll_once(self) -> int:
        """One poll: execute or reject each record in order, then commit the offsets."""
        if not self._topics_ready:
            self.port.ensure_topics(self.topics.layout())
            self._topics_ready = True
        if self.consumer is None:
            self.consumer = self.port.consumer(self.group_id, self.client_id,
                                               [self.topics.commands])
        batches = self.consumer.poll(timeout_ms=self.poll_timeout_ms)
        handled = 0
        for records in batches.values():
            for record in records:
                self.handle(record)
                handled += 1
        if handled:
            self._flush_rejects()
            # Only now: everything polled is written or parked, so no message is ever skipped.
            self.consumer.commit()
        return handled

    def handle(self, record: Any) -> Receipt | None:
        """Execute one message (or reject it); None when rejected."""
        command_name: str | None = None
        try:
            command, actor, key = parse(record.key, record.value, self.allowed)
            command_name = command.NAME
            receipt = self._execute(command, actor, key)
        except Rejected as rejected:
            self._reject(record, rejected)
            return None
        outcome = "replayed" if receipt.replayed else "written"
        EXECUTED.labels(command_name, outcome).inc()
        if receipt.replayed:
            self.stats.replayed += 1
        else:
            self.stats.written += 1
        if self.after_message is not None:
            self.after_message(record)
        return receipt

    def _execute(self, command: Command, actor: Actor, key: str) -> Receipt:
        failures = 0
        delays = list(self.retry.delays())
        delay = 0.2
        while True:
            try:
                return self.app.execute([command], actor, idempotency_key=key)
            except IdempotencyConflictError as error:
                raise Rejected("key_reused", error.message, command=command.NAME) from None
            except NotFoundError as error:
                raise Rejected("not_found", error.message, _named(error), command.NAME) from None
            except VersionConflictError as error:
                # Lost races with other writers: worth a few retries, not an endless loop.
                if failures >= len(delays):
                    raise Rejected("conflict", error.message, command=command.NAME) from None
            except (DomainError, CommandError) as error:
                raise Rejected("domain", error.message, _named(error), command.NAME) from None
            except Exception as error:
                if is_database_trouble(error):
                    if self._stop is not None and self._stop.is_set():
                        raise
                    log.warning("store unavailable (%s); retrying the message", error)
                    backoff_sleep(delay, self._stop)
                    delay = min(delay * 2, 5.0)
                    continue
                if failures >= len(delays):  # a bug: park it visibly rather than block all
                    log.exception("ingest of %s failed", command.NAME)
                    raise Rejected("internal", f"{type(error).__name__}: {error}",
                                   command=command.NAME) from None
            backoff_sleep(delays[failures], self._stop)
            failures += 1

    def _reject(self, record: Any, rejected: Rejected) -> None:
        try:
            original: Any = orjson.loads(record.value) if record.value is not None else None
            raw = None
        except orjson.JSONDecodeError:
            original, raw = None, record.value.decode(errors="replace")
        value = {
            "kind": REJECT_KIND, "reason": rejected.reason, "message": rejected.message,
            "errors": rejected.errors, "command": rejected.command,
            "key": None if record.key is None else record.key.decode(errors="replace"),
            "source": {"topic": record.topic, "partition": record.partition,
                       "offset": record.offset},
            "original": original, "rejected_at": self.clock().isoformat()}
        if raw is not None:
            value["original_text"] = raw
        if self._producer is None:
            self._producer = self.port.producer(self.client_id + "-rejects")
        self._pending.append(self._producer.send(self.topics.rejects, key=record.key,
                                                 value=orjson.dumps(value)))
        REJECTS.labels(rejected.reason).inc()
        self.stats.rejected[rejected.reason] = self.stats.rejected.get(rejected.reason, 0) + 1
        log.warning("rejected ingest message %s/%d/%d (%s): %s", record.topic, record.partition,
                    record.offset, rejected.reason, rejected.message)

    def _flush_rejects(self) -> None:
        """Wait for the broker to acknowledge every reject; a failed one raises, so the offsets
        stay uncommitted and the message comes again."""
        pending, self._pending = self._pending, []
        if pending:
            self._producer.flush(timeout=15)
        for future in pending:
            future.get(timeout=15)

    def _discard_clients(self) -> None:
        consumer, self.consumer = self.consumer, None
        producer, self._producer = self._producer, None
        self._pending = []
        close_quietly(consumer)
        close_quietly(producer, timeout=1)


def _named(error: DomainError | CommandError) -> list[dict[str, Any]]:
    return [{"field": f"data.{error.field}", "message": error.message}] if error.field else []
