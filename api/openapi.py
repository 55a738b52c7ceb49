"""The served OpenAPI document, made exact where FastAPI's generated one is not.

- Every error answer is declared as `application/problem+json` with the Problem schema (the
  media type the server sends), FastAPI's own 422 shape (HTTPValidationError) included.
- Every operation may answer the problems every request can meet (401, 403, 422, 429 and 503 for
  the routes that need a key; 404 for those with an id in the path).
- Links (OpenAPI 3.1 `links`) connect each create to the operations that read or change what it
  created, so a client or a stateful fuzzer can chain them.
- Every rule the API enforces is stated: the models' own constraints (patterns, bounds, enums,
  required), plus what FastAPI leaves out: text without the NUL character, IANA time zone names
  as an enum, the If-Match syntax, the batch's command names. Rules no schema can state (an id
  must name something that exists, an instant must not lie in the future, two fields that must
  agree) are listed on each operation's 422 answer as `x-crm-rules` (field and message patterns
  of the problems they raise) and in its description; tests/api/test_fuzz.py holds the API to
  them: a request valid by the schema is accepted, or refused with a declared status, a 422
  only by a listed rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import available_timezones

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api.routers.writes import IF_MATCH_PATTERN
from commands.registry import COMMANDS

PROBLEM_MEDIA = "application/problem+json"
PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_422 = ("#/components/schemas/HTTPValidationError",)

# The path parameter a create's new id fills, by the last segment of the create's path.
CREATED_ID = {"clients": "client_id", "contact-persons": "person_id",
              "planned-contacts": "planned_contact_id", "agreements": "agreement_id",
              "works": "work_id", "work-orders": "work_order_id", "surveys": "survey_id",
              "situations": "situation_id", "invoices": "invoice_id",
              "specialists": "specialist_id"}
# Ids a create's answer names in `links` (a complaint always opens a situation).
LINKED_IDS = {"register_complaint": {"situation_id": "$response.body#/links/situation_id"},
              "add_webhook": {"name": "$response.body#/name"}}
# Reads of a client, linked from every create naming the client (in its path or body).
CLIENT_READS = ("get_client_card", "list_client_events", "get_client_brief")

_ANONYMOUS = {"/healthz"}
_COMMON = {401: "No or unknown API key", 403: "Role not allowed",
           422: "Invalid input; `errors` names the fields",
           429: "Rate limit exceeded (see Retry-After)",
           503: "Store unavailable or read models behind (see Retry-After)"}


# Text every backend can hold (commands.fields.storable): no NUL character.
STORABLE = "^[^\\x00]*$"
TIME_ZONE_REF = "#/components/schemas/TimeZone"
# Inputs that name an IANA time zone: query parameters and body fields.
_ZONE_INPUTS = {"tz", "timezone"}


@dataclass(frozen=True)
class Rule:
    """A rule the API enforces that no JSON Schema can state. It applies to an operation with an
    input (`query.x`, `path.x`, `header.X` or a body field) matching `inputs`; its refusals are
    422 problems whose field matches `field` (empty: a problem naming no field) and whose
    message (or detail) matches `message`."""

    name: str
    inputs: str
    field: str
    message: str
    text: str


RULES = (
    Rule("exists", r"(.*_id|id|ids)", r"(.*_id|id|ids|.*\.\d+)", r"no [\w ]+ with id ",
         "ids in the body name things that exist (`no client with id ...`)"),
    Rule("not-in-the-future", r"occurred_at", r"occurred_at", r"lies in the future",
         "`occurred_at` at most 5 minutes after the server's clock"),
    Rule("stored-position", r"query\.min_position|(start_|from_)?position",
         r"query\.min_position|(start_|from_)?position", r"no event has been stored at position",
         "a store position (`min_position`, `position`...) at most the last stored one"),
    Rule("given-cursor", r"query\..*cursor", r"query\..*cursor",
         r"not a cursor this (list|section) gave",
         "a cursor only as a page of this list (and sort) gave it"),
    Rule("sort-of-section", r"query\.sort", r"query\.sort", r"one of .* for \w+",
         "`sort` one of those its section takes (see its description)"),
    Rule("defined-calendar", r"query\.calendar", r"query\.calendar", r"no such calendar",
         "`calendar` names a calendar that is defined"),
    Rule("period-or-month", r"query\.month", r"query\.(period|month)",
         r"give period or its alias month, not both", "`period` or `month`, not both"),
    Rule("increasing-bands", r"query\..*_bands", r"query\..*_bands", r"strictly increasing",
         "band thresholds strictly increasing"),
    Rule("to-after-from", r"query\.to", r"(query\.to)?",
         r"`to` must be after `from`|must be later than from", "`to` after `from`"),
    Rule("resolution-not-shorter", r"resolution_seconds", r"resolution_seconds",
         r"must not be shorter than the first reaction target",
         "`resolution_seconds` not shorter than `first_reaction_seconds`"),
    Rule("calendar-intervals", r"hours", r"hours",
         r"interval .* must satisfy|intervals must be sorted|no working hours",
         "each day's intervals start before they end, sorted and not overlapping"),
    Rule("secret-or-new", r"new_secret", r"new_secret|secret",
         r"give a secret or ask for a new one", "`secret` or `new_secret`, not both"),
    Rule("command-data", r"items", r"items\.\d+\.data(\..*)?", r".*",
         "each item's `data` holds what its command's route takes (its body, and the ids its "
         "path names) and is checked as that route checks it"),
)


def _inputs(spec: dict[str, Any], operation: dict[str, Any]) -> Iterator[str]:
    for parameter in operation.get("parameters", ()):
        yield f"{parameter['in']}.{parameter['name']}"
    yield from _body_properties(spec, operation)


def _body_schema(spec: dict[str, Any], operation: dict[str, Any]) -> dict[str, Any]:
    schema = (((operation.get("requestBody") or {}).get("content") or {})
              .get("application/json") or {}).get("schema") or {}
    for option in [schema, *schema.get("anyOf", ())]:
        ref = option.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]  # type: ignore[no-any-return]
    return schema


def _body_properties(spec: dict[str, Any], operation: dict[str, Any]) -> list[str]:
    return list(_body_schema(spec, operation).get("properties", {}))


def _state_rules(spec: dict[str, Any], operation: dict[str, Any]) -> None:
    """List on the operation's 422 the rules beyond the schema that apply to its inputs."""
    names = list(_inputs(spec, operation))
    rules = [r for r in RULES if any(re.fullmatch(r.inputs, n) for n in names)]
    answer = operation.get("responses", {}).get("422")
    if not rules or answer is None:
        return
    answer["x-crm-rules"] = [{"rule": r.name, "field": r.field, "message": r.message}
                             for r in rules]
    answer["description"] = (answer.get("description", "") + ". Besides the schema: "
                             + "; ".join(r.text for r in rules) + ".")


