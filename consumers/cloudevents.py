"""Domain events <-> CloudEvents 1.0 structured JSON: the shape every event has on the bus (§6).

Mapping (docs/bus.md has the full table):
  id = event id (uuid5 of stream and version), source = "crm", type = "crm.<EventType>.v<N>"
  (N = the event class's class_version), subject = the client id (the stream id for reference
  data), time = occurred_at, datacontenttype = application/json,
  dataschema = urn:crm:schema:<type>.data (the $id of the JSON Schema of `data`),
  data = the event's own fields as JSON (money a decimal string, instants RFC 3339, ids strings).
  Extensions: position, stream, version, recordedtime, actor, actorrole, clientid (absent for
  reference data), prevposition (the position of the previous event in the same partition, 0 for
  the first: a reader that has not kept it has missed something), hash (absent until the store
  supplies one).
Personal fields (each event class's PERSONAL) travel as the store holds them: sealed with the
client's data key ({"_pd_": 1, "t": ..., "c": ...}), so erasing a client makes its Kafka copies
unreadable too (§8); key holders unseal them after decoding.
The reverse mapping rebuilds the very domain object the store holds (types from the event class's
annotations), so projections fed from Kafka run the same code as embedded mode and replay.
"""

from __future__ import annotations

import functools
import hashlib
import types
import typing
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson

from domain.base import _EVENT_NS, CrmAggregate, event_id_of
from domain.catalogue import EVENT_TYPES, event_data, event_type, jsonable
from projections.personal import is_sealed

SPECVERSION = "1.0"
SOURCE = "crm"
TYPE_PREFIX = "crm."
CONTENT_TYPE = "application/json"
# `dataschema` is the absolute URI ($id) of the JSON Schema of `data` (CloudEvents 1.0), served
# by GET /v1/schemas/<that URI or crm.X.vN.data>; the whole record's schema is
# urn:crm:schema:crm.X.vN.
SCHEMA_URN = "urn:crm:schema:"
DATA_SUFFIX = ".data"
_EVENT_NS_BYTES = _EVENT_NS.bytes  # event ids are uuid5 in this namespace (domain.base)
# Envelope fields every domain event carries; the rest of the event is `data`.
_ENVELOPE = ("originator_id", "originator_version", "timestamp", "client_id", "occurred_at",
             "actor", "actor_role")


class CloudEventError(ValueError):
    """A record is not a CloudEvent this system can turn back into a domain event."""


def is_published(event: object) -> bool:
    """Contract events go on the bus; internal records (idempotency keys) never do."""
    return isinstance(event, CrmAggregate.Event) and EVENT_TYPES.get(event_type(event)) is type(
        event)


def class_version(cls: type) -> int:
    return int(getattr(cls, "class_version", 1))


def ce_type(name: str) -> str:
    """The CloudEvents type of an event type name, e.g. 'crm.ContactLogged.v1'."""
    return f"{TYPE_PREFIX}{name}.v{class_version(EVENT_TYPES[name])}"


def type_name(ce_type_value: str) -> str:
    """'crm.ContactLogged.v1' -> 'ContactLogged' (a version this code reads: its own, or an
    older one its upcasters bring up to date)."""
    return _type_and_version(ce_type_value)[0]


def _type_and_version(ce_type_value: str) -> tuple[str, int]:
    if not ce_type_value.startswith(TYPE_PREFIX):
        raise CloudEventError(f"not a CRM event type: {ce_type_value!r}")
    name, _, version = ce_type_value[len(TYPE_PREFIX):].rpartition(".v")
    if name not in EVENT_TYPES:
        raise CloudEventError(f"unknown event type {name!r}")
    current = class_version(EVENT_TYPES[name])
    if not (version.isdigit() and 1 <= int(version) <= current):
        raise CloudEventError(f"{name} version {version!r} is not one this code reads")
    return name, int(version)


def _upcast(cls: type, version: int, data: dict[str, Any]) -> dict[str, Any]:
    """A record published by older code (an older class_version) as this code's shape, by the
    event class's own upcasters (the store's decoder runs the same ones)."""
    current = class_version(cls)
    if version >= current:
        return data
    data = dict(data)
    while version < current:
        getattr(cls, f"upcast_v{version}_v{version + 1}")(data)
        version += 1
    return data


