"""projections.personal: what a projection may store for a personal field."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from domain.client import Client
from domain.values import Meta
from projections.personal import ClearPersonalData, kept, kept_changes

SEALED = {"_pd_": 1, "t": "s", "c": "bm9uY2VjaXBoZXI="}


def _registered(name: object, phones: object) -> Client.ClientRegistered:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    client = Client.register(id=uuid4(), meta=Meta(occurred_at=now, recorded_at=now, actor="a",
                                                   actor_role="operator"),
                             kind="customer", form="person", name="placeholder")
    event = client.collect_events()[0]
    event.__dict__.update(name=name, phones=phones)
    return event  # type: ignore[return-value]


def test_a_sealed_value_is_kept_with_its_client_and_field() -> None:
    event = _registered(SEALED, [])
    stored = kept(event, "name")
    assert stored == {**SEALED, "k": str(event.client_id), "w": "ClientRegistered.name"}
    assert kept(event, "phones") == []  # empty values are never sealed, and stay as they are


def test_a_clear_personal_value_is_refused() -> None:
    with pytest.raises(ClearPersonalData, match=r"ClientRegistered\.name"):
        kept(_registered("Ann Lee", []), "name")


class ClientProfileUpdated:
    """Stands for the event of that name: its personal keys, client and change set."""

    PERSONAL_KEYS = Client.ClientProfileUpdated.PERSONAL_KEYS

    def __init__(self, changes: dict[str, object]) -> None:
        self.client_id = uuid4()
        self.changes = changes


def test_a_change_set_keeps_its_personal_values_sealed_and_the_rest_clear() -> None:
    event = ClientProfileUpdated({"name": SEALED, "tags": ["vip"], "phones": []})
    assert kept_changes(event) == {
        "name": {**SEALED, "k": str(event.client_id), "w": "ClientProfileUpdated.changes.name"},
        "tags": ["vip"], "phones": []}
    with pytest.raises(ClearPersonalData, match=r"changes\.address"):
        kept_changes(ClientProfileUpdated({"address": "Main 1"}))
