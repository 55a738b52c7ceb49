"""Domain events <-> CloudEvents: the contract attributes, keys, exact money, and a round trip
back to the very object the store holds, for every event type."""

from __future__ import annotations

import types
import typing
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import pytest

from commands.idempotency import IdempotencyRecord
from consumers.cloudevents import (
    CloudEventError,
    decode,
    encode,
    field_types,
    from_cloudevent,
    is_published,
    key_of,
    to_cloudevent,
)
from domain.activity import Contact
from domain.base import CrmAggregate, event_id_of
from domain.catalogue import EVENT_TYPES
from domain.money import Payment
from domain.reference import Specialist
from domain.values import Channel, ContactPurpose, Direction, Meta, Money

CLIENT = UUID("8a6e0804-2bd0-4672-b79e-0c2a54c1e001")
STREAM = UUID("7c1b0a44-6e5b-4c5e-9f1f-0c2a54c1e002")
SITUATION = UUID("5d0c9b0e-1f43-4f3e-8d9a-0c2a54c1e003")
BERLIN = timezone(timedelta(hours=1))
META = Meta(occurred_at=datetime(2026, 11, 20, 10, 0, tzinfo=BERLIN),
            recorded_at=datetime(2026, 11, 20, 9, 0, 1, 250000, tzinfo=UTC),
            actor="ann", actor_role="operator")


def logged_contact() -> Any:
    contact = Contact.log(id=STREAM, client_id=CLIENT, meta=META, channel=Channel.PHONE,
                          direction=Direction.INBOUND, purpose=ContactPurpose.COMPLAINT,
                          topic="Invoice question", summary=None, contact_person_id=None,
                          specialist_id=None, situation_id=SITUATION, planned_contact_id=None)
    [event] = contact.collect_events()
    return event


def test_a_contact_becomes_a_cloudevent_with_the_contract_attributes() -> None:
    record = to_cloudevent(42, logged_contact(), prev_position=40, hash_="ab12")

    assert record == {
        "specversion": "1.0",
        "id": str(event_id_of(STREAM, 1)),
        "source": "crm",
        "type": "crm.ContactLogged.v2",
        "subject": str(CLIENT),
        "time": "2026-11-20T10:00:00+01:00",
        "datacontenttype": "application/json",
        "dataschema": "urn:crm:schema:crm.ContactLogged.v2.data",
        "position": 42,
        "prevposition": 40,
        "stream": str(STREAM),
        "version": 1,
        "recordedtime": "2026-11-20T09:00:01.250000+00:00",
        "actor": "ann",
        "actorrole": "operator",
        "clientid": str(CLIENT),
        "hash": "ab12",
        "data": {"channel": "phone", "direction": "inbound", "purpose": "complaint",
                 "topic": "Invoice question", "summary": None, "contact_person_id": None,
                 "specialist_id": None, "situation_id": str(SITUATION),
                 "planned_contact_id": None},
    }
    assert key_of(logged_contact()) == str(CLIENT).encode()


def test_reference_data_is_keyed_by_its_stream_and_names_no_client() -> None:
    specialist = Specialist.register(id=STREAM, meta=META, name="Sam", email=None, user_id="sam")
    [event] = specialist.collect_events()

    record = to_cloudevent(3, event)

    assert key_of(event) == str(STREAM).encode()
    assert (record["subject"], record["stream"]) == (str(STREAM), str(STREAM))
    assert "clientid" not in record and "hash" not in record and "prevposition" not in record


def test_money_travels_as_an_exact_decimal_string() -> None:
    payment = Payment.receive(id=STREAM, client_id=CLIENT, meta=META,
                              amount=Money(Decimal("100.10"), "EUR"), reference=None,
                              invoice_id=None)
    [event] = payment.collect_events()

    wire = encode(5, event)

    assert b'"amount":"100.10"' in wire
    _position, back = decode(wire)
    assert back.amount == Decimal("100.10") and str(back.amount) == "100.10"


def _sample(hint: Any) -> Any:
    """A value of the annotated type, as the store would give it back."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _sample(next(a for a in typing.get_args(hint) if a is not type(None)))
    if origin is list:
        return [_sample(typing.get_args(hint)[0])]
    if origin is dict:
        value = typing.get_args(hint)[1]
        return {"q1": _sample(value)} if value is not Any else {"k": "v", "n": [1, 2]}
    return {str: "text", int: 3, bool: False, float: 0.75, UUID: SITUATION,
            datetime: datetime(2026, 12, 1, 8, 30, tzinfo=BERLIN), Decimal: Decimal("12.3400"),
            Any: "any"}[hint]


@pytest.mark.parametrize("name", sorted(EVENT_TYPES))
def test_every_event_type_round_trips_to_the_same_domain_event(name: str) -> None:
    cls = EVENT_TYPES[name]
    fields = {field: _sample(hint) for field, hint in field_types(cls).items()}
    envelope: dict[str, Any] = dict(originator_id=STREAM, originator_version=7,
                                    timestamp=META.recorded_at, client_id=CLIENT,
                                    occurred_at=META.occurred_at, actor="ann",
                                    actor_role="operator")
    if issubclass(cls, CrmAggregate.Created):
        aggregate = cls.__qualname__.rsplit(".", 1)[0]
        envelope["originator_topic"] = f"{cls.__module__}:{aggregate}"
    event = cls(**envelope, **fields)

    position, back = decode(encode(99, event, prev_position=98))

    assert position == 99
    assert type(back) is cls
    assert vars(back) == vars(event)


def test_internal_records_never_go_on_the_bus() -> None:
    record = IdempotencyRecord.record(actor="ann", key="k1", request_hash="h", results=[])
    [used] = record.collect_events()
    assert (is_published(used), is_published(logged_contact())) == (False, True)


@pytest.mark.parametrize("change", [
    {"type": "crm.NoSuchEvent.v1"},
    {"type": "crm.ContactLogged.v3"},
    {"type": "com.example.ContactLogged.v1"},
    {"stream": "not-a-uuid"},
    {"data": {"channel": "phone"}},
])
def test_a_record_this_code_cannot_read_is_refused(change: dict[str, Any]) -> None:
    record = {**to_cloudevent(1, logged_contact()), **change}
    with pytest.raises(CloudEventError):
        from_cloudevent(record)


def test_bytes_that_are_not_a_json_object_are_refused() -> None:
    for value in (b"{nope", orjson.dumps([1, 2])):
        with pytest.raises(CloudEventError):
            decode(value)
