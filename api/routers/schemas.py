"""The bus contract: the JSON Schema of every event type on crm.events.v1 (any signed-in role)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from api.deps import Principal, principal
from api.schemas import PROBLEM_RESPONSES, JsonSchemaDocument, SchemaList, described
from consumers import schemas

router = APIRouter(tags=["schemas"], responses=PROBLEM_RESPONSES)

AnyRole = Annotated[Principal, Depends(principal)]


@router.get("/schemas", operation_id="list_event_schemas", **described(SchemaList))
def list_schemas(_who: AnyRole) -> dict[str, Any]:
    """Every event type with its CloudEvents type and the URL of its JSON Schema."""
    items = []
    for schema in sorted(schemas.committed().values(), key=lambda s: s["$id"]):
        name = schema["title"]
        items.append({"type": name, "cloudevents_type": schema["properties"]["type"]["const"],
                      "url": f"/v1/schemas/{schema['properties']['type']['const']}"})
    # The catalogue is small and fixed per release: one page.
    return {"items": items, "next_cursor": None}


@router.get("/schemas/{event_type}", response_class=JSONResponse, operation_id="get_event_schema",
            response_model=None, responses={200: {
                "model": JsonSchemaDocument,
                "content": {"application/schema+json": {}},
                "description": "The JSON Schema; `$id` is its absolute URI."}})
def get_schema(event_type: str, _who: AnyRole) -> JSONResponse:
    """The JSON Schema (2020-12) of one event type, by name ('ContactLogged': its current
    version) or CloudEvents type ('crm.ContactLogged.v1')."""
    found = schemas.find(event_type)
    if found is None:
        raise HTTPException(404, f"no event type {event_type!r}; GET /v1/schemas lists them")
    return JSONResponse(found, media_type="application/schema+json")
