"""Personal data in read models: kept sealed, opened only when a read answers.

Projections receive events as stored: every personal field (an event class's PERSONAL, and the
personal keys of a change set, PERSONAL_KEYS) is a sealed value `{"_pd_": 1, "t", "c"}`
encrypted with the client's data key (infra/crypto.py), or an empty value, which is never
sealed. A projection stores such a value as it came, plus the two facts needed to open it later:
the client ("k") and the field it was sealed for ("w", the AES-GCM associated data). So no
read-model table — and no database file, WAL or backup of one — ever holds a personal value in
clear; reads open them at the edge (`Personal.reveal`), and once the client's key is destroyed
every copy reads as the erased placeholder.

Presence survives sealing (a sealed value is never empty), so completeness checks need no key.
Search uses a blind index: keyed hashes of normalised words, made here with `Personal.blind`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol
from uuid import UUID


class Personal(Protocol):
    """What projections and reads need of the keyring (infra.crypto.Keyring provides it)."""

    def reveal(self, value: Any) -> Any: ...

    def blind(self, words: Iterable[str]) -> list[bytes]: ...

    def preload(self, client_ids: Iterable[UUID]) -> None:
        """Fetch these clients' keys in one round (a page of events reveals many)."""

    def erased(self, client_id: UUID) -> bool:
        """Whether the client's data key is gone (crypto-shredded)."""


class ClearPersonalData(ValueError):
    """A personal value reached a projection unsealed: the reader was wired wrongly."""


ERASED = "[erased]"


def is_sealed(value: Any) -> bool:
    """A personal value as stored and published: ciphertext under the client's data key."""
    return isinstance(value, dict) and value.get("_pd_") == 1


def type_tag(value: Any) -> str:
    """The type a sealed value records ("t"): string, list, dict or other."""
    return "s" if isinstance(value, str) else "l" if isinstance(value, list) else \
        "d" if isinstance(value, dict) else "o"


def placeholder(tag: str) -> Any:
    """What an erased value of type `tag` reads as (a fresh object each time)."""
    return {"s": ERASED, "l": [], "d": {}, "o": None}[tag]


def erased_like(value: Any) -> Any:
    """The erased placeholder of a stored value's type (a sealed value carries its type)."""
    return placeholder(value["t"] if is_sealed(value) else type_tag(value))


def _kept(client_id: UUID, where: str, value: Any) -> Any:
    if is_sealed(value):
        return {"_pd_": 1, "t": value["t"], "c": value["c"], "k": str(client_id), "w": where}
    if value in (None, "", [], {}):
        return value
    raise ClearPersonalData(f"{where} reached a projection in clear; projections must read "
                            "events with personal fields sealed")


def kept(event: Any, field: str) -> Any:
    """The value to store for personal field `field` of `event`."""
    return _kept(event.client_id, f"{type(event).__name__}.{field}", getattr(event, field))


def kept_changes(event: Any, field: str = "changes") -> dict[str, Any]:
    """A change set to store: its personal values kept sealed, the others as they are."""
    personal = type(event).PERSONAL_KEYS.get(field, ())
    return {k: _kept(event.client_id, f"{type(event).__name__}.{field}.{k}", v)
            if k in personal else v for k, v in getattr(event, field).items()}


def kept_or_legacy(event: Any, field: str) -> Any:
    """As `kept`, for a field that became personal in a later class version: a value an older
    version stored in clear is kept as it came. Its row cannot change (the hash chain covers
    it), and replaying an old history must give the digests it gave; reads hide it once the
    client is erased (`shown`). Only such fields use this: every other personal field still
    raises ClearPersonalData, so a reader wired without sealing is still caught."""
    value = getattr(event, field)
    return kept(event, field) if is_sealed(value) or value in (None, "", [], {}) else value


def shown(personal: Personal, client_id: UUID, value: Any) -> Any:
    """A personal value as a read answers it: a sealed one opened (or the placeholder once
    erased); a legacy clear one (`kept_or_legacy`) as it is, or the placeholder once erased."""
    if is_sealed(value):
        return personal.reveal(value)
    if value in (None, "", [], {}) or not personal.erased(client_id):
        return value
    return erased_like(value)