def _walk(schema: Any, visit: Callable[[dict[str, Any], str | None], None],
          name: str | None = None, components: dict[str, Any] | None = None,
          seen: set[int] | None = None) -> None:
    """Call `visit(subschema, property name)` on every subschema of a request schema, following
    references into `components` (each once)."""
    if not isinstance(schema, dict):
        return
    seen = set() if seen is None else seen
    ref = schema.get("$ref", "")
    if components is not None and ref.startswith("#/components/schemas/"):
        schema = components.get(ref.rsplit("/", 1)[1], {})
    if id(schema) in seen:
        return
    seen.add(id(schema))
    visit(schema, name)
    for key, sub in (schema.get("properties") or {}).items():
        _walk(sub, visit, key, components, seen)
    for keyword in ("items", "additionalProperties"):
        if isinstance(schema.get(keyword), dict):
            _walk(schema[keyword], visit, name, components, seen)
    for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in schema.get(keyword) or ():
            _walk(sub, visit, name, components, seen)


def _exact_strings(schema: dict[str, Any], name: str | None) -> None:
    """A text input: no NUL (every command refuses it); a zone name: one of the IANA zones."""
    if schema.get("type") != "string":
        return
    if name in _ZONE_INPUTS and "enum" not in schema:
        schema.clear()
        schema["$ref"] = TIME_ZONE_REF
    elif not ({"pattern", "enum", "const", "format"} & set(schema)):
        schema["pattern"] = STORABLE
    elif "pattern" in schema and "enum" not in schema and "not" not in schema:
        schema["not"] = {"pattern": "\\x00"}  # the pattern's own rule, and no NUL


