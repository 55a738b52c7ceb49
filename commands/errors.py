"""Service-layer errors (domain errors pass through unchanged; the API maps both once).

    CommandError
    ├── NotFoundError            an id names nothing (of the expected kind)          -> 404/422
    ├── VersionConflictError     If-Match named another version, or a race was lost -> 409
    └── IdempotencyConflictError the key was used before with another request      -> 409
"""

from __future__ import annotations

from uuid import UUID


class CommandError(Exception):
    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFoundError(CommandError):
    """`field` is None when the id came from the URL path (404); else the body field (422)."""

    def __init__(self, kind: str, id: UUID | str, *, field: str | None = None) -> None:
        super().__init__(f"no {kind} with id {id}", field=field)
        self.kind = kind
        self.id = id


class VersionConflictError(CommandError):
    def __init__(self, message: str, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class IdempotencyConflictError(CommandError):
    pass
