"""JSON Schemas of the bus: one per event type, generated from the event classes' annotations.

The generated files are committed in consumers/schemas/ (`python -m consumers.schemas` rewrites
them) and served at GET /v1/schemas. Each describes the whole CloudEvent (envelope, extensions
and `data`). Readers must ignore members they do not know: adding a field is compatible;
removing one, or changing its type, is not (`incompatibilities` says which, and a test runs it
against the committed files). A new shape of an event is a new class_version, hence a new type
(crm.X.v2) and a new file beside the old one.
"""

from __future__ import annotations

import json
import types
import typing
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from consumers.cloudevents import (
    CONTENT_TYPE,
    DATA_SUFFIX,
    SCHEMA_URN,
    SOURCE,
    SPECVERSION,
    ce_type,
    class_version,
)
from consumers.cloudevents import field_types as event_fields
from domain.catalogue import EVENT_TYPES

SCHEMA_DIR = Path(__file__).parent / "schemas"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
DECIMAL_PATTERN = r"^-?[0-9]+(\.[0-9]+)?$"

_UUID = {"type": "string", "format": "uuid"}
_INSTANT = {"type": "string", "format": "date-time"}


def type_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a Python annotation, as jsonable() renders its values."""
    if hint is Any:
        return {}
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        nullable = len(options) < len(typing.get_args(hint))
        inner = type_schema(options[0]) if len(options) == 1 else {
            "anyOf": [type_schema(o) for o in options]}
        if not nullable:
            return inner
        if isinstance(inner.get("type"), str):
            return {**inner, "type": [inner["type"], "null"]}
        return {"anyOf": [inner, {"type": "null"}]}
    if origin in (list, tuple):
        args = [a for a in typing.get_args(hint) if a is not Ellipsis]
        return {"type": "array", "items": type_schema(args[0]) if len(set(args)) == 1 else {}}
    if origin is dict:
        _key, value = typing.get_args(hint) or (str, Any)
        item = type_schema(value)
        return {"type": "object", **({"additionalProperties": item} if item else {})}
    simple: dict[Any, dict[str, Any]] = {
        str: {"type": "string"}, bool: {"type": "boolean"}, int: {"type": "integer"},
        float: {"type": "number"}, UUID: _UUID, datetime: _INSTANT,
        date: {"type": "string", "format": "date"},
        Decimal: {"type": "string", "pattern": DECIMAL_PATTERN},
    }
    if hint in simple:
        return dict(simple[hint])
    raise TypeError(f"no JSON Schema for the annotation {hint!r}")


def file_name(name: str) -> str:
    return f"{name}.v{class_version(EVENT_TYPES[name])}.json"


# A personal field as published: sealed with the client's data key (infra/crypto.py).
SEALED = {
    "type": "object",
    "description": "A personal field sealed with the client's data key (AES-GCM); unreadable "
                   "for good once the client is erased.",
    "required": ["_pd_", "t", "c"],
    "properties": {"_pd_": {"const": 1}, "t": {"enum": ["s", "l", "d", "o"]},
                   "c": {"type": "string", "contentEncoding": "base64"}},
}


def field_schema(cls: type, field: str, hint: Any) -> dict[str, Any]:
    plain = type_schema(hint)
    # A change set (PERSONAL_KEYS) is an object whose personal values are sealed one by one;
    # "object or sealed" still describes it (a change set was once sealed whole).
    if field in getattr(cls, "PERSONAL", ()) or field in getattr(cls, "PERSONAL_KEYS", {}):
        return {"anyOf": [plain, {"$ref": "#/$defs/sealed"}]}
    return plain


def event_schema(name: str) -> dict[str, Any]:
    cls = EVENT_TYPES[name]
    fields = event_fields(cls)
    return {
        "$schema": DIALECT,
        "$id": f"{SCHEMA_URN}{ce_type(name)}",
        "title": name,
        "description": f"A {name} event as a CloudEvents 1.0 structured JSON record on "
                       "crm.events.v1 (docs/bus.md). Ignore members you do not know.",
        "type": "object",
        "required": ["specversion", "id", "source", "type", "subject", "time",
                     "datacontenttype", "position", "stream", "version", "recordedtime",
                     "actor", "actorrole", "data"],
        "properties": {
            "specversion": {"const": SPECVERSION},
            "id": _UUID,
            "source": {"const": SOURCE},
            "type": {"const": ce_type(name)},
            "subject": _UUID,
            "time": _INSTANT,
            "datacontenttype": {"const": CONTENT_TYPE},
            "dataschema": {"const": f"{SCHEMA_URN}{ce_type(name)}{DATA_SUFFIX}"},
            "position": {"type": "integer", "minimum": 1},
            "prevposition": {"type": "integer", "minimum": 0},
            "stream": _UUID,
            "version": {"type": "integer", "minimum": 1},
            "recordedtime": _INSTANT,
            "actor": {"type": "string"},
            "actorrole": {"type": "string"},
            "clientid": _UUID,
            "hash": {"type": "string"},
            "data": {
                "type": "object",
                "required": sorted(fields),
                "properties": {f: field_schema(cls, f, h) for f, h in sorted(fields.items())},
            },
        },
        "$defs": {"sealed": SEALED},
    }


def generate() -> dict[str, dict[str, Any]]:
    """File name -> schema, for every event type of the catalogue."""
    return {file_name(name): event_schema(name) for name in sorted(EVENT_TYPES)}


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


class IncompatibleSchemaError(Exception):
    """Regenerating would break readers of the committed schemas (a new class_version is due)."""


def write(directory: Path = SCHEMA_DIR, *, force: bool = False) -> list[Path]:
    """Rewrite the committed files; refuses an incompatible change unless forced."""
    directory.mkdir(parents=True, exist_ok=True)
    fresh = generate()
    old = committed(directory)
    problems = [f"{name}: {p}" for name, schema in fresh.items() if name in old
                for p in incompatibilities(old[name], schema)]
    if problems and not force:
        raise IncompatibleSchemaError("; ".join(problems))
    written = []
    for name, schema in fresh.items():
        path = directory / name
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


def committed(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """The committed schemas of the current class versions (older versions' files stay for
    readers of records published before: `superseded`)."""
    current = {file_name(name) for name in EVENT_TYPES}
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(directory.glob("*.json")) if p.name in current}


def superseded(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    """Committed schemas of older class versions, kept as they were."""
    current = {file_name(name) for name in EVENT_TYPES}
    return {p.name: json.loads(p.read_text(encoding="utf-8"))
            for p in sorted(directory.glob("*.json")) if p.name not in current}


def _accepts_all_of(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """True if `new` describes no value `old` did not (e.g. a field that stopped being null)."""
    if new == old:
        return True
    if "anyOf" in new:
        return all(_accepts_all_of(option, old) for option in new["anyOf"])
    if "anyOf" in old:
        return any(_accepts_all_of(new, option) for option in old["anyOf"])
    old_types, new_types = old.get("type"), new.get("type")
    if isinstance(old_types, list) and new_types is not None:
        narrowed = {k: v for k, v in old.items() if k != "type"}
        rest = {k: v for k, v in new.items() if k != "type"}
        wanted = {new_types} if isinstance(new_types, str) else set(new_types)
        return narrowed == rest and wanted <= set(old_types)
    return False


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Changes of `new` against `old` that would break a reader of `old`'s events."""
    problems = []
    for scope, before, after in (("", old, new),
                                 ("data.", old["properties"].get("data", {}),
                                  new["properties"].get("data", {}))):
        old_props, new_props = before.get("properties", {}), after.get("properties", {})
        for field, schema in sorted(old_props.items()):
            if scope == "" and field == "data":
                continue
            if field not in new_props:
                problems.append(f"{scope}{field} was removed")
            elif not _accepts_all_of(new_props[field], schema):
                problems.append(f"{scope}{field} changed type: {json.dumps(schema)} -> "
                                f"{json.dumps(new_props[field])}")
        for field in sorted(set(before.get("required", [])) - set(after.get("required", []))):
            if field in new_props:
                problems.append(f"{scope}{field} is no longer always present")
    return problems


