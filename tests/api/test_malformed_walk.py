"""Clean refusals (issue 21.2): every route of the served OpenAPI, with a malformed value of each
of its parameters (path, query, header) and of each top-level field of its body, answers 400 or
422 problem+json naming that parameter, and writes nothing.

The walk is generated from `app.openapi()`, so a route added later is walked too. A malformed
value is derived from the parameter's schema (format, enum, pattern, type, length); a free-text
parameter that accepts any string is malformed only if it is a cursor (opaque: anything we did
not give out is malformed) or has a length limit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.bootstrap import build
from infra.settings import Settings
from tests.support import Api, store_count

# Good values for the other parameters of the request, by name (else from the schema).
PERSON = {"kind": "customer", "form": "person", "name": "Ann Lee"}
GOOD = {"month": "2026-01", "event_type": "crm.ClientRegistered.v1", "period": "2026-01",
        "calendar": "default"}
# Routes whose every parameter accepts any value of its type: a name looked up (unknown: 404).
ANY_VALUE = {"GET /v1/schemas/{event_type}"}


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    where: str  # path | query | header | body
    name: str
    value: Any

    @property
    def field(self) -> str:
        return self.name if self.where == "body" else f"{self.where}.{self.name}"

    def __str__(self) -> str:
        return f"{self.method.upper()} {self.path} {self.field}={self.value!r:.40}"


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The schema itself: $ref followed, a nullable anyOf reduced to what is not null."""
    while True:
        if "$ref" in schema:
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]],
                      **extra}
            continue
        options = [s for s in schema.get("anyOf", ()) if s.get("type") != "null"]
        if len(options) == 1:
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}
            continue
        return schema


def malformed(spec: dict[str, Any], schema: dict[str, Any], name: str,
              where: str) -> Any | None:
    """A value this parameter must refuse, or None when every value of its type is fine."""
    schema = _resolve(spec, schema)
    options = [_resolve(spec, s) for s in schema.get("anyOf", ())]
    formats = {schema.get("format"), *(o.get("format") for o in options)}
    kind = schema.get("type")
    if "enum" in schema:
        return "no-such-value"
    if formats & {"date-time", "date"}:
        return "31/12/2026 noon"
    if "uuid" in formats:
        return "not-a-uuid"
    if kind in ("integer", "number"):
        return "many"
    if kind == "boolean":
        return "perhaps"
    if kind in ("array", "object"):
        return "not a list" if kind == "array" else "not an object"
    if kind == "string" or options:
        pattern = schema.get("pattern")
        if pattern is not None:  # a value outside it (a text field's pattern may be lax)
            return next(v for v in ("!!", "\x00", "") if not re.search(pattern, v))
        if "maxLength" in schema:
            return "x" * (schema["maxLength"] + 1)
        if "cursor" in name:
            return "not-a-cursor"
        if where == "body" and kind == "string":
            return 12345  # a number where text is expected
    return None


def good(spec: dict[str, Any], param: dict[str, Any]) -> Any:
    name = param["name"]
    if name in GOOD:
        return GOOD[name]
    schema = _resolve(spec, param.get("schema", {}))
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("format") == "uuid":
        return str(uuid.uuid4())
    raise AssertionError(f"no good value known for the required parameter {name!r}; add it "
                         "to GOOD")