def key_of(event: Any) -> bytes:
    """The Kafka key: the client id (per-client order), the stream id for reference data."""
    return str(event.client_id or event.originator_id).encode()


def to_cloudevent(position: int, event: Any, *, prev_position: int | None = None,
                  hash_: str | None = None) -> dict[str, Any]:
    return _envelope(position, event, jsonable(event_data(event)), prev_position, hash_)


def _envelope(position: int, event: Any, data: Any, prev_position: int | None,
              hash_: str | None) -> dict[str, Any]:
    name = event_type(event)
    out: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": str(event_id_of(event.originator_id, event.originator_version)),
        "source": SOURCE,
        "type": ce_type(name),
        "subject": str(event.client_id or event.originator_id),
        "time": event.occurred_at.isoformat(),
        "datacontenttype": CONTENT_TYPE,
        "dataschema": f"{SCHEMA_URN}{ce_type(name)}{DATA_SUFFIX}",
        "position": position,
        "stream": str(event.originator_id),
        "version": event.originator_version,
        "recordedtime": event.timestamp.isoformat(),
        "actor": event.actor,
        "actorrole": event.actor_role,
        "data": data,
    }
    if event.client_id is not None:
        out["clientid"] = str(event.client_id)
    if prev_position is not None:
        out["prevposition"] = prev_position
    if hash_ is not None:
        out["hash"] = hash_
    return out


def to_record(position: int, event: Any, *, prev_position: int | None = None,
              hash_: str | None = None) -> tuple[dict[str, Any], bytes]:
    """The CloudEvent as sent (bytes, equal to `orjson.dumps(to_cloudevent(...))`) and its
    envelope (`data` left as the event holds it).

    orjson writes ids, instants, dates and enums exactly as `jsonable` spells them, in C: the
    recursive `jsonable` walk was the relay's largest cost per event. Anything orjson would
    spell differently or not at all (a key that is not a string, an unknown type) takes the
    `jsonable` path."""
    record = _envelope(position, event, event_data(event), prev_position, hash_)
    try:
        return record, orjson.dumps(record, default=_decimal)
    except TypeError:
        record["data"] = jsonable(record["data"])
        return record, orjson.dumps(record)


@functools.cache
def _type_attributes(name: str) -> tuple[str, str]:
    """`type` and `dataschema` of an event type (built once, not twice per event)."""
    type_ = ce_type(name)
    return type_, f"{SCHEMA_URN}{type_}{DATA_SUFFIX}"


def to_value(position: int, event: Any, *, prev_position: int | None = None,
             hash_: str | None = None) -> tuple[str, str, bytes]:
    """(id, type, the record's bytes) for the relay: the same bytes as `encode`, built faster.

    The envelope holds the ids and instants themselves and orjson writes them (in C) exactly as
    `str()` and `isoformat()` spell them, so no UUID is formatted in Python but the event id
    (tests/unit/test_relay_encoding.py checks the bytes against `to_cloudevent`)."""
    type_, schema = _type_attributes(event_type(event))
    event_id = _event_id(event.originator_id, event.originator_version)
    client = event.client_id
    out: dict[str, Any] = {
        "specversion": SPECVERSION,
        "id": event_id,
        "source": SOURCE,
        "type": type_,
        "subject": event.originator_id if client is None else client,
        "time": event.occurred_at,
        "datacontenttype": CONTENT_TYPE,
        "dataschema": schema,
        "position": position,
        "stream": event.originator_id,
        "version": event.originator_version,
        "recordedtime": event.timestamp,
        "actor": event.actor,
        "actorrole": event.actor_role,
        "data": event_data(event),
    }
    if client is not None:
        out["clientid"] = client
    if prev_position is not None:
        out["prevposition"] = prev_position
    if hash_ is not None:
        out["hash"] = hash_
    if _native(out):
        try:
            return event_id, type_, orjson.dumps(out, default=_decimal)
        except TypeError:
            pass
    return event_id, type_, to_record(position, event, prev_position=prev_position,
                                      hash_=hash_)[1]


