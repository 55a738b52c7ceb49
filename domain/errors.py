"""The domain's error tree.

    DomainError                    a rule of the model was broken
    ├── InvalidValueError          a value is not acceptable (names the field)      -> 422
    └── InvalidTransitionError     the aggregate's state forbids this step           -> 409
        └── ClientErasedError      the client was erased; nothing more is recorded  -> 409

The service layer adds "not found" and concurrency errors; the API maps all of them once.
"""

from __future__ import annotations


class DomainError(Exception):
    """A rule of the domain model was broken."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidValueError(DomainError):
    """A value is not acceptable; `field` names it (dotted path within the command)."""


class InvalidTransitionError(DomainError):
    """The current state of the aggregate forbids the requested change."""


class ClientErasedError(InvalidTransitionError):
    """The client was erased (crypto-shredded): no further events are recorded for it."""
