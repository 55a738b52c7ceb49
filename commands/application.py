"""The CRM application: runs commands through their handlers and saves them atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, Mapper

from commands import registry  # noqa: F401  (imports every handler module)
from commands.base import (
    HANDLERS,
    AggregateCache,
    Command,
    Outcome,
    StaleReadError,
    UnitOfWork,
)
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
# Aggregates kept in memory between requests (0: none). A client with its contacts' lists is a
# few kB, so the default bounds the cache to some tens of MB.
AGGREGATE_CACHE_SIZE = 20_000


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
                 mapper_wrapper: Callable[[Mapper[UUID]], Mapper[UUID]] | None = None,
                 cache_size: int = AGGREGATE_CACHE_SIZE) -> None:
        # Set before the library builds its mapper (in super().__init__).
        self._mapper_wrapper = mapper_wrapper
        super().__init__(env)
        self._clock = clock
        self._new_id = new_id
        # Only a store that checks cached reads inside its write transaction (infra.chain's
        # recorders) can serve a cache safely next to other writers.
        checks = getattr(self.recorder, "checks_cached_reads", False)
        self.cache = AggregateCache(cache_size) if cache_size > 0 and checks else None
        # Set by the composition root: the store-specific (stream, version) -> position lookup.
        self.position_of: Callable[[UUID, int], int | None] = lambda _s, _v: None
        # Called with a write's events before they are stored (e.g. to fetch their keys at once).
        self.before_save: Callable[[list[Any]], None] | None = None
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
        request_hash = ""
        if idempotency_key is not None:
            request_hash = fingerprint([[c.NAME, c.model_dump(mode="json")] for c in commands]
                                       + [expected])
            earlier = self._earlier_answer(actor, idempotency_key, request_hash)
            if earlier is not None:
                return earlier
        # The first attempt runs on cached aggregates; one that fails for any reason that stale
        # state could explain is run again on fresh loads, which decide the answer.
        optimistic = self.cache is not None
        attempts = 0
        while attempts < MAX_ATTEMPTS:
            uow = UnitOfWork(self.repository, self._new_id, self.cache if optimistic else None)
            try:
                outcomes = self._run(commands, expected, uow, actor)
            except (DomainError, CommandError, BatchItemError):
                if optimistic and uow.from_cache:
                    optimistic = False
                    continue
                raise
            pending: list[Any] = self._in_causal_order(outcomes, uow.pending())
            if optimistic and uow.from_cache and not pending:
                # Nothing to write, so no write transaction checks what was read: decide on
                # fresh loads instead.
                optimistic = False
                continue
            # Answers as ids and versions (positions come from the save): kept with the key.
            answers = [(o.target.id, o.version,
                        {**{n: (a.id, a.version) for n, a in o.links.items()},
                         **{n: (i, None) for n, i in o.ids.items()}}) for o in outcomes]
            if idempotency_key is not None:
                pending.append(IdempotencyRecord.record(
                    actor=actor.user, key=idempotency_key, request_hash=request_hash,
                    results=[self._summary(*a) for a in answers]))
            try:
                recordings = self._save_aggregates(pending, crm_cached_reads=uow.cached_reads())
            except StaleReadError:
                optimistic = False
                continue
            except IntegrityError:
                # Someone else wrote first: the same key (answer as they did) or the same aggregate.
                if idempotency_key is not None:
                    earlier = self._earlier_answer(actor, idempotency_key, request_hash)
                    if earlier is not None:
                        return earlier
                if optimistic:  # perhaps only our cache was behind, or a given id is taken
                    optimistic = False
                    continue
                if any(v is not None for v in expected):
                    raise VersionConflictError("the aggregate changed meanwhile") from None
                attempts += 1
                continue
            self._remember(uow, recordings)
            positions = {(r.domain_event.originator_id, r.domain_event.originator_version):
                         r.notification.id for r in recordings}
            return Receipt([self._written(*a, positions.get) for a in answers])
        raise VersionConflictError("too many concurrent writes to the same aggregate; retry")

    def _save_aggregates(self, aggregates: list[Any], **kwargs: Any) -> list[Any]:
        """`Application.save` for aggregates only, without its runtime Protocol checks on each
        object (an isinstance against a typing Protocol costs tens of microseconds on 3.11):
        every object here is an aggregate, so the checks' answer is known."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for agg in aggregates:
            processing.events.extend(agg.collect_events())
            processing.aggregates[agg.id] = agg
        processing.saved_kwargs.update(kwargs)
        if self.before_save is not None:
            self.before_save(processing.events)
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)
        return recordings

    def _remember(self, uow: UnitOfWork, recordings: list[Any]) -> None:
        """Keep the request's aggregates, now as committed, for the next requests."""
        if self.cache is None:
            return
        self.cache.put(uow.loaded())
        for r in recordings:
            if type(r.domain_event).__name__ == "ClientErased":
                self.cache.forget_client(r.domain_event.client_id)

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
                uow.touched.clear()
                _cls, handler = HANDLERS[command.NAME]
                outcome = handler(command, uow, Meta(occurred_at, now, actor.user, actor.role))
                uow.check_order(occurred_at)
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
    def _summary(id: UUID, version: int,
                 links: dict[str, tuple[UUID, int | None]]) -> dict[str, Any]:
        return {"id": str(id), "version": version,
                "links": {name: [str(i), v] for name, (i, v) in links.items()}}

    @staticmethod
    def _written(id: UUID, version: int, links: dict[str, tuple[UUID, int | None]],
                 position: Callable[[tuple[UUID, int]], int | None]) -> Written:
        keys = [(id, version), *((i, v) for i, v in links.values() if v is not None)]
        found = [p for p in map(position, keys) if p is not None]
        return Written(id=id, version=version, position=max(found, default=0),
                       links={name: i for name, (i, _v) in links.items()})

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
        return Receipt([self._written(
            UUID(s["id"]), s["version"],
            {name: (UUID(i), v) for name, (i, v) in s["links"].items()}, lookup)
            for s in record.results], replayed=True)
