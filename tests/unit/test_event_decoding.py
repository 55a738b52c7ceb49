"""The fast decode of stored events (issue 14.4) gives exactly what the library's decode gives.

StateDecoder (infra.eventstore) parses with msgspec and converts only the tagged values it can
account for; the library's JSONTranscoder is the reference: same values, same types, same key
order, and the same exception when the library raises."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Mapper,
    StoredEvent,
    Transcoding,
    UUIDAsHex,
)
from eventsourcing.utils import get_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.client import Client
from infra.eventstore import Plan, StateDecoder


class DateAsISO(Transcoding):
    """A transcoding the fast path does not know: left to the library's own decode."""

    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def _transcoder(*extra: Transcoding) -> JSONTranscoder:
    transcoder = JSONTranscoder()
    for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO(), *extra):
        transcoder.register(transcoding)
    return transcoder


def same(a: Any, b: Any) -> bool:
    """Equal values of the same types, dicts in the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


texts = st.text(max_size=12) | st.sampled_from(
    ["_type_", "_data_", '{"_type_":"uuid_hex"}', "{", "\\u007b", "\x00\n\t\"", "é€😀"])
leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | texts | st.uuids()
          | st.decimals(allow_nan=False, allow_infinity=False)
          | st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-3))]))
          | st.dates())
lookalikes = st.sampled_from([
    {"_type_": "uuid_hex"}, {"_data_": "x", "y": 1}, {"_type_": "x", "other": 1},
    {"_type_": "uuid_hex", "_data_": "0" * 32, "extra": 1}, {"_pd_": 1, "t": "s", "c": "AAAA"},
])
values = st.recursive(leaves | lookalikes, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(texts, inner, max_size=4), max_leaves=12)
states = st.dictionaries(texts, values, max_size=8)


def check(decoder: StateDecoder, transcoder: JSONTranscoder, data: bytes, plan: Plan) -> None:
    """The decoder's answer is the library's, or it raises what the library raises."""
    try:
        expected = transcoder.decode(data)
    except Exception as error:
        with pytest.raises(type(error)):
            decoder.decode(data, plan)
        return
    assert same(decoder.decode(data, plan), expected)


@settings(max_examples=300, deadline=None)
@given(states, st.integers(min_value=0, max_value=3))
def test_decodes_as_the_library_does(state: dict[str, Any], repeats: int) -> None:
    transcoder = _transcoder(DateAsISO())
    data = transcoder.encode(state)
    decoder = StateDecoder.for_transcoder(transcoder)
    assert decoder is not None
    plan = Plan()
    for _ in range(repeats + 1):  # the plan learnt on the first pass serves the next ones
        check(decoder, transcoder, data, plan)


@settings(max_examples=100, deadline=None)
@given(st.lists(states, min_size=2, max_size=5))
def test_one_plan_serves_different_shapes(shapes: list[dict[str, Any]]) -> None:
    """Events of one type whose keys hold different things in turn (a plan learnt from one
    shape is only ever a shortcut for the next)."""
    transcoder = _transcoder()
    decoder = StateDecoder.for_transcoder(transcoder)
    assert decoder is not None
    plan = Plan()
    for state in shapes * 2:
        check(decoder, transcoder, transcoder.encode(_only_known(state)), plan)


def _only_known(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _only_known(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_only_known(v) for v in value]
    return value.isoformat() if isinstance(value, date) and not isinstance(
        value, datetime) else value


def test_a_plan_key_holding_something_else_is_still_right() -> None:
    transcoder = _transcoder()
    decoder = StateDecoder.for_transcoder(transcoder)
    assert decoder is not None
    plan = Plan()
    first = {"a": UUID(int=1), "b": datetime(2026, 1, 1, tzinfo=UTC), "c": {"_pd_": 1}}
    assert same(decoder.decode(transcoder.encode(first), plan), first)
    assert plan.uuids == ["a"] and plan.times == ["b"] and plan.objects == ["c"]
    for other in ({"a": datetime(2026, 1, 1, tzinfo=UTC), "b": UUID(int=2), "c": None},
                  {"a": {"x": UUID(int=3)}, "b": [UUID(int=4)], "c": Decimal("1.50")},
                  {"a": None, "b": {"_type_": "uuid_hex", "_data_": UUID(int=5).hex, "z": 1},
                   "c": {"k": {"_pd_": 1, "d": datetime(2026, 1, 2, tzinfo=UTC)}}},
                  {"c": "{{{", "a": '"_type_"'}):
        check(decoder, transcoder, transcoder.encode(other), plan)


@pytest.mark.parametrize("data", [
    b'{"a":NaN,"b":{"_type_":"uuid_hex","_data_":"00000000000000000000000000000001"}}',
    b'{"a":1e400}',
    b'{"a":"\\ud800"}',
])
def test_what_msgspec_will_not_parse_goes_to_the_library(data: bytes) -> None:
    transcoder = _transcoder()
    decoder = StateDecoder.for_transcoder(transcoder)
    assert decoder is not None
    check(decoder, transcoder, data, Plan())


@pytest.mark.parametrize("data", [
    b'{"a":{"_type_":"no_such","_data_":"x"}}',
    b'{"a":{"_type_":"uuid_hex","_data_":"not hex"}}',
    b'{"a":{"_type_":"datetime_iso","_data_":"yesterday"}}',
    b'{"a":{"_type_":"decimal_str","_data_":"one"}}',
    b'{"a":[{"_type_":"uuid_hex","_data_":12}]}',
    b'{"a":',
])
def test_errors_are_the_librarys(data: bytes) -> None:
    transcoder = _transcoder()
    decoder = StateDecoder.for_transcoder(transcoder)
    assert decoder is not None
    with pytest.raises(Exception) as expected:
        transcoder.decode(data)
    plan = Plan()
    plan.uuids.append("a")
    plan.times.append("a")
    with pytest.raises(type(expected.value)):
        decoder.decode(data, plan)


def test_only_the_librarys_json_transcoder_is_sped_up() -> None:
    class Other(JSONTranscoder):
        def decode(self, data: bytes) -> Any:
            return {"other": True}

    assert StateDecoder.for_transcoder(Other()) is None
    assert StateDecoder.for_transcoder(_transcoder()) is not None


def test_the_store_mapper_gives_the_librarys_event() -> None:
    """Through the store's mapper (infra.crypto), sealed as projections read it."""
    from infra.crypto import PersonalDataMapper

    transcoder = _transcoder()
    plain: Mapper[UUID] = Mapper(transcoder=transcoder)
    mapper = PersonalDataMapper(plain, keyring=None, unseal=False)  # type: ignore[arg-type]
    client = UUID(int=42)
    state = {"timestamp": datetime(2026, 1, 1, tzinfo=UTC), "originator_topic": get_topic(Client),
             "client_id": client, "occurred_at": datetime(2025, 12, 31, 23, tzinfo=UTC),
             "actor": "a", "actor_role": "operator", "changes": {
                 "name": {"_pd_": 1, "t": "s", "c": "AAAA"}, "kind": "customer"},
             "reason": None}
    topic = get_topic(Client.ClientProfileUpdated)
    stored = StoredEvent(client, 3, topic, transcoder.encode(state))
    for _ in range(2):
        ours, theirs = mapper.to_domain_event(stored), plain.to_domain_event(stored)
        assert type(ours) is type(theirs)
        assert same(vars(ours), vars(theirs))
        [(position, event)] = mapper.decode_rows(
            [(7, client.hex, 3, stored.topic, stored.state)], ids_as_text=True)
        assert position == 7 and same(vars(event), vars(theirs))


