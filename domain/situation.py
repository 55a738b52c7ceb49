"""Client problem situations: the clock the reaction-speed audit measures."""

from __future__ import annotations

from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import CrmAggregate, sealed_since
from domain.errors import InvalidValueError
from domain.values import Meta, SituationKind

OPEN, PAUSED, RESOLVED = "open", "paused", "resolved"


class Situation(CrmAggregate):
    """A situation is opened (by a trigger event or by hand), reacted to, maybe paused, resolved.

    Status: open <-> paused (the clock stops while waiting on the client), open|paused ->
    resolved -> open again by a reopen. `acknowledged` is reset by a reopen.
    """

    STARTED_AS = "was opened"

    class SituationOpened(CrmAggregate.Created):
        kind: str
        trigger: str  # "manual" or the trigger's event type, e.g. "ComplaintRegistered"
        trigger_event_id: UUID | None
        description: str
        specialist_id: UUID | None
        stages: list[str]
        PERSONAL = ("description",)

        def apply(self, agg: Situation) -> None:
            agg.client_id = self.client_id
            agg.kind = self.kind
            agg.status = OPEN
            agg.acknowledged = False

    class SituationAcknowledged(CrmAggregate.Event):
        note: str | None
        PERSONAL = ("note",)

        def apply(self, agg: Situation) -> None:
            agg.acknowledged = True

    class SituationPaused(CrmAggregate.Event):
        reason: str | None
        # v2 (issue 15.4): the free-text reason is sealed with the client's key; v1 rows hold it in
        # clear and read as they are (domain.base.sealed_since, docs/decisions.md).
        PERSONAL = ("reason",)
        class_version = 2
        upcast_v1_v2 = staticmethod(sealed_since)

        def apply(self, agg: Situation) -> None:
            agg.status = PAUSED

    class SituationResumed(CrmAggregate.Event):
        def apply(self, agg: Situation) -> None:
            agg.status = OPEN

    class SituationResolved(CrmAggregate.Event):
        resolution: str
        PERSONAL = ("resolution",)

        def apply(self, agg: Situation) -> None:
            agg.status = RESOLVED

    class SituationReopened(CrmAggregate.Event):
        reason: str | None
        # v2 (issue 15.4): the free-text reason is sealed with the client's key; v1 rows hold it in
        # clear and read as they are (domain.base.sealed_since, docs/decisions.md).
        PERSONAL = ("reason",)
        class_version = 2
        upcast_v1_v2 = staticmethod(sealed_since)

        def apply(self, agg: Situation) -> None:
            agg.status = OPEN
            agg.acknowledged = False

    if TYPE_CHECKING:
        kind: str
        status: str
        acknowledged: bool

    @classmethod
    def open(cls, *, id: UUID, client_id: UUID, meta: Meta, kind: SituationKind,
             trigger: str, trigger_event_id: UUID | None, description: str,
             specialist_id: UUID | None, stages: list[str] | None = None) -> Situation:
        if not description.strip():
            raise InvalidValueError("must not be blank", field="description")
        return cls._start(cls.SituationOpened, id=id, client_id=client_id, meta=meta,
                          kind=str(kind), trigger=trigger, trigger_event_id=trigger_event_id,
                          description=description, specialist_id=specialist_id,
                          stages=list(stages or []))

    def acknowledge(self, meta: Meta, note: str | None) -> None:
        self._require(self.status != RESOLVED, "the situation is resolved")
        self._require(not self.acknowledged, "the situation is already acknowledged")
        self._emit(self.SituationAcknowledged, meta, note=note)

    def pause(self, meta: Meta, reason: str | None) -> None:
        self._require(self.status == OPEN, f"the situation is {self.status}")
        self._emit(self.SituationPaused, meta, reason=reason)

    def resume(self, meta: Meta) -> None:
        self._require(self.status == PAUSED, "the situation is not paused")
        self._emit(self.SituationResumed, meta)

    def resolve(self, meta: Meta, resolution: str) -> None:
        self._require(self.status != RESOLVED, "the situation is already resolved")
        if not resolution.strip():
            raise InvalidValueError("must not be blank", field="resolution")
        self._emit(self.SituationResolved, meta, resolution=resolution)

    def reopen(self, meta: Meta, reason: str | None) -> None:
        self._require(self.status == RESOLVED, "only a resolved situation can be reopened")
        self._emit(self.SituationReopened, meta, reason=reason)

    def accept_contact(self, client_id: UUID) -> None:
        """A contact may name this situation (a reaction) only for the same client."""
        if client_id != self.client_id:
            raise InvalidValueError("the situation belongs to another client",
                                    field="situation_id")
