"""The audit format (docs/audit-format.md): an export line's readable fields are derived from the
stored bytes it carries, so verification can check every field a person reads against the bytes
the hash chains cover; and chain heads signed with the service's Ed25519 key.

The standalone verifier (tools/verify_export.py) implements the same rules from the document
alone; tests hold the two to the same verdicts.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.base import event_id_of

FORMAT = 2
HEAD = "crmhead"
# The six extensions that carry the stored event and its hashes; every other field of a line is
# derived from them.
HASH_FIELDS = ("storedtopic", "storedstate", "streamhash", "prevstreamhash", "hash", "prevhash")
# Stored-state keys that are the envelope, not `data`.
ENVELOPE = ("timestamp", "originator_topic", "client_id", "occurred_at", "actor", "actor_role",
            "class_version")
# The eventsourcing library's transcodings: {"_type_": name, "_data_": value} -> JSON value.
_TRANSCODED: dict[str, Callable[[Any], Any]] = {
    "uuid_hex": lambda value: str(UUID(hex=value)),
    "datetime_iso": str,
    "decimal_str": str,
}


class FormatError(ValueError):
    """Stored bytes that are not an event state of the documented form."""


def plain(value: Any) -> Any:
    """A decoded stored state as plain JSON values (transcoded values replaced)."""
    if isinstance(value, dict):
        if "_type_" in value and "_data_" in value and len(value) == 2:
            convert = _TRANSCODED.get(value["_type_"])
            if convert is None:
                raise FormatError(f"unknown transcoding {value['_type_']!r}")
            return convert(value["_data_"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def readable(position: int, stream: UUID, version: int, topic: str,
             state: bytes) -> dict[str, Any]:
    """The readable fields of an export line, exactly as its stored bytes decode to them."""
    try:
        decoded = orjson.loads(state)
    except orjson.JSONDecodeError as error:
        raise FormatError(f"stored state is not JSON: {error}") from None
    if not isinstance(decoded, dict):
        raise FormatError("stored state is not a JSON object")
    values: dict[str, Any] = plain(decoded)
    if "occurred_at" not in values:  # an internal record (an idempotency key)
        return {"specversion": "1.0", "id": str(stream), "source": "crm", "position": position,
                "stream": str(stream), "version": version, "type": "crm.internal"}
    name = topic.rpartition(":")[2].rpartition(".")[2]
    ce_type = f"crm.{name}.v{int(values.get('class_version', 1))}"
    client = values.get("client_id")
    out: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event_id_of(stream, version)),
        "source": "crm",
        "type": ce_type,
        "subject": client if client is not None else str(stream),
        "time": values["occurred_at"],
        "datacontenttype": "application/json",
        "dataschema": f"urn:crm:schema:{ce_type}.data",
        "position": position,
        "stream": str(stream),
        "version": version,
        "recordedtime": values["timestamp"],
        "actor": values["actor"],
        "actorrole": values["actor_role"],
        "data": {k: v for k, v in values.items() if k not in ENVELOPE},
    }
    if client is not None:
        out["clientid"] = client
    return out


def unbound_field(line: dict[str, Any], *, format_: int = FORMAT) -> str | None:
    """The first readable field of a line that is not what its stored bytes decode to (a field
    added or missing counts), or None when every one is. Format 1 spelled `dataschema` as a
    path (/v1/schemas/X): a pointer derived from the type, not compared there."""
    try:
        expected = readable(int(line["position"]), UUID(str(line["stream"])),
                            int(line["version"]), str(line["storedtopic"]),
                            base64.b64decode(line["storedstate"], validate=True))
    except (FormatError, KeyError, TypeError, ValueError):
        return "storedstate"
    if format_ < 2 and "dataschema" in line:
        expected["dataschema"] = line["dataschema"]
    for key, value in expected.items():
        if key not in line or _canonical(line[key]) != _canonical(value):
            return key
    extra = sorted(k for k in line if k not in expected and k not in HASH_FIELDS)
    return extra[0] if extra else None


def _canonical(value: Any) -> bytes:
    """Equal JSON values, equal bytes (1, 1.0 and true stay apart)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# Signed chain heads ------------------------------------------------------------------------------

def head_message(position: int, hash_hex: str, time: str) -> bytes:
    return f"crm chain head v1\n{position}\n{hash_hex}\n{time}\n".encode()


def public_key_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def signed_head(key: Ed25519PrivateKey | None, position: int, hash_hex: str,
                time: datetime) -> dict[str, Any]:
    """A chain head: {"crmhead": 1, position, hash, time, key, sig} (key and sig null when the
    service holds no signing key)."""
    when = time.isoformat()
    head: dict[str, Any] = {HEAD: 1, "position": position, "hash": hash_hex, "time": when,
                            "key": None, "sig": None}
    if key is not None:
        head["key"] = public_key_b64(key)
        head["sig"] = base64.b64encode(key.sign(head_message(position, hash_hex,
                                                             when))).decode()
    return head


def head_is_signed(head: dict[str, Any]) -> bool:
    """Whether the head's signature verifies with the key it names."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(head["key"], validate=True))
        public.verify(base64.b64decode(head["sig"], validate=True),
                      head_message(int(head["position"]), str(head["hash"]), str(head["time"])))
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


def new_signing_key() -> str:
    """base64 of a new Ed25519 private key (its 32-byte seed)."""
    return base64.b64encode(os.urandom(32)).decode()


def parse_signing_key(value: str) -> Ed25519PrivateKey:
    raw = base64.b64decode(value.strip(), validate=True)
    if len(raw) != 32:
        raise ValueError(f"a signing key decodes to 32 bytes, not {len(raw)}")
    return Ed25519PrivateKey.from_private_bytes(raw)


def signing_key(setting: str | None, sqlite_path: Path | None) -> Ed25519PrivateKey | None:
    """CRM_SIGNING_KEY, or on SQLite a key file beside the database made on first start (like
    the master key); None on PostgreSQL without the setting (heads are then unsigned)."""
    if setting is not None:
        return parse_signing_key(setting)
    if sqlite_path is None:
        return None
    path = sqlite_path.with_name(sqlite_path.stem + ".signing.key")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(new_signing_key())
    return parse_signing_key(path.read_text())


def load_head(text: str) -> dict[str, Any]:
    """An anchor as given on the command line: the JSON itself or a file holding it."""
    stripped = text.strip()
    if not stripped.startswith("{"):
        stripped = Path(stripped).read_text().strip()
    head = orjson.loads(stripped)
    if not isinstance(head, dict) or HEAD not in head:
        raise ValueError("not a signed chain head ({\"crmhead\": 1, ...})")
    return head