def data_schema(envelope: dict[str, Any]) -> dict[str, Any]:
    """The JSON Schema of an event's `data` alone: what its records' `dataschema` names (the
    absolute URI `$id`, as CloudEvents 1.0 defines `dataschema`)."""
    ce = envelope["properties"]["type"]["const"]
    return {"$schema": DIALECT, "$id": f"{SCHEMA_URN}{ce}{DATA_SUFFIX}",
            "title": f"{envelope['title']} data",
            "description": f"The `data` of a {ce} CloudEvent (docs/bus.md). Ignore members you "
                           "do not know.",
            **envelope["properties"]["data"], "$defs": envelope.get("$defs", {})}


def find(type_or_name: str, directory: Path = SCHEMA_DIR) -> dict[str, Any] | None:
    """A committed schema by event type ('ContactLogged'), CloudEvents type
    ('crm.ContactLogged.v1') or `$id` ('urn:crm:schema:crm.ContactLogged.v1'); the current
    version for a bare name. With `.data` after the type (or the `dataschema` URI of a record):
    the schema of that event's `data` alone."""
    if type_or_name.startswith(SCHEMA_URN):
        type_or_name = type_or_name[len(SCHEMA_URN):]
    if type_or_name.endswith(DATA_SUFFIX):
        envelope = find(type_or_name[:-len(DATA_SUFFIX)], directory)
        return None if envelope is None else data_schema(envelope)
    schemas = {**superseded(directory), **committed(directory)}
    if type_or_name in EVENT_TYPES:
        return schemas.get(file_name(type_or_name))
    for schema in schemas.values():
        if schema["properties"]["type"]["const"] == type_or_name:
            return schema
    return None


if __name__ == "__main__":
    import sys

    for path in write(force="--force" in sys.argv[1:]):
        print(path)
