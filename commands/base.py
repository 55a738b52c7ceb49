"""Command models' base, the handler registry and the unit of work one or many commands share."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, ClassVar, TypeVar, get_args
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from commands.errors import NotFoundError, VersionConflictError
from commands.fields import RANGE, Instant, storable
from domain.base import CrmAggregate
from domain.client import Client
from domain.errors import InvalidTransitionError
from domain.values import Meta

Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
NoteText = Annotated[str, Field(max_length=4000)]


class Command(BaseModel):
    """A request to change the system. `occurred_at` is business time (defaults to now).
    No text anywhere in it may contain the NUL character (U+0000)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    NAME: ClassVar[str]
    occurred_at: Instant | None = Field(
        default=None, description="When it happened (RFC 3339 with offset, "
                                  f"{RANGE}); default now, at most 5 minutes ahead. Never "
                                  "before the start of a record it changes or names (a work "
                                  "order closed before it was opened is refused); it may "
                                  "precede the client's registration.")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        return storable(value)

    @field_validator("*", mode="before")
    @classmethod
    def _numbers_are_not_booleans(cls, value: Any, info: ValidationInfo) -> Any:
        return not_a_boolean(cls, value, info)


def not_a_boolean(cls: type[BaseModel], value: Any, info: ValidationInfo) -> Any:
    """JSON true/false is no number (the schema says integer or number), though pydantic
    would read it as 1/0. A `mode="before"` validator of every field (API bodies use it too)."""
    if isinstance(value, bool) and info.field_name is not None \
            and not admits_bool(cls.model_fields[info.field_name].annotation):
        raise ValueError("a number, not true or false")
    return value


def admits_bool(annotation: Any) -> bool:
    """Whether a field's type takes a JSON boolean as such (bool, Any, or a union with one)."""
    if annotation is bool or annotation is Any:
        return True
    return any(admits_bool(arg) for arg in get_args(annotation))


@dataclass
class Outcome:
    """What a handler did: the aggregate it acted on and others it touched (e.g. a situation)."""

    target: CrmAggregate
    links: dict[str, CrmAggregate] = field(default_factory=dict)
    ids: dict[str, UUID] = field(default_factory=dict)  # ids of new entities inside the target
    version: int = 0  # of the target after this command (filled by the unit of work)


C = TypeVar("C", bound=Command)
Handler = Callable[[Any, "UnitOfWork", Meta], Outcome]
HANDLERS: dict[str, tuple[type[Command], Handler]] = {}
A = TypeVar("A", bound=CrmAggregate)


def handles(command_class: type[C]) -> Callable[[Callable[[C, UnitOfWork, Meta], Outcome]],
                                                Callable[[C, UnitOfWork, Meta], Outcome]]:
    """Register the one handler of a command class."""

    def register(func: Callable[[C, UnitOfWork, Meta], Outcome]) -> Callable[
            [C, UnitOfWork, Meta], Outcome]:
        if command_class.NAME in HANDLERS:
            raise RuntimeError(f"two handlers for {command_class.NAME}")
        HANDLERS[command_class.NAME] = (command_class, func)
        return func

    return register


def _project(aggregate: Any, events: Iterable[Any]) -> Any:
    """The library's projector without its per-event runtime Protocol check (an isinstance
    against a typing Protocol, tens of microseconds on 3.11): every stored event of ours is an
    aggregate event with `mutate`."""
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


class StaleReadError(Exception):
    """Raised inside the store's write transaction (which then rolls back): an aggregate a command
    took from the cache and only read has moved on in the store since."""

    def __init__(self, ids: Iterable[UUID]) -> None:
        self.ids = list(ids)
        super().__init__(f"{len(self.ids)} cached aggregate(s) changed in the store meanwhile")


