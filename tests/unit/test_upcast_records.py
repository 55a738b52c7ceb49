"""A record published on the bus by older code (an older class_version) is read through the
event class's upcasters, as the store's rows are; a version newer than the code is refused."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from consumers.cloudevents import CloudEventError, from_cloudevent, to_cloudevent
from domain.service import WorkOrder
from domain.values import Meta

META = Meta(occurred_at=datetime(2026, 10, 1, 9, 0, tzinfo=UTC),
            recorded_at=datetime(2026, 10, 1, 9, 5, tzinfo=UTC), actor="desk",
            actor_role="operator")


def _opened_record() -> dict[str, object]:
    order = WorkOrder.open(id=uuid4(), client_id=uuid4(), meta=META, asset="plate",
                           services=["oil"], stages=["repair"], mechanic="Max")
    (event,) = order.collect_events()
    return to_cloudevent(7, event)


def test_a_v1_work_order_record_is_upcast_when_read() -> None:
    record = _opened_record()
    assert record["type"] == "crm.WorkOrderOpened.v2"
    data = dict(record["data"])  # type: ignore[call-overload]
    data["vehicle"] = data.pop("asset")
    del data["mechanic"]
    position, event = from_cloudevent({**record, "type": "crm.WorkOrderOpened.v1",
                                       "data": data})
    assert position == 7
    assert (event.asset, event.mechanic, event.services) == ("plate", None, ["oil"])


def test_a_version_newer_than_the_code_is_refused() -> None:
    with pytest.raises(CloudEventError, match="version"):
        from_cloudevent({**_opened_record(), "type": "crm.WorkOrderOpened.v3"})
