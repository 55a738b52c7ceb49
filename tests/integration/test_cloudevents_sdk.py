"""CloudEvents as the spec says (issue 22.3): a whole export and every page of /v1/audit/events
parse with the CloudEvents SDK, and every `data` validates against the JSON Schema its
`dataschema` names (an absolute URI equal to that schema's `$id`, served by GET /v1/schemas)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from cloudevents.core.formats.json import JSONFormat
from jsonschema import Draft202012Validator

from demo import Loader, generate
from infra.bootstrap import Container, build
from infra.export import export_lines
from infra.settings import Settings
from tests.support import Api

SDK = JSONFormat()


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("ce")
    container: Container = build(Settings(database_url=f"sqlite:///{folder}/crm.db",
                                          rate_limit_per_minute=0))
    Loader(container.app, batch=100).load(generate(seed=3, clients=12, months=6,
                                                   start=date(2025, 5, 1)))
    api = Api(container)
    # A keyed write stores an idempotency record (typed crm.internal in the public forms).
    api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Keyed"},
           headers={"Idempotency-Key": "k-1"})
    container.follower.run_once()
    yield api
    container.close()


def _check(api: Api, records: list[dict[str, Any]], cache: dict[str, Any]) -> int:
    """Each record parses with the SDK; its data validates against its dataschema."""
    checked = 0
    for record in records:
        event = SDK.read(None, orjson.dumps(record))
        attributes = event.get_attributes()
        assert attributes["specversion"] == "1.0" and attributes["source"]
        if attributes["type"] == "crm.internal":
            assert "dataschema" not in attributes
            continue
        uri = attributes["dataschema"]
        assert uri.startswith("urn:crm:schema:") and uri.endswith(".data")
        if uri not in cache:
            served = api.get(f"/v1/schemas/{uri}", as_="analyst")
            assert served.status_code == 200, served.text
            assert served.headers["content-type"].startswith("application/schema+json")
            cache[uri] = served.json()
            assert cache[uri]["$id"] == uri
            Draft202012Validator.check_schema(cache[uri])
        Draft202012Validator(cache[uri]).validate(event.get_data())
        checked += 1
    return checked


def test_a_whole_export_is_cloudevents_with_valid_data(history: Api) -> None:
    lines = [orjson.loads(line) for line in export_lines(history.container)]
    header, records, head = lines[0], lines[1:-1], lines[-1]
    assert header["crmexport"] == 2 and "specversion" not in header  # the documented header
    assert "crmhead" in head  # docs/audit-format.md: the signed chain head ends every export
    assert len(records) == history.container.store_position()
    assert any(r["type"] == "crm.internal" for r in records)
    cache: dict[str, Any] = {}
    assert _check(history, records, cache) > 100
    assert len(cache) > 10


def test_audit_events_are_cloudevents_with_valid_data(history: Api) -> None:
    cache: dict[str, Any] = {}
    cursor: str | None = None
    seen = 0
    while True:
        page = history.ok("GET", "/v1/audit/events", as_="auditor",
                          params={"limit": 500, **({"cursor": cursor} if cursor else {})})
        _check(history, page["items"], cache)
        seen += len(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == history.container.store_position()


def test_the_envelope_schema_stays_under_its_own_name(history: Api) -> None:
    envelope = history.ok("GET", "/v1/schemas/crm.ContactLogged.v1", as_="analyst")
    assert envelope["$id"] == "urn:crm:schema:crm.ContactLogged.v1"
    assert envelope["properties"]["dataschema"] == {
        "const": "urn:crm:schema:crm.ContactLogged.v1.data"}
    data = history.ok("GET", "/v1/schemas/crm.ContactLogged.v1.data", as_="analyst")
    assert data == envelope["properties"]["data"] | {
        "$schema": envelope["$schema"], "$id": "urn:crm:schema:crm.ContactLogged.v1.data",
        "title": "ContactLogged data", "description": data["description"],
        "$defs": envelope["$defs"]}


def test_a_record_without_source_is_refused_by_the_sdk() -> None:
    with pytest.raises(Exception):  # noqa: B017 - the SDK's own error type varies by version
        SDK.read(None, orjson.dumps({"specversion": "1.0", "id": "x", "type": "crm.internal"}))