class AggregateCache:
    """Aggregates as this process last saved or loaded them, most recently used kept.

    A unit of work *takes* an aggregate (removes it), so a command's changes never reach the cache
    unless its save committed: entries are never ahead of the store. They may fall behind when
    another process writes; the save catches that (a written aggregate's next version collides,
    a read one is checked in the write transaction) and the request runs again on fresh loads."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[UUID, CrmAggregate] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, id: UUID) -> CrmAggregate | None:
        with self._lock:
            return self._items.pop(id, None)

    def __contains__(self, id: object) -> bool:
        with self._lock:
            return id in self._items

    def put(self, aggregates: Iterable[CrmAggregate]) -> None:
        """Aggregates whose state is committed (none may hold pending events)."""
        with self._lock:
            for agg in aggregates:
                held = self._items.get(agg.id)
                if held is None or held.version <= agg.version:
                    self._items[agg.id] = agg
                    self._items.move_to_end(agg.id)
            while len(self._items) > self.maxsize:
                self._items.popitem(last=False)

    def forget_client(self, client_id: UUID) -> None:
        """Drop every aggregate of an erased client (their personal data stays out of memory)."""
        with self._lock:
            for id in [i for i, a in self._items.items() if a.client_id == client_id]:
                del self._items[id]

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class UnitOfWork:
    """Aggregates loaded and created by the commands of one request: saved together, or not.

    With a cache (the first, optimistic attempt of a request) aggregates come from it when held
    there, and a caller-chosen id for a new aggregate is not looked up: the store's unique
    (id, version) rejects a used one at save, and the request is run again without the cache,
    where the look-up names the error."""

    def __init__(self, repository: Repository[UUID], new_id: Callable[[], UUID],
                 cache: AggregateCache | None = None) -> None:
        self._repository = repository
        self._new_id = new_id
        self._cache = cache
        self._loaded: dict[UUID, CrmAggregate] = {}
        self.from_cache: dict[UUID, int] = {}  # id -> version of aggregates taken from the cache
        self.expected_version: int | None = None
        # What the current command read, changed or created (reset per command of a batch).
        self.touched: dict[UUID, CrmAggregate] = {}

    @property
    def optimistic(self) -> bool:
        return self._cache is not None

    def new_id(self) -> UUID:
        return self._new_id()

    def claim(self, cls: type[CrmAggregate], given: UUID | None, *, kind: str) -> UUID:
        """The id for a new aggregate: the caller's (checked unused), or a new one."""
        if given is None:
            return self._new_id()
        self.fresh(cls, given, kind=kind)
        return given

    def get(self, cls: type[A], id: UUID, *, kind: str, field: str | None = None) -> A:
        agg = self._loaded.get(id)
        if agg is None:
            agg = self._cache.take(id) if self._cache is not None else None
            if agg is not None:
                self.from_cache[id] = agg.version
            else:
                try:
                    agg = self._repository.get(id, projector_func=_project)
                except AggregateNotFoundError:
                    raise NotFoundError(kind, id, field=field) from None
            self._loaded[id] = agg
        if not isinstance(agg, cls):
            raise NotFoundError(kind, id, field=field)
        self.touched[id] = agg
        return agg

    def version_of(self, cls: type[A], id: UUID, version: int) -> A:
        """An aggregate as it was at a past version (e.g. a pinned survey template)."""
        agg: CrmAggregate = self._repository.get(id, version=version, projector_func=_project)
        assert isinstance(agg, cls)
        return agg

    def target(self, cls: type[A], id: UUID, *, kind: str) -> A:
        """The aggregate a command acts on, checked against If-Match when one was given.
        Nothing more is recorded about an erased client, in any of its aggregates."""
        agg = self.get(cls, id, kind=kind)
        if agg.client_id is not None and not isinstance(agg, Client):
            self.live_client(agg.client_id, field=None)
        if self.expected_version is not None and agg.version != self.expected_version:
            raise VersionConflictError(
                f"{kind} {id} is at version {agg.version}, not {self.expected_version}",
                current_version=agg.version)
        return agg

    def live_client(self, client_id: UUID, *, field: str | None = "client_id") -> Client:
        client = self.get(Client, client_id, kind="client", field=field)
        client.ensure_live()
        return client

    def find(self, cls: type[A], id: UUID) -> A | None:
        try:
            return self.get(cls, id, kind=cls.__name__)
        except NotFoundError:
            return None

    def fresh(self, cls: type[CrmAggregate], id: UUID, *, kind: str,
              field: str = "id") -> None:
        """A caller-chosen id for a new aggregate must be unused."""
        if self._cache is not None and id not in self._loaded and id not in self._cache:
            return  # checked by the store at save (see the class's note)
        if self.find(CrmAggregate, id) is not None:
            raise InvalidTransitionError(f"id {id} is already used", field=field)

    def add(self, agg: A) -> A:
        self._loaded[agg.id] = agg
        self.touched[agg.id] = agg
        return agg

    def check_order(self, occurred_at: datetime) -> None:
        """Business order: a command is not dated before any record of the client it changes or
        names began (a work order closed before it was opened, a complaint about a visit not yet
        made, a contact answering a situation not yet opened).

        Not compared: the client's registration (it records when the CRM learned of the client,
        which can be after the history entered for it, and cannot be re-dated: see
        docs/decisions.md), and reference data (no client), which keeps its own time line."""
        for agg in self.touched.values():
            if agg.client_id is not None:
                agg.ensure_not_before(occurred_at)

    def pending(self) -> list[CrmAggregate]:
        return [a for a in self._loaded.values() if a.pending_events]

    def loaded(self) -> list[CrmAggregate]:
        return list(self._loaded.values())

    def cached_reads(self) -> dict[UUID, int]:
        """Aggregates taken from the cache that this request only read: the store must still
        hold them at these versions when the write commits."""
        return {i: v for i, v in self.from_cache.items() if not self._loaded[i].pending_events}
