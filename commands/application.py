"""The CRM application: runs commands through their handlers and saves them atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, Mapper

from commands import registry  # noqa: F401  (imports every handler module)
from commands.base import HANDLERS, Command, Outcome, UnitOfWork
from commands.errors import (
    CommandError,
    IdempotencyConflictError,
    NotFoundError,
    VersionConflictError,
)
from commands.idempotency import IdempotencyRecord, fingerprint, record_id
from domain.errors import DomainError, InvalidValueError
from domain.values import Meta

# Business time may run a little ahead of the server clock (clients' clocks drift); more is a typo.
MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Actor:
    user: str
    role: str


@dataclass(frozen=True)
class Written:
    """One command's answer: the aggregate acted on, its version and the event's position."""

    id: UUID
    version: int
    position: int
    links: dict[str, UUID] = field(default_factory=dict)


@dataclass(frozen=True)
class Receipt:
    results: list[Written]
    replayed: bool = False

    @property
    def position(self) -> int:
        return max(r.position for r in self.results)


class BatchItemError(Exception):
    """A command of a batch failed; `index` says which, `error` why. Nothing was written."""

    def __init__(self, index: int, error: DomainError | CommandError) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class CrmApplication(Application[UUID]):
    """The service layer: one handler per command, one atomic save per request (single or batch)."""

    name = "crm"

    def __init__(self, env: dict[str, str] | None = None, *,
                 clock: Callable[[], datetime],
                 new_id: Callable[[], UUID] = uuid4,
                 mapper_wrapper: Callable[[Mapper[UUID]], Mapper[UUID]] | None = None) -> None:
        # Set before the library builds its mapper (in super().__init__).
        self._mapper_wrapper = mapper_wrapper
        super().__init__(env)
        self._clock = clock
        self._new_id = new_id
        # Set by the composition root: the store-specific (stream, version) -> position lookup.
        self.position_of: Callable[[UUID, int], int | None] = lambda _s, _v: None
        # Called after every save with the last position and the events saved.
        self.saved_listeners: list[Callable[[int, list[Any]], None]] = []

    def construct_mapper(self) -> Mapper[UUID]:
        mapper = super().construct_mapper()
        return self._mapper_wrapper(mapper) if self._mapper_wrapper else mapper

    def _notify(self, recordings: list[Any]) -> None:
        super()._notify(recordings)
        if recordings:
            last = max(r.notification.id for r in recordings)
            events = [r.domain_event for r in recordings]
            for listener in self.saved_listeners:
                listener(last, events)

    def execute(self, commands: Sequence[Command], actor: Actor, *,
                idempotency_key: str | None = None,
                expected_versions: Sequence[int | None] | None = None) -> Receipt:
        """Run the commands as one all-or-nothing write; a keyed retry gets the first answer."""
        expected = list(expected_versions or [None] * len(commands))
        request_hash = fingerprint([[c.NAME, c.model_dump(mode="json")] for c in commands]
                                   + [expected])
        if idempotency_key is not None:
            earlier = self._earlier_answer(actor, idempotency_key, request_hash)
            if earlier is not None:
                return earlier
        for _attempt in range(MAX_ATTEMPTS):
            uow = UnitOfWork(self.repository, self._new_id)
            outcomes = self._run(commands, expected, uow, actor)
            pending: list[Any] = self._in_causal_order(outcomes, uow.pending())
            results = [self._summary(o) for o in outcomes]
            if idempotency_key is not None:
                pending.append(IdempotencyRecord.record(
                    actor=actor.user, key=idempotency_key, request_hash=request_hash,
                    results=results))
            try:
                recordings = self.save(*pending)
            except IntegrityError:
                # Someone else wrote first: the same key (answer as they did) or the same aggregate.
                if idempotency_key is not None:
                    earlier = self._earlier_answer(actor, idempotency_key, request_hash)
                    if earlier is not None:
                        return earlier
                if any(v is not None for v in expected):
                    raise VersionConflictError("the aggregate changed meanwhile") from None
                continue
            positions = {(r.domain_event.originator_id, r.domain_event.originator_version):
                         r.notification.id for r in recordings}
            return Receipt([self._written(s, positions.get) for s in results])
        raise VersionConflictError("too many concurrent writes to the same aggregate; retry")

    def _run(self, commands: Sequence[Command], expected: list[int | None], uow: UnitOfWork,
             actor: Actor) -> list[Outcome]:
        now = self._clock()
        outcomes = []
        for index, command in enumerate(commands):
            try:
                occurred_at = command.occurred_at or now
                if occurred_at > now + MAX_CLOCK_SKEW:
                    raise InvalidValueError("lies in the future", field="occurred_at")
                uow.expected_version = expected[index]
                _cls, handler = HANDLERS[command.NAME]
                outcome = handler(command, uow, Meta(occurred_at, now, actor.user, actor.role))
            except (DomainError, CommandError) as error:
                if isinstance(error, NotFoundError) and error.field is None:
                    # The command's own target: name the field holding its id, so the API can
                    # answer 404 for an id in the path and name items.N.data.<field> in a batch.
                    error.field = next((k for k, v in command if v == error.id), None)
                if len(commands) == 1:
                    raise
                raise BatchItemError(index, error) from error
            outcome.version = outcome.target.version
            outcomes.append(outcome)
        return outcomes

    @staticmethod
    def _in_causal_order(outcomes: list[Outcome], pending: list[Any]) -> list[Any]:
        """Each command's own aggregate first, then what it triggered (a complaint before the
        situation it opens), so the store's order reads as cause and effect."""
        ordered: dict[Any, Any] = {}
        for outcome in outcomes:
            for agg in (outcome.target, *outcome.links.values()):
                if agg.pending_events:
                    ordered.setdefault(agg.id, agg)
        for agg in pending:
            ordered.setdefault(agg.id, agg)
        return list(ordered.values())

    @staticmethod
    def _summary(outcome: Outcome) -> dict[str, Any]:
        links = {name: [str(a.id), a.version] for name, a in outcome.links.items()}
        links.update({name: [str(i), None] for name, i in outcome.ids.items()})
        return {"id": str(outcome.target.id), "version": outcome.version, "links": links}

    def _written(self, summary: dict[str, Any],
                 position: Callable[[tuple[UUID, int]], int | None]) -> Written:
        target = (UUID(summary["id"]), summary["version"])
        linked = [(UUID(i), v) for i, v in summary["links"].values() if v is not None]
        found = [p for p in (position(k) for k in [target, *linked]) if p is not None]
        return Written(id=target[0], version=target[1], position=max(found, default=0),
                       links={name: UUID(i) for name, (i, _v) in summary["links"].items()})

    def _earlier_answer(self, actor: Actor, key: str, request_hash: str) -> Receipt | None:
        try:
            record: Any = self.repository.get(record_id(actor.user, key))
        except AggregateNotFoundError:
            return None
        assert isinstance(record, IdempotencyRecord)
        if record.request_hash != request_hash:
            raise IdempotencyConflictError(
                "this Idempotency-Key was used before with a different request")
        lookup = lambda k: self.position_of(*k)  # noqa: E731
        return Receipt([self._written(s, lookup) for s in record.results], replayed=True)