@settings(max_examples=200, deadline=None)
@given(st.uuids() | st.builds(lambda n: UUID(int=n), st.integers(0, 2**128 - 1)))
def test_ids_are_the_uuids_uuid_makes(value: UUID) -> None:
    decoder = StateDecoder.for_transcoder(_transcoder())
    assert decoder is not None
    for text in (value.hex, value.hex.upper(), str(value)):
        ours, theirs = decoder.uuid(text), UUID(text)
        assert ours == theirs and hash(ours) == hash(theirs) and repr(ours) == repr(theirs)
        assert ours.is_safe is theirs.is_safe and ours.version == theirs.version
        assert decoder.uuid(text) is ours  # kept


@pytest.mark.parametrize("text", ["0x" + "f" * 30, "g" * 32, "+" + "1" * 31, "1" * 31])
def test_odd_id_texts_fare_as_with_uuid(text: str) -> None:
    decoder = StateDecoder.for_transcoder(_transcoder())
    assert decoder is not None
    try:
        expected = UUID(text)
    except ValueError:
        with pytest.raises(ValueError):
            decoder.uuid(text)
        return
    assert decoder.uuid(text) == expected


def test_the_collector_is_paused_only_while_pages_decode() -> None:
    import gc

    from infra.eventstore import gc_paused

    was = gc.isenabled()
    try:
        gc.enable()
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():  # another thread's page, say
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()  # a process that runs without it keeps it off
        with gc_paused():
            pass
        assert not gc.isenabled()
        gc.enable()
        with pytest.raises(RuntimeError), gc_paused():
            raise RuntimeError
        assert gc.isenabled()
    finally:
        (gc.enable if was else gc.disable)()
