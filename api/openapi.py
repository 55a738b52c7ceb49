"""The served OpenAPI document, made exact where FastAPI's generated one is not.

- Every error answer is declared as `application/problem+json` with the Problem schema (the
  media type the server sends), FastAPI's own 422 shape (HTTPValidationError) included.
- Every operation may answer the problems every request can meet (401, 403, 422, 429 and 503 for
  the routes that need a key; 404 for those with an id in the path).
- Links (OpenAPI 3.1 `links`) connect each create to the operations that read or change what it
  created, so a client or a stateful fuzzer can chain them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

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
        app.openapi_schema = spec
        return spec

    return openapi
