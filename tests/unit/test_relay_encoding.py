"""The relay's fast encoder (`to_value`) publishes the very bytes `encode` spells, for every event
type, reference data, and instants orjson would spell differently (the slow path then)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import orjson
import pytest

from consumers.cloudevents import encode, field_types, to_cloudevent, to_value
from domain.base import CrmAggregate, event_id_of
from domain.catalogue import EVENT_TYPES
from domain.reference import Specialist
from domain.values import Meta
from tests.unit.test_cloudevents import CLIENT, META, STREAM, _sample


def _event(name: str, **envelope: Any) -> Any:
    cls = EVENT_TYPES[name]
    fields = {field: _sample(hint) for field, hint in field_types(cls).items()}
    base: dict[str, Any] = dict(originator_id=STREAM, originator_version=7,
                                timestamp=META.recorded_at, client_id=CLIENT,
                                occurred_at=META.occurred_at, actor="ann", actor_role="operator")
    base.update(envelope)
    if issubclass(cls, CrmAggregate.Created):
        base["originator_topic"] = f"{cls.__module__}:{cls.__qualname__.rsplit('.', 1)[0]}"
    return cls(**base, **fields)


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_encodes_to_the_same_bytes(name: str) -> None:
    event = _event(name)
    for prev, hash_ in ((None, None), (98, "ab" * 32)):
        event_id, type_, value = to_value(99, event, prev_position=prev, hash_=hash_)

        assert value == encode(99, event, prev_position=prev, hash_=hash_)
        assert value == orjson.dumps(to_cloudevent(99, event, prev_position=prev, hash_=hash_))
        assert event_id == str(event_id_of(STREAM, 7))
        assert type_ == orjson.loads(value)["type"]


@pytest.mark.parametrize("when", [
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 1, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5),  # naive
    datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1, seconds=30))),  # slow path
])
def test_instants_are_spelled_as_isoformat(when: datetime) -> None:
    event = _event("ContactLogged", occurred_at=when, timestamp=when)

    assert to_value(5, event)[2] == encode(5, event)


def test_reference_data_without_a_client_encodes_to_the_same_bytes() -> None:
    meta = Meta(occurred_at=META.occurred_at, recorded_at=META.recorded_at, actor="ann",
                actor_role="operator")
    specialist = Specialist.register(id=UUID(int=5), meta=meta, name="Sam", email=None,
                                     user_id="sam")
    [event] = specialist.collect_events()

    assert to_value(3, event, prev_position=0)[2] == encode(3, event, prev_position=0)