def _event_id(originator_id: Any, originator_version: int) -> str:
    """`str(event_id_of(...))` (uuid5) without building a UUID object: a third of the cost of
    encoding an event went into the uuid module's Python code."""
    digest = bytearray(hashlib.sha1(_EVENT_NS_BYTES + f"{originator_id}:{originator_version}"
                                    .encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _native(out: dict[str, Any]) -> bool:
    """Envelope values orjson spells as `_envelope` does: UUIDs (or strings) and aware or naive
    datetimes whose offset is whole minutes (isoformat adds seconds to any other)."""
    for name in ("subject", "stream", "clientid"):
        value = out.get(name)
        if value is not None and type(value) not in (UUID, str):
            return False
    for name in ("time", "recordedtime"):
        value = out[name]
        if type(value) is not datetime:
            return False
        offset = value.utcoffset()
        if offset is not None and offset.seconds % 60:
            return False
    return True


def _decimal(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError  # orjson reports it as its own TypeError


def encode(position: int, event: Any, *, prev_position: int | None = None,
           hash_: str | None = None) -> bytes:
    return to_record(position, event, prev_position=prev_position, hash_=hash_)[1]


@functools.cache
def field_types(cls: type) -> dict[str, Any]:
    """The event class's own fields and their annotated types (envelope excluded)."""
    hints = typing.get_type_hints(cls)
    return {name: hint for name, hint in hints.items()
            if name not in _ENVELOPE and name != "originator_topic"
            and typing.get_origin(hint) is not typing.ClassVar}


def _identity(value: Any) -> Any:
    return value


@functools.cache
def _converter(hint: Any) -> Callable[[Any], Any]:
    """A JSON value back to the Python type the annotation names (the store's own types); None
    and sealed personal values pass unchanged. Built once per annotation: dispatching on the
    annotation for every value was most of the cost of decoding a record."""
    origin = typing.get_origin(hint)
    convert: Callable[[Any], Any] | None = None
    if hint is Any:
        convert = None
    elif origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        convert = _converter(options[0]) if len(options) == 1 else None
    elif origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        each = _converter(item)
        convert = lambda values: [each(v) for v in values]  # noqa: E731
    elif origin is dict:
        _key, item = typing.get_args(hint) or (str, Any)
        each = _converter(item)
        convert = lambda values: {k: each(v) for k, v in values.items()}  # noqa: E731
    elif hint is UUID:
        convert = UUID
    elif hint is datetime:
        convert = datetime.fromisoformat
    elif hint is date:
        convert = date.fromisoformat
    elif hint is Decimal:
        convert = Decimal
    elif hint is float:
        convert = lambda v: float(v) if isinstance(v, int) else v  # noqa: E731
    if convert is None:
        return _identity
    inner = convert

    def guarded(value: Any) -> Any:
        return value if value is None or is_sealed(value) else inner(value)

    return guarded


@functools.cache
def _plan(cls: type) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    return tuple((name, _converter(hint)) for name, hint in field_types(cls).items())


def from_cloudevent(ce: dict[str, Any]) -> tuple[int, Any]:
    """(position, domain event) from a CloudEvent of this system; CloudEventError if it is not."""
    try:
        name, version = _type_and_version(ce["type"])
        cls = EVENT_TYPES[name]
        data = _upcast(cls, version, ce["data"])
        kwargs = {field: convert(data[field]) for field, convert in _plan(cls)}
        client = ce.get("clientid")
        kwargs.update(
            originator_id=UUID(ce["stream"]), originator_version=int(ce["version"]),
            timestamp=datetime.fromisoformat(ce["recordedtime"]),
            client_id=UUID(client) if client is not None else None,
            occurred_at=datetime.fromisoformat(ce["time"]),
            actor=ce["actor"], actor_role=ce["actorrole"])
        if issubclass(cls, CrmAggregate.Created):
            # The aggregate's topic, as the store records it (module:Aggregate).
            kwargs["originator_topic"] = (
                f"{cls.__module__}:{cls.__qualname__.rsplit('.', 1)[0]}")
        return int(ce["position"]), cls(**kwargs)
    except CloudEventError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CloudEventError(f"malformed CloudEvent: {type(error).__name__}: {error}") from error


def decode(value: bytes) -> tuple[int, Any]:
    try:
        ce = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise CloudEventError(f"not JSON: {error}") from error
    if not isinstance(ce, dict):
        raise CloudEventError("not a JSON object")
    return from_cloudevent(ce)
