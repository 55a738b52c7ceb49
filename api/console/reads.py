"""Every figure the console shows, read through the API's own route functions.

A page never queries a read model itself: it calls the function that serves the matching API
route (`GET /v1/...`) with the same arguments, so what a page shows is byte for byte what the
API answers for the same key and query (tests/browser compares them). Only the arguments a
route declares are passed (`call`), so a route that gains an optional parameter keeps working
and one that replaces a parameter (`month` by `period`) is given what it takes.

Roles are the API's: each read names the role set of its route (docs/access.md).
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import anyio.from_thread
from fastapi import HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import TypeAdapter, ValidationError

from api.deps import AUDIT, OPERATE, READ_PERSONAL, READ_REPORTS, Principal, Services
from api.routers import (
    alerts,
    audit,
    client_reads,
    clients,
    reference,
    reports,
    service_reports,
    situations,
)
from commands.errors import CommandError, NotFoundError
from domain.errors import DomainError, InvalidValueError
from domain.values import Role

# The roles of GET /v1/alerts/stream (api.routers.alerts.Watcher).
WATCH = (Role.OPERATOR, Role.MANAGER, Role.ADMIN)


class ConsoleError(Exception):
    """A read or write the API would have refused: its status and the API's own words."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Read:
    """One API read: the route function serving it, its path and the roles allowed."""

    route: Callable[..., Any]
    path: str
    roles: tuple[Role, ...]


READS: dict[str, Read] = {
    "clients": Read(client_reads.clients, "/v1/clients", READ_PERSONAL),
    "card": Read(clients.client_card, "/v1/clients/{client_id}/card", READ_PERSONAL),
    "events": Read(clients.client_events, "/v1/clients/{client_id}/events", READ_PERSONAL),
    "work_orders": Read(service_reports.work_orders, "/v1/work-orders", READ_PERSONAL),
    "satisfaction": Read(service_reports.satisfaction, "/v1/reports/satisfaction",
                         READ_REPORTS),
    "payments": Read(reports.payments, "/v1/reports/payments", READ_REPORTS),
    "situations": Read(situations.situations, "/v1/situations", READ_REPORTS),
    "evidence": Read(situations.situation_evidence, "/v1/situations/{situation_id}/evidence",
                     READ_REPORTS),
    "reaction_times": Read(situations.reaction_times, "/v1/reports/reaction-times",
                           READ_REPORTS),
    "verify": Read(audit.verify, "/v1/audit/verify", AUDIT),
    "receipts": Read(audit.receipts, "/v1/audit/receipts", AUDIT),
    "audit_events": Read(audit.events, "/v1/audit/events", AUDIT),
    "survey_templates": Read(reference.survey_templates, "/v1/survey-templates",
                             READ_REPORTS),
    "specialists": Read(reference.specialists, "/v1/specialists", READ_PERSONAL),
    "alerts": Read(alerts.alert_stream, "/v1/alerts/stream", WATCH),
}
# The console's own writes go through the command layer with the roles of the write routes.
WRITE_ROLES = OPERATE


def allowed(role: str, read: str) -> bool:
    return role in READS[read].roles


def accepts(read: str, name: str) -> bool:
    """Whether the route of `read` takes the parameter `name` (e.g. `period`)."""
    return name in inspect.signature(READS[read].route).parameters


def call(read: str, request: Request, svc: Services, who: Principal, **params: Any) -> Any:
    """The answer of the route behind `read` for these query parameters, as the API gives it
    (JSON values). Raises ConsoleError where the API would answer an error."""
    spec = READS[read]
    if who.role not in spec.roles:
        raise ConsoleError(403, f"the role {who.role} may not do this; allowed: "
                                + ", ".join(sorted(spec.roles)))
    kwargs: dict[str, Any] = {}
    try:
        for name in inspect.signature(spec.route).parameters:
            if name == "request":
                kwargs[name] = request
            elif name == "svc":
                kwargs[name] = svc
            elif name in ("_who", "who"):
                kwargs[name] = who
            elif params.get(name) is not None:
                kwargs[name] = checked(spec.route, name, params[name])
        if inspect.iscoroutinefunction(spec.route):  # pages run in a worker thread
            answer = anyio.from_thread.run(functools.partial(spec.route, **kwargs))
        else:
            answer = spec.route(**kwargs)
    except REFUSALS as error:
        raise refusal(error) from None
    if isinstance(answer, Response):  # a body the route encoded itself: its very bytes
        body = bytes(answer.body)
        if answer.status_code >= 400:
            raise ConsoleError(answer.status_code, body.decode("utf-8", "replace"))
        return json.loads(body)
    if hasattr(answer, "model_dump"):  # a response model (the client's events)
        return answer.model_dump(mode="json")
    return answer


@functools.cache
def _adapter(route: Callable[..., Any], name: str) -> TypeAdapter[Any]:
    return TypeAdapter(get_type_hints(route, include_extras=True)[name])


def checked(route: Callable[..., Any], name: str, value: Any) -> Any:
    """A query value as the route's parameter takes it, checked by the parameter's own type
    and constraints (pattern, range, enum): what FastAPI does for the API."""
    try:
        return _adapter(route, name).validate_python(value)
    except ValidationError as error:
        raise ConsoleError(422, "; ".join(
            f"{name}: {e.get('msg')}" for e in error.errors())) from None


REFUSALS = (HTTPException, RequestValidationError, ValidationError, DomainError, CommandError)


def refusal(error: Exception) -> ConsoleError:
    """The status and words the API would answer for this error (api.errors maps the same)."""
    if isinstance(error, HTTPException):
        return ConsoleError(error.status_code, str(error.detail))
    if isinstance(error, (RequestValidationError, ValidationError)):
        return ConsoleError(422, "; ".join(_messages(error.errors())))
    field = getattr(error, "field", None)
    message = str(getattr(error, "message", error))
    status = (404 if isinstance(error, NotFoundError) and field is None
              else 422 if isinstance(error, (InvalidValueError, NotFoundError)) else 409)
    return ConsoleError(status, f"{field}: {message}" if field else message)


def _messages(errors: Any) -> list[str]:
    out = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p not in ("query", "body"))
        out.append(f"{where}: {error.get('msg')}" if where else str(error.get("msg")))
    return out