def example(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value of the schema's shape that passes validation at the door (ids need not exist)."""
    schema = _resolve(spec, schema)
    if schema.get("type") == "object" or "properties" in schema:
        required = {*schema.get("required", ()),  # an anyOf of required sets: the first
                    *next((o.get("required", ()) for o in schema.get("anyOf", ())), ())}
        properties = schema.get("properties", {})
        value = {name: example(spec, sub) for name, sub in properties.items()
                 if name in required}
        # minProperties (a PATCH names at least one field, and not `occurred_at` alone, as its
        # `not` states): the first optional fields the `not` does not rule out
        excluded = set((schema.get("not") or {}).get("required", ()))
        for name, sub in properties.items():
            if len(value) >= schema.get("minProperties", 0):
                break
            if name not in value and name not in excluded:
                value[name] = example(spec, sub)
        return value
    if "anyOf" in schema:
        return example(spec, schema["anyOf"][0])
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if schema.get("examples"):
        return schema["examples"][0]
    kind, fmt = schema.get("type"), schema.get("format")
    if fmt == "uuid":
        return str(uuid.uuid4())
    if fmt == "date-time":
        return "2026-01-01T10:00:00+00:00"
    if fmt == "date":
        return "2026-01-01"
    if kind == "integer" or kind == "number":
        return schema.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [example(spec, schema.get("items", {}))
                for _ in range(max(schema.get("minItems", 0), 1))]
    return "x" * max(schema.get("minLength", 1), 1)


def _body_schema(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any] | None:
    content = (operation.get("requestBody") or {}).get("content") or {}
    schema = (content.get("application/json") or {}).get("schema")
    return None if schema is None else _resolve(spec, schema)


def cases(spec: dict[str, Any]) -> list[Case]:
    found = []
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            for param in operation.get("parameters", ()):
                value = malformed(spec, param.get("schema", {}), param["name"], param["in"])
                if value is not None:
                    found.append(Case(method, path, param["in"], param["name"], value))
            body = _body_schema(spec, operation)
            for name, schema in ((body or {}).get("properties") or {}).items():
                value = malformed(spec, schema, name, "body")
                if value is not None:
                    found.append(Case(method, path, "body", name, value))
    return found


def request_for(spec: dict[str, Any], case: Case) -> dict[str, Any]:
    """The case's request: good values for the other required parameters, its bad one."""
    operation = spec["paths"][case.path][case.method]
    path, query, headers = case.path, {}, {}
    for param in operation.get("parameters", ()):
        mine = param["in"] == case.where and param["name"] == case.name
        if not mine and not param.get("required"):
            continue
        value = case.value if mine else good(spec, param)
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", str(value))
        elif param["in"] == "query":
            query[param["name"]] = value
        elif param["in"] == "header":
            headers[param["name"]] = str(value)
    body, schema = None, _body_schema(spec, operation)
    if schema is not None:  # the rest of the body valid, so only the case's value is wrong
        body = example(spec, schema)
        if case.where == "body":
            body[case.name] = case.value
    return {"method": case.method.upper(), "path": path, "params": query, "headers": headers,
            "json": body}


def named(problem: dict[str, Any], case: Case) -> bool:
    fields = [e.get("field", "") for e in problem.get("errors") or ()]
    wanted = {case.field, case.name} if case.where == "header" else {case.field}
    return any(f in wanted or f.startswith(tuple(w + "." for w in wanted)) for f in fields)


def test_the_walk_covers_every_route(api: Api) -> None:
    spec = api.client.app.openapi()
    walked = {(c.method, c.path) for c in cases(spec)}
    params = [(path, method) for path, methods in spec["paths"].items()
              for method, op in methods.items()
              if op.get("parameters") or op.get("requestBody")]
    # Every route that takes anything is walked (a route whose every parameter accepts any
    # value would show here, and be worth a look).
    missing = [f"{m.upper()} {p}" for p, m in params
               if (m, p) not in walked and f"{m.upper()} {p}" not in ANY_VALUE]
    assert missing == []
    assert len(walked) >= 40


@pytest.fixture
def unlimited(any_settings: Settings) -> Iterator[Api]:
    """An API without the per-key rate limit (the walk sends some hundreds of requests)."""
    built = build(any_settings.model_copy(update={"rate_limit_per_minute": 0}))
    try:
        yield Api(built)
    finally:
        built.close()


def test_every_malformed_parameter_of_every_route_is_refused_by_name(unlimited: Api) -> None:
    any_api = unlimited
    spec = any_api.client.app.openapi()
    before = store_count(any_api.container)
    wrong = []
    for case in cases(spec):
        request = request_for(spec, case)
        answer = any_api.request(request.pop("method"), request.pop("path"), as_="admin",
                                 **request)
        problem = answer.json() if answer.headers.get("content-type", "").startswith(
            "application/problem+json") else {}
        if answer.status_code not in (400, 422) or not named(problem, case):
            wrong.append(f"{case}: {answer.status_code} {answer.text[:160]}")
    assert wrong == [], "\n".join(wrong)
    assert store_count(any_api.container) == before  # nothing half-written


@pytest.mark.parametrize(("param", "value"), [
    ("at", "2026-06-01"), ("as_of", "2026-06-01"), ("at", "2026-06-01T12:00:00+02:00")])
def test_at_and_as_of_take_a_date_or_an_instant(api: Api, param: str, value: str) -> None:
    for path in ("/v1/reports/segments", "/v1/situations", "/v1/work-orders",
                 "/v1/reports/controls"):
        answer = api.get(path, params={param: value})
        assert answer.status_code == 200, (path, answer.text)


def test_a_date_is_the_end_of_that_day_in_the_business_zone(api: Api) -> None:
    answer = api.ok("GET", "/v1/reports/segments", params={"at": "2026-06-01",
                                                           "tz": "Europe/Berlin"})
    assert answer["at"].startswith("2026-06-01T23:59:59.999999+02:00")
    assert re.match(r"2026-06-01T23:59:59\.999999\+00:00", api.ok(
        "GET", "/v1/situations", params={"at": "2026-06-01"})["at"])


def test_reads_before_a_client_existed_answer_alike_for_at_and_as_of(api: Api) -> None:
    """404 naming the parameter, whether the moment is before the client's earliest business
    event (`at`) or before it was first recorded (`as_of`); history dated before the
    registration still counts as the client's."""
    client = api.ok("POST", "/v1/clients", {**PERSON, "occurred_at": "2026-03-01T10:00:00Z"})
    cid = client["id"]
    api.ok("POST", f"/v1/clients/{cid}/contacts", {
        "channel": "phone", "direction": "inbound", "topic": "before",
        "occurred_at": "2026-02-01T10:00:00Z"})  # entered late, dated before the registration
    for path, extra in ((f"/v1/clients/{cid}/card", {}),
                        (f"/v1/clients/{cid}/brief", {"purpose": "regular"})):
        early = api.get(path, params={**extra, "at": "2026-01-31"})
        assert early.status_code == 404, early.text
        assert [e["field"] for e in early.json()["errors"]] == ["query.at"]
        assert api.get(path, params={**extra, "at": "2026-02-01"}).status_code == 200
        unknown = api.get(path, params={**extra, "as_of": "2000-01-01"})
        assert unknown.status_code == 404, unknown.text
        assert [e["field"] for e in unknown.json()["errors"]] == ["query.as_of"]
    events = api.get(f"/v1/clients/{cid}/events", params={"as_of": "2000-01-01"})
    assert events.status_code == 404
    assert [e["field"] for e in events.json()["errors"]] == ["query.as_of"]
