"""The service station: work orders (client visits), complaints and wishes."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import InvalidValueError
from domain.values import Meta, Money


class WorkOrder(CrmAggregate):
    """A visit: opened with the services and the service stages it goes through, closed once."""

    STARTED_AS = "was opened"

    class WorkOrderOpened(CrmAggregate.Created):
        asset: str
        services: list[str]
        stages: list[str]
        mechanic: str | None
        # The asset (a licence plate identifies its keeper) and the services (free text typed
        # at the desk) are personal (§8). v2: sealed; v1 rows hold them in clear, and the
        # oldest say `vehicle` and have no mechanic (docs/decisions.md, upcasters).
        PERSONAL = ("asset", "services")
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """A v1 state as v2: the field was `vehicle` before it was `asset`, and the
            mechanic was not recorded. Values stay as stored (plain values read as they are).
            Runs on decoded state and on a CloudEvent's JSON data alike: keys only."""
            if "asset" not in state and "vehicle" in state:
                state["asset"] = state.pop("vehicle")
            state.setdefault("mechanic", None)

        def apply(self, agg: WorkOrder) -> None:
            agg.client_id = self.client_id
            agg.stages = list(self.stages)
            agg.closed = False

    class WorkOrderClosed(CrmAggregate.Event):
        amount: Decimal
        currency: str

        def apply(self, agg: WorkOrder) -> None:
            agg.closed = True

    if TYPE_CHECKING:
        stages: list[str]
        closed: bool

    @classmethod
    def open(cls, *, id: UUID, client_id: UUID, meta: Meta, asset: str,
             services: list[str], stages: list[str], mechanic: str | None) -> WorkOrder:
        if not asset.strip():
            raise InvalidValueError("must not be blank", field="asset")
        if len(set(stages)) != len(stages):
            raise InvalidValueError("stages must be distinct", field="stages")
        return cls._start(cls.WorkOrderOpened, id=id, client_id=client_id, meta=meta,
                          asset=asset, services=list(services), stages=list(stages),
                          mechanic=mechanic)

    def close(self, meta: Meta, amount: Money) -> None:
        self._require(not self.closed, "the work order is already closed")
        self._emit(self.WorkOrderClosed, meta, amount=amount.amount, currency=amount.currency)


class Complaint(CrmAggregate):
    """A client's complaint; registering one opens a situation (see commands)."""

    class ComplaintRegistered(CrmAggregate.Created):
        text: str
        work_order_id: UUID | None
        stage: str | None
        channel: str | None
        PERSONAL = ("text",)

        def apply(self, agg: Complaint) -> None:
            agg.client_id = self.client_id

    @classmethod
    def register(cls, *, id: UUID, client_id: UUID, meta: Meta, text: str,
                 work_order_id: UUID | None, stage: str | None,
                 channel: str | None) -> Complaint:
        if not text.strip():
            raise InvalidValueError("must not be blank", field="text")
        return cls._start(cls.ComplaintRegistered, id=id, client_id=client_id, meta=meta,
                          text=text, work_order_id=work_order_id, stage=stage, channel=channel)


class Wish(CrmAggregate):
    """A client's wish for the service, kept for the process owners."""

    class WishRegistered(CrmAggregate.Created):
        text: str
        work_order_id: UUID | None
        stage: str | None
        PERSONAL = ("text",)

        def apply(self, agg: Wish) -> None:
            agg.client_id = self.client_id

    @classmethod
    def register(cls, *, id: UUID, client_id: UUID, meta: Meta, text: str,
                 work_order_id: UUID | None, stage: str | None) -> Wish:
        if not text.strip():
            raise InvalidValueError("must not be blank", field="text")
        return cls._start(cls.WishRegistered, id=id, client_id=client_id, meta=meta, text=text,
                          work_order_id=work_order_id, stage=stage)
