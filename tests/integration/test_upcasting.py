"""The history stays legal (issue 15.3): an event an older version of the product wrote — a
work order opened when the field was `vehicle` and no mechanic was recorded — sits in the store
as it was written. Without an upcaster the projection that reads the asset parks it; with
`WorkOrderOpened.upcast_v1_v2` the same stored row is served, replayed and re-driven, and the
hash chain still verifies because the row was never touched."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from consumers import dlq
from domain.service import WorkOrder
from infra.bootstrap import Container, build
from infra.chain import verify_store
from infra.rebuild import replay_and_compare
from infra.settings import Settings
from tests.support import Api

OPENED = "domain.service:WorkOrder.WorkOrderOpened"
PLATE = "KA-4711-OLD"
WHEN = "2026-10-01T09:00:00+00:00"


def _legacy_opened(client_id: uuid.UUID) -> StoredEvent:
    """A WorkOrderOpened as the product wrote it before `asset` and `mechanic` existed."""
    state = orjson.dumps({
        "timestamp": {"_type_": "datetime_iso", "_data_": WHEN},
        "originator_topic": "domain.service:WorkOrder",
        "client_id": {"_type_": "uuid_hex", "_data_": client_id.hex},
        "occurred_at": {"_type_": "datetime_iso", "_data_": WHEN},
        "actor": "desk.2019", "actor_role": "operator",
        "vehicle": PLATE, "services": ["oil change"], "stages": ["reception", "repair"]})
    return StoredEvent(uuid.uuid4(), 1, OPENED, state)


def _caught_up(container: Container) -> None:
    assert container.follower.wait_for(container.store_position(), 30)


def _stored_state(container: Container, position: int) -> bytes:
    (notification,) = container.app.recorder.select_notifications(start=position, limit=1)
    return bytes(notification.state)


@pytest.fixture
def legacy_store(any_settings: Settings,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The store after the legacy row was read by the code without the upcaster (v1 only)."""
    monkeypatch.setattr(WorkOrder.WorkOrderOpened, "class_version", 1)
    before = build(any_settings)
    try:
        api = Api(before)
        client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                                "name": "Olga Old"})["id"]
        row = _legacy_opened(uuid.UUID(client))
        before.app.recorder.insert_events([row])
        position = before.store_position()
        _caught_up(before)
        seen = {"client": client, "row": row, "position": position,
                "parked": dlq.parked(before.engine),
                "listed": api.ok("GET", "/v1/admin/deadletters", as_="admin"),
                "register": api.ok("GET", "/v1/work-orders")["items"]}
    finally:
        before.close()
    monkeypatch.undo()  # the release with the upcaster
    yield seen


def test_without_the_upcaster_the_old_work_order_is_parked(
        legacy_store: dict[str, Any]) -> None:
    position = legacy_store["position"]
    parked = {(row["projection"], row["position"]): row for row in legacy_store["parked"]}
    assert "asset" in parked[("service_surveys", position)]["error"]
    listed = {(item["projection"], item["position"])
              for item in legacy_store["listed"]["items"]}
    assert ("service_surveys", position) in listed
    assert legacy_store["register"] == []


def test_the_upcaster_serves_replays_and_redrives_the_unchanged_row(
        legacy_store: dict[str, Any], any_settings: Settings) -> None:
    position, client = legacy_store["position"], legacy_store["client"]
    after = build(any_settings)
    try:
        api = Api(after)
        report = api.ok("POST", "/v1/admin/deadletters/redrive", as_="admin")
        assert any(ref.startswith("service_surveys:") for ref in report["redriven"]), report
        assert report["still_failing"] == {}
        assert not [r for r in dlq.parked(after.engine) if r["position"] == position]

        (item,) = api.ok("GET", "/v1/work-orders")["items"]
        assert item["client_id"] == client and item["asset"] == PLATE
        # The old work order is a live aggregate again: it can be closed, and the card sees it.
        order = str(legacy_store["row"].originator_id)
        api.ok("POST", f"/v1/work-orders/{order}/close", {
            "amount": "90.00", "currency": "EUR", "occurred_at": "2026-10-02T09:00:00+00:00"})
        (item,) = api.ok("GET", "/v1/work-orders", params={
            "at": "2026-10-05T12:00:00+00:00"})["items"]
        assert item["status"] == "due"
        card = api.ok("GET", f"/v1/clients/{client}/card",
                      params={"at": "2026-10-05T12:00:00+00:00"})
        assert card["segment"] == "active"
        events = api.ok("GET", f"/v1/clients/{client}/events")["items"]
        opened = next(e for e in events if e["type"] == "WorkOrderOpened")
        assert opened["data"]["asset"] == PLATE and opened["data"]["mechanic"] is None

        outcomes = replay_and_compare(after)
        assert all(o.matches for o in outcomes), [o.difference for o in outcomes]
        assert [o.parked for o in outcomes if o.parked] == []

        # Nothing was repaired in the store: the same bytes, and the chain verifies.
        assert _stored_state(after, position) == legacy_store["row"].state
        verdict = verify_store(after.app)
        assert verdict.ok, verdict
    finally:
        after.close()
