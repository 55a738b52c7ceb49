"""The base aggregate: every event carries client id, business time, record time and actor.

Events are explicit nested classes (their class name is the event type of the contract, e.g.
`ContactLogged`) with an `apply()` that only assigns. Rules live in the public methods, so a
rule added later never breaks loading old history (STYLE.md habit 1). Times and ids arrive as
arguments: replay is a pure function of the stored events.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import InvalidTransitionError, InvalidValueError
from domain.values import Meta

A = TypeVar("A", bound="CrmAggregate")


class CrmAggregate(Aggregate):
    """Base of every aggregate. `timestamp` of the library's events is the record time."""

    if TYPE_CHECKING:  # assigned by the created event's apply()
        client_id: UUID | None
        # Business time of the stream's first event (assigned on every load: Created.mutate).
        started_at: datetime

    STARTED_AS: ClassVar[str] = "began"  # for messages: "the work order it concerns was opened"
    # Whether later events may not be dated before the first (docs/decisions.md, issue 15).
    ORDERED_FROM_START: ClassVar[bool] = True

    class Event(Aggregate.Event):
        client_id: UUID | None
        occurred_at: datetime
        actor: str
        actor_role: str

        # Names of fields holding personal data (encrypted per client at rest, §8).
        PERSONAL: ClassVar[tuple[str, ...]] = ()
        # Dict fields whose values are personal for some keys only (a change set): each such
        # value is encrypted on its own, so projections still see which keys changed.
        PERSONAL_KEYS: ClassVar[dict[str, tuple[str, ...]]] = {}

        @property
        def recorded_at(self) -> datetime:
            return self.timestamp

    class Created(Event, Aggregate.Created):
        def mutate(self, aggregate: Any) -> Any:
            # Assigns only (replay-safe): the order rules compare later business times to it.
            agg = super().mutate(aggregate)
            assert agg is not None
            agg.started_at = self.occurred_at
            return agg

    @classmethod
    def _start(cls: type[A], event_class: type[Any], *, id: UUID, client_id: UUID | None,
               meta: Meta, **fields: Any) -> A:
        return cls._create(
            event_class, id=id, timestamp=meta.recorded_at, client_id=client_id,
            occurred_at=meta.occurred_at, actor=meta.actor, actor_role=meta.actor_role, **fields,
        )

    def ensure_not_before(self, occurred_at: datetime) -> None:
        """Business order: nothing is dated before the record it concerns began (checked when
        a command runs, never on replay, so old histories still load)."""
        started: datetime | None = getattr(self, "started_at", None)
        if self.ORDERED_FROM_START and started is not None and occurred_at < started:
            raise InvalidValueError(
                f"lies before the {_kind(self)} it concerns {self.STARTED_AS} "
                f"({started.isoformat()})", field="occurred_at")

    def _emit(self, event_class: type[Any], meta: Meta, **fields: Any) -> None:
        self.ensure_not_before(meta.occurred_at)
        self.trigger_event(
            event_class, timestamp=meta.recorded_at, client_id=self.client_id,
            occurred_at=meta.occurred_at, actor=meta.actor, actor_role=meta.actor_role, **fields,
        )

    @staticmethod
    def _require(condition: bool, message: str) -> None:
        if not condition:
            raise InvalidTransitionError(message)


def _kind(agg: CrmAggregate) -> str:
    """`WorkOrder` -> "work order", for messages."""
    name = type(agg).__name__
    return "".join(" " + c.lower() if c.isupper() else c for c in name).strip()


def sealed_since(state: dict[str, Any]) -> None:
    """The upcaster of a class version that only sealed a field already there (issue 15.4):
    a sealed value records that it is sealed (`{"_pd_": 1, ...}`), so an older state, whose
    value is in clear, reads as it is. The version changes for the bus contract (the field's
    published type widened to "clear or sealed": a new CloudEvents type and schema), not for
    the store; this keys-only upcaster lets the decoders step over it."""


_EVENT_NS = UUID("6f1c2a43-9a4e-4c36-9f7e-3b0d2f1b8a11")


def event_id_of(originator_id: UUID, originator_version: int) -> UUID:
    """The stable id of an event: derived from its stream and version, so it is never stored twice
    and is the same on every replay, export and Kafka copy."""
    return uuid5(_EVENT_NS, f"{originator_id}:{originator_version}")
