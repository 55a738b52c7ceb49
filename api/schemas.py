"""API shapes (responses and the batch request); command models are the request bodies."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field


class WriteResult(BaseModel):
    id: UUID = Field(description="The id of the aggregate written (new or existing).")
    version: int = Field(description="Its stream version after the write (use in If-Match).")
    position: int = Field(description="Global position of the write; pass as ?min_position= "
                                      "to read your own write.")
    links: dict[str, UUID] = Field(default_factory=dict,
                                   description="Ids of what the write also created, e.g. the "
                                               "situation a complaint opened.")


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: str = Field(description="A command name, e.g. register_client, log_contact.",
                         examples=["log_contact"])
    data: dict[str, Any] = Field(description="The command's fields, ids included.")
    if_match: int | None = Field(default=None, description="Expected version of the target.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: Annotated[list[BatchItem], Field(min_length=1, max_length=1000)]


class BatchResult(BaseModel):
    results: list[WriteResult]
    position: int


class Actor(BaseModel):
    user: str
    role: str


class EventOut(BaseModel):
    event_id: UUID
    type: str
    position: int
    stream_id: UUID
    version: int
    client_id: UUID | None
    occurred_at: str
    recorded_at: str
    actor: Actor
    data: dict[str, Any]


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null at "
                                                "the end.")


class Problem(BaseModel):
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": Problem, "content": {"application/problem+json": {}},
             "description": desc}
    for status, desc in ((401, "No or unknown API key"), (403, "Role not allowed"),
                         (404, "Unknown id"), (409, "State or version conflict"),
                         (413, "Request body too large"),
                         (422, "Invalid input; `errors` names the fields"),
                         (429, "Rate limit exceeded (see Retry-After)"),
                         (503, "Store unavailable or read models behind (see Retry-After)"))
}
