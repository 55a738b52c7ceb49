"""Fault suite (issue 15): bad events written straight into the store, as an older version or
another tool could have, never stop the read side. Each is parked for the projection that
cannot apply it, the other projections and clients stay current, the server starts on such a
store, replay names what it parked, and re-drive after a fix applies it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from consumers import dlq
from infra.bootstrap import Container, build
from infra.rebuild import replay_and_compare
from infra.settings import Settings
from projections.base import positions
from tests.support import Api

NOW = "2026-11-20T10:00:00+00:00"


def _uuid(value: uuid.UUID) -> dict[str, str]:
    return {"_type_": "uuid_hex", "_data_": value.hex}


def _when(text: str) -> dict[str, str]:
    return {"_type_": "datetime_iso", "_data_": text}


def _state(client_id: uuid.UUID, topic: str, **fields: Any) -> bytes:
    return orjson.dumps({"timestamp": _when(NOW), "originator_topic": topic.rsplit(".", 1)[0],
                         "client_id": _uuid(client_id), "occurred_at": _when(NOW),
                         "actor": "legacy.tool", "actor_role": "operator", **fields})


def _bad_events(client_id: uuid.UUID) -> dict[str, StoredEvent]:
    """One event of each kind of fault, each a new stream of its own."""
    payment = "domain.money:Payment.PaymentReceived"
    opened = "domain.service:WorkOrder.WorkOrderOpened"
    return {
        "overflowing number": StoredEvent(uuid.uuid4(), 1, payment, _state(
            client_id, payment, amount={"_type_": "decimal_str", "_data_": "1e400"},
            currency="EUR", reference="legacy import", invoice_id=None)),
        "wrong type": StoredEvent(uuid.uuid4(), 1, opened, _state(
            client_id, opened, asset="plate", services=["oil"], stages=42, mechanic="M")),
        "unknown type": StoredEvent(uuid.uuid4(), 1, "domain.service:WorkOrder.Teleported",
                                    _state(client_id, "domain.service:WorkOrder.Teleported")),
        "missing reference data": StoredEvent(uuid.uuid4(), 1, payment, _state(
            client_id, payment, amount={"_type_": "decimal_str", "_data_": "10.00"},
            currency="EUR", reference="no such invoice",
            invoice_id=_uuid(uuid.UUID(int=7)))),
    }


@pytest.fixture
def poisoned(any_settings: Settings) -> Iterator[tuple[Container, Api, dict[str, Any]]]:
    container = build(any_settings)
    try:
        api = Api(container)
        ann = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                             "name": "Ann Lee"})["id"]
        bob = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                             "name": "Bob Ray"})["id"]
        bad = _bad_events(uuid.UUID(ann))
        before = container.store_position()
        container.app.recorder.insert_events(list(bad.values()))
        spots = {kind: before + 1 + i for i, kind in enumerate(bad)}
        yield container, api, {"ann": ann, "bob": bob, "spots": spots, "bad": bad}
    finally:
        container.close()


def _caught_up(container: Container) -> dict[str, int]:
    assert container.follower.wait_for(container.store_position(), 30)
    with container.engine.connect() as conn:
        return positions(conn, [p.name for p in container.runner.projections])


def test_bad_events_are_parked_and_everything_else_stays_current(
        poisoned: tuple[Container, Api, dict[str, Any]]) -> None:
    container, api, seen = poisoned
    contact = api.ok("POST", f"/v1/clients/{seen['bob']}/contacts", {
        "channel": "phone", "direction": "inbound", "topic": "After the bad ones"})
    tracked = _caught_up(container)
    assert set(tracked.values()) == {contact["position"]}  # nobody stopped

    card = api.ok("GET", f"/v1/clients/{seen['bob']}/card")
    assert card["last_contact"]["topic"] == "After the bad ones"

    parked = {(row["projection"], row["position"]): row for row in dlq.parked(container.engine)}
    spots = seen["spots"]
    # An event no code can read is parked by every projection, naming its stored type.
    for projection in container.runner.projections:
        row = parked[(projection.name, spots["unknown type"])]
        assert row["type"] == "domain.service:WorkOrder.Teleported"
        assert "Teleported" in row["error"]
    # The payment too large for any column is parked by the projections that store amounts.
    overflow = {name for name, position in parked if position == spots["overflowing number"]}
    assert "payments" in overflow
    assert all(parked[(n, spots["overflowing number"])]["type"] == "PaymentReceived"
               for n in overflow)
    # A work order whose stages are not a list is parked by the projection that reads them.
    assert ("service_surveys", spots["wrong type"]) in parked
    # A payment naming an invoice that does not exist is an ordinary payment to the read side.
    assert not [key for key in parked if key[1] == spots["missing reference data"]]

    ready = api.get("/readyz")
    assert ready.status_code == 503
    failing = ready.json()["read_models"]["failing"]
    assert {"payments", "service_surveys"} <= set(failing)

    admin = api.ok("GET", "/v1/admin/deadletters", as_="admin")
    assert admin["total"] == len(parked)
    assert api.get("/v1/admin/deadletters").status_code == 403  # operators cannot


def test_the_server_starts_on_a_poisoned_store_and_replay_names_what_it_parked(
        poisoned: tuple[Container, Api, dict[str, Any]], any_settings: Settings) -> None:
    container, _api, seen = poisoned
    _caught_up(container)
    container.close()
    again = build(any_settings)  # start-up catch-up meets nothing new, and never fails
    try:
        api = Api(again)
        assert api.get("/healthz").status_code == 200
        assert api.ok("GET", f"/v1/clients/{seen['bob']}/card")["profile"]["name"] == "Bob Ray"
        outcomes = replay_and_compare(again)
        parked_by = {(f.projection, f.position) for o in outcomes for f in o.parked}
        assert all(o.matches for o in outcomes), [o.difference for o in outcomes]
        # The replay parked the same events as the live run, each named by its position.
        live = {(row["projection"], row["position"]) for row in dlq.parked(again.engine)}
        assert parked_by == live
        assert seen["spots"]["unknown type"] in {position for _n, position in parked_by}
    finally:
        again.close()


def test_a_fixed_projection_re_drives_what_it_parked(
        poisoned: tuple[Container, Api, dict[str, Any]]) -> None:
    container, api, seen = poisoned
    _caught_up(container)
    wrong = seen["spots"]["wrong type"]
    report = api.ok("POST", "/v1/admin/deadletters/redrive", as_="admin")
    # Nothing was fixed: every parked event still fails, and stays parked with its error.
    assert report["redriven"] == []
    assert any(ref.startswith("service_surveys:") for ref in report["still_failing"])
    assert any(row["position"] == wrong for row in dlq.parked(container.engine))