def _zone_visitor(name: str) -> Callable[[dict[str, Any], str | None], None]:
    """A zone query parameter: a zone name, or empty for the default (as when absent)."""
    def visit(schema: dict[str, Any], _name: str | None) -> None:
        _exact_strings(schema, name)
        if schema.get("$ref") == TIME_ZONE_REF:
            schema["$ref"] = TIME_ZONE_REF + "OrDefault"

    return visit


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is absent or a string: FastAPI's `anyOf [X, null]` for an optional one
    would tell clients to send the text "null". Keeps X (title, description, default kept)."""
    options = schema.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del schema["anyOf"]
        if len(rest) == 1:
            schema.update(rest[0])
        else:
            schema["anyOf"] = rest
    return schema


def _exact_inputs(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    # A pattern of the names, not an enum: generated clients would make an enum class of ~600
    # members whose names collide (GMT0, GMT-0, GMT+0).
    names = "|".join(re.escape(z) for z in sorted(available_timezones()))
    schemas["TimeZone"] = {"type": "string", "pattern": f"^({names})$",
                           "description": "An IANA time zone name, e.g. Europe/Berlin."}
    schemas["TimeZoneOrDefault"] = {
        "type": "string", "pattern": f"^(|{names})$",
        "description": "An IANA time zone name, e.g. Europe/Berlin; empty: the default."}
    seen: set[int] = set()  # component schemas are made exact once
    for methods in spec["paths"].values():
        for operation in methods.values():
            for parameter in operation.get("parameters", ()):
                schema = _not_null(parameter.get("schema") or {})
                if parameter["name"] == "If-Match":
                    _walk(schema, lambda s, _n: s.update(pattern=IF_MATCH_PATTERN)
                          if s.get("type") == "string" else None)
                elif parameter["in"] == "query" and parameter["name"] in _ZONE_INPUTS:
                    _walk(schema, _zone_visitor(parameter["name"]))
            body = _body_schema(spec, operation)
            if body:
                _walk(body, _exact_strings, None, schemas, seen)
    item = schemas.get("BatchItem", {}).get("properties", {}).get("command")
    if item is not None:
        item["enum"] = sorted(COMMANDS)


def _problem_content() -> dict[str, Any]:
    return {PROBLEM_MEDIA: {"schema": {"$ref": PROBLEM_REF}}}


def _own_media_type(operation: dict[str, Any]) -> None:
    """A success declared with a model and a JSON media type of its own (`GET /v1/schemas/x`
    is `application/schema+json`): the model's schema under that media type only."""
    for status, response in operation.get("responses", {}).items():
        content = response.get("content") or {}
        own = [media for media, body in content.items()
               if media.endswith("+json") and not body.get("schema")]
        if status.startswith("2") and own and "schema" in content.get("application/json", {}):
            response["content"] = {own[0]: content["application/json"]}


def _errors_as_problems(path: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    _own_media_type(operation)
    if path not in _ANONYMOUS:
        for code, description in _COMMON.items():
            responses.setdefault(str(code), {"description": description})
        if "{" in path:
            responses.setdefault("404", {"description": "Unknown id"})
        if "requestBody" in operation:
            responses.setdefault("400", {"description": "The body is not parseable JSON"})
            responses.setdefault("413", {"description": "Request body too large"})
    for status, response in responses.items():
        if status[0] not in "45":
            continue
        content = response.get("content") or {}
        schema = (content.get("application/json") or {}).get("schema") or {}
        if schema.get("$ref") not in (None, PROBLEM_REF, *_FASTAPI_422):
            continue  # an error with a body of its own (readiness' 503)
        response["content"] = _problem_content()
        if response.get("description") == "Validation Error":
            response["description"] = _COMMON[422]


def _operations(spec: dict[str, Any]) -> dict[str, tuple[str, str, dict[str, Any]]]:
    found = {}
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            found[operation["operationId"]] = (path, method, operation)
    return found


def _params(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def _body_fields(spec: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    schema = (((operation.get("requestBody") or {}).get("content") or {})
              .get("application/json") or {}).get("schema") or {}
    ref = schema.get("$ref", "")
    if not ref.startswith("#/components/schemas/"):
        return set()
    target = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return set(target.get("required", ()))


def _add_links(spec: dict[str, Any]) -> None:
    operations = _operations(spec)
    for op_id, (path, method, operation) in operations.items():
        created = operation.get("responses", {}).get("201")
        if method != "post" or created is None:
            continue
        given = {name: f"$request.path.{name}" for name in _params(path)}
        new = CREATED_ID.get(path.rstrip("/").rsplit("/", 1)[-1])
        if new is not None:
            given[new] = "$response.body#/id"
        given.update(LINKED_IDS.get(op_id, {}))
        if "client_id" not in given and "client_id" in _body_fields(spec, operation):
            given["client_id"] = "$request.body#/client_id"
        links: dict[str, Any] = {}
        for target_id, (target_path, _m, _op) in operations.items():
            wanted = _params(target_path)
            if not wanted or target_id == op_id or not set(wanted) <= set(given):
                continue
            fresh = [n for n in wanted if not given[n].startswith("$request.path")]
            # A link goes from a create to what concerns the thing it made or named.
            if not fresh and target_id not in CLIENT_READS:
                continue
            if "client_id" in fresh and len(wanted) == 1 and new != "client_id" \
                    and target_id not in CLIENT_READS:
                continue  # from a non-client create: only the client's reads
            links[target_id] = {
                "operationId": target_id,
                "parameters": {n: given[n] for n in wanted},
                "description": f"`{target_id}` on what `{op_id}` wrote."}
        if links:
            created["links"] = dict(sorted(links.items()))


def customise(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The app's `openapi()`: FastAPI's document with the fixes above, built once."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = get_openapi(title=app.title, version=app.version, description=app.description,
                           routes=app.routes, openapi_version=app.openapi_version,
                           tags=app.openapi_tags, servers=app.servers)
        for path, methods in spec["paths"].items():
            for operation in methods.values():
                _errors_as_problems(path, operation)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        _add_links(spec)
        _exact_inputs(spec)
        for methods in spec["paths"].values():
            for operation in methods.values():
                _state_rules(spec, operation)
        app.openapi_schema = spec
        return spec

    return openapi
