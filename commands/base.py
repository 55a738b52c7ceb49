"""Command models' base, the handler registry and the unit of work one or many commands share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from commands.errors import NotFoundError, VersionConflictError
from domain.base import CrmAggregate
from domain.client import Client
from domain.errors import InvalidTransitionError
from domain.values import Meta

Text = Annotated[str, Field(min_length=1, max_length=2000)]
ShortText = Annotated[str, Field(min_length=1, max_length=200)]
NoteText = Annotated[str, Field(max_length=4000)]


def _decimal_string(value: str) -> str:
    from decimal import Decimal, InvalidOperation

    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError("must be a decimal string such as \"120.50\"") from None
    if not amount.is_finite():
        raise ValueError("must be a finite decimal")
    if amount < 0:
        raise ValueError("must not be negative")
    if amount.as_tuple().exponent < -4:  # type: ignore[operator]
        raise ValueError("at most 4 decimal places")
    return value


# Money travels as a decimal string, never a JSON number (floats lose cents).
Amount = Annotated[str, Field(max_length=32, examples=["120.50"]),
                   AfterValidator(_decimal_string)]
Currency = Annotated[str, Field(pattern=r"^[A-Z]{3}$", examples=["EUR"])]


class Command(BaseModel):
    """A request to change the system. `occurred_at` is business time (defaults to now)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    NAME: ClassVar[str]
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened (RFC 3339 with offset); default now.")


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


class UnitOfWork:
    """Aggregates loaded and created by the commands of one request: saved together, or not."""

    def __init__(self, repository: Repository[UUID], new_id: Callable[[], UUID]) -> None:
        self._repository = repository
        self._new_id = new_id
        self._loaded: dict[UUID, CrmAggregate] = {}
        self.expected_version: int | None = None

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
            try:
                agg = self._repository.get(id)
            except AggregateNotFoundError:
                raise NotFoundError(kind, id, field=field) from None
            self._loaded[id] = agg
        if not isinstance(agg, cls):
            raise NotFoundError(kind, id, field=field)
        return agg

    def version_of(self, cls: type[A], id: UUID, version: int) -> A:
        """An aggregate as it was at a past version (e.g. a pinned survey template)."""
        agg: CrmAggregate = self._repository.get(id, version=version)
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
        if self.find(CrmAggregate, id) is not None:
            raise InvalidTransitionError(f"id {id} is already used", field=field)

    def add(self, agg: A) -> A:
        self._loaded[agg.id] = agg
        return agg

    def pending(self) -> list[CrmAggregate]:
        return [a for a in self._loaded.values() if a.pending_events]
