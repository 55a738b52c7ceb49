"""The published JSON Schemas: every real event validates, the committed files are what the code
generates, incompatible changes are named, and GET /v1/schemas serves them."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from consumers import schemas
from consumers.cloudevents import is_published, to_cloudevent
from domain.catalogue import EVENT_TYPES
from tests.integration.bus_support import every_event_type, sealed_reader
from tests.support import Api

FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _rfc3339(value: object) -> bool:
    # jsonschema checks date-time only with an optional package; ours needs an offset anyway.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("an instant needs a UTC offset")
    return True


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    return Draft202012Validator(schema, format_checker=FORMATS)


def test_the_committed_schemas_are_what_the_code_generates() -> None:
    committed, fresh = schemas.committed(), schemas.generate()
    # If this fails, an event class changed: run `python -m consumers.schemas` and commit.
    assert sorted(committed) == sorted(fresh)
    changed = [name for name in fresh if committed[name] != fresh[name]]
    assert changed == [], f"regenerate: python -m consumers.schemas ({changed})"


def test_no_event_changed_incompatibly_against_its_committed_schema() -> None:
    committed = schemas.committed()
    broken = {name: schemas.incompatibilities(committed[name], schema)
              for name, schema in schemas.generate().items() if name in committed}
    assert {n: p for n, p in broken.items() if p} == {}


def test_every_event_type_has_a_valid_schema_file() -> None:
    committed = schemas.committed()
    assert sorted(s["title"] for s in committed.values()) == sorted(EVENT_TYPES)
    # The meta-schema check is slow: check one whole file, then every distinct field schema of
    # every file gathered into one (the files differ only in their fields).
    Draft202012Validator.check_schema(committed["ContactLogged.v2.json"])
    distinct = {json.dumps(sub, sort_keys=True): sub for s in committed.values()
                for field, sub in [*s["properties"].items(),
                                   *s["properties"]["data"]["properties"].items()]
                if field != "data"}
    Draft202012Validator.check_schema({"type": "object", "properties": {
        str(n): sub for n, sub in enumerate(distinct.values())}})


def test_every_real_event_validates_against_its_schema(api: Api) -> None:
    every_event_type(api)
    # What the relay publishes: personal fields sealed with the client's key.
    events = [(p, e) for p, e in sealed_reader(api.container)(1, 10_000) if is_published(e)]
    assert {type(e).__name__ for _p, e in events} == set(EVENT_TYPES)
    for position, event in events:
        record = to_cloudevent(position, event, prev_position=position - 1, hash_="ab" * 32)
        schema = schemas.find(type(event).__name__)
        assert schema is not None
        validator(schema).validate(record)


def test_a_payload_that_breaks_its_schema_is_rejected() -> None:
    schema = schemas.find("PaymentReceived")
    assert schema is not None
    record = {
        "specversion": "1.0", "id": "0b5e1e7c-5c1b-5d1b-8d0a-2b8d1f6b0c11", "source": "crm",
        "type": "crm.PaymentReceived.v2", "subject": "8a6e0804-2bd0-4672-b79e-d1d1d1d1d1d1",
        "time": "2026-11-20T10:00:00+01:00", "datacontenttype": "application/json",
        "position": 7, "stream": "7c1b0a44-6e5b-4c5e-9f1f-3a3a3a3a3a3a", "version": 1,
        "recordedtime": "2026-11-20T09:00:01+00:00", "actor": "ann", "actorrole": "operator",
        "data": {"amount": "100.50", "currency": "EUR", "reference": None, "invoice_id": None},
    }
    validator(schema).validate(record)
    for path, bad in ((("data", "amount"), 100.5), (("data", "invoice_id"), "not-a-uuid"),
                      (("time",), "2026-11-20T10:00:00"), (("type",), "crm.PaymentReceived.v3")):
        broken = copy.deepcopy(record)
        target = broken
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        with pytest.raises(ValidationError):
            validator(schema).validate(broken)


def test_removing_a_field_or_changing_its_type_is_incompatible_adding_one_is_not() -> None:
    old = schemas.superseded()["ContactLogged.v1.json"]  # topic in clear, as v1 was

    def changed(edit: Any) -> list[str]:
        new = copy.deepcopy(old)
        edit(new["properties"]["data"])
        return schemas.incompatibilities(old, new)

    def remove_topic(data: dict[str, Any]) -> None:
        del data["properties"]["topic"]
        data["required"].remove("topic")

    assert changed(remove_topic) == ["data.topic was removed"]
    assert changed(lambda d: d["properties"].update(topic={"type": "integer"})) == [
        'data.topic changed type: {"type": "string"} -> {"type": "integer"}']
    assert changed(lambda d: d["properties"].update(topic={"type": ["string", "null"]})) == [
        'data.topic changed type: {"type": "string"} -> {"type": ["string", "null"]}']
    assert changed(lambda d: d["properties"].update(mood={"type": "string"})) == []
    # A field that can no longer be null, or no longer be sealed, only narrows what readers see.
    assert changed(lambda d: d["properties"].update(purpose={"type": "string"})) == []
    assert changed(lambda d: d["properties"].update(summary={"type": "string"})) == []
    assert changed(lambda d: d["properties"].update(summary={"type": "integer"})) == [
        'data.summary changed type: {"anyOf": [{"type": ["string", "null"]}, {"$ref": '
        '"#/$defs/sealed"}]} -> {"type": "integer"}']
    without_position = copy.deepcopy(old)
    del without_position["properties"]["position"]
    assert schemas.incompatibilities(old, without_position) == ["position was removed"]


def test_the_schemas_are_served_to_any_authenticated_role(api: Api) -> None:
    listing = api.ok("GET", "/v1/schemas", as_="analyst")
    assert len(listing["items"]) == len(EVENT_TYPES)
    assert {"type": "ContactLogged", "cloudevents_type": "crm.ContactLogged.v2",
            "url": "/v1/schemas/crm.ContactLogged.v2"} in listing["items"]
    by_name = api.get("/v1/schemas/ContactLogged", as_="auditor")
    assert by_name.status_code == 200
    assert by_name.headers["content-type"].startswith("application/schema+json")
    assert by_name.json() == schemas.committed()["ContactLogged.v2.json"]
    assert api.ok("GET", "/v1/schemas/crm.ContactLogged.v2") == by_name.json()
    assert api.get("/v1/schemas/NoSuchEvent").status_code == 404
    assert api.get("/v1/schemas", as_=None).status_code == 401
