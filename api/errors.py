"""Maps every error to an RFC 9457 problem+json answer, naming the offending fields."""

from __future__ import annotations

import logging
import sqlite3
from typing import Any

import psycopg
from eventsourcing.persistence import PersistenceError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError as SQLAlchemyOperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from commands.application import BatchItemError
from commands.errors import (
    CommandError,
    IdempotencyConflictError,
    NotFoundError,
    VersionConflictError,
)
from domain.errors import DomainError, InvalidTransitionError, InvalidValueError

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Payload too large",
          415: "Unsupported media type", 422: "Unprocessable content", 429: "Too many requests",
          500: "Internal server error", 503: "Service unavailable"}


class NotYet(Exception):
    """A read at a moment before the thing asked about existed (`at`) or was recorded
    (`as_of`): 404 naming the query parameter."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def problem(status: int, detail: str, *, errors: list[dict[str, Any]] | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": "about:blank", "title": TITLES.get(status, "Error"),
                            "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _pointer(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return "/".join(parts) if parts else "body"


def validation_errors(error: ValidationError | RequestValidationError,
                      prefix: str = "") -> list[dict[str, Any]]:
    out = []
    for item in error.errors():
        loc = list(item.get("loc", ()))
        # Path/query/header errors keep their location name; body errors name the field.
        field = _pointer(loc) if loc and loc[0] == "body" else ".".join(map(str, loc)) or "body"
        if item.get("type") == "json_invalid":  # loc holds a byte offset, not a field
            field = "body"
        out.append({"field": prefix + field.replace("/", "."), "message": item.get("msg", ""),
                    "type": item.get("type", "")})
    return out


def _status_of(error: DomainError | CommandError) -> int:
    if isinstance(error, NotFoundError):
        return 404 if error.field is None else 422
    if isinstance(error, InvalidValueError):
        return 422
    if isinstance(error, (InvalidTransitionError, VersionConflictError,
                          IdempotencyConflictError)):
        return 409
    return 422


def error_response(error: DomainError | CommandError, prefix: str = "",
                   whole: str | None = None) -> JSONResponse:
    """`whole` names the field when the error has none (e.g. `items.2` of a batch)."""
    status = _status_of(error)
    named = prefix + error.field if error.field else whole
    errors = [{"field": named, "message": error.message}] if named else None
    extra: dict[str, Any] = {}
    if isinstance(error, VersionConflictError) and error.current_version is not None:
        extra["current_version"] = error.current_version
    return problem(status, error.message, errors=errors, **extra)


def _in_path(request: Request, error: DomainError | CommandError) -> JSONResponse | None:
    """An unknown id given in the URL is a 404 naming the path parameter (in a body: 422)."""
    if isinstance(error, NotFoundError) and error.field in request.path_params:
        return problem(404, error.message,
                       errors=[{"field": f"path.{error.field}", "message": error.message}])
    return None


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, "the request is not valid", errors=validation_errors(exc))

    @app.exception_handler(ValidationError)
    async def _invalid_command(_r: Request, exc: ValidationError) -> JSONResponse:
        return problem(422, "the request is not valid", errors=validation_errors(exc))

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return _in_path(request, exc) or error_response(exc)

    @app.exception_handler(CommandError)
    async def _command(request: Request, exc: CommandError) -> JSONResponse:
        return _in_path(request, exc) or error_response(exc)

    @app.exception_handler(BatchItemError)
    async def _batch(_r: Request, exc: BatchItemError) -> JSONResponse:
        # Same names as the batch's validation errors: items.N.data.<field>.
        return error_response(exc.error, prefix=f"items.{exc.index}.data.",
                              whole=f"items.{exc.index}")

    @app.exception_handler(PersistenceError)
    @app.exception_handler(SQLAlchemyOperationalError)
    @app.exception_handler(sqlite3.OperationalError)
    @app.exception_handler(psycopg.OperationalError)
    async def _storage(_r: Request, exc: Exception) -> JSONResponse:
        # The database is unreachable, read-only or full: nothing was acknowledged; retry later.
        log.warning("storage unavailable: %s", type(exc).__name__)
        return problem(503, "the store is unavailable (unreachable, read-only or full); "
                            "nothing was written; retry later", headers={"Retry-After": "5"})

    @app.exception_handler(NotYet)
    async def _not_yet(_r: Request, exc: NotYet) -> JSONResponse:
        return problem(404, exc.message, errors=[{"field": exc.field, "message": exc.message}])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_r: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "an unexpected error occurred; it has been logged")
