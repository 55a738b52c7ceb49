#!/usr/bin/env python3
"""Verify a CRM audit export from its specification alone (docs/audit-format.md).

Standard library only, plus `cryptography` for the Ed25519 signatures of chain heads. It imports
nothing of the product: an auditor can read it next to the document and run it on a machine
that has never seen the service.

    python tools/verify_export.py EXPORT.jsonl [--anchor ANCHOR] [--json]

Exit status 0: the export verifies; 1: it does not (the first problem is named); 2: unusable
input. The verdict names the kind of problem (altered, removed, inserted, reordered, duplicate,
anchor), the position and, for an altered line, the field.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Callable
from typing import Any

GENESIS = "00" * 32
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2a43-9a4e-4c36-9f7e-3b0d2f1b8a11")
HASH_FIELDS = ("storedtopic", "storedstate", "streamhash", "prevstreamhash", "hash", "prevhash")
ENVELOPE = ("timestamp", "originator_topic", "client_id", "occurred_at", "actor", "actor_role",
            "class_version")
TRANSCODED: dict[str, Callable[[Any], Any]] = {
    "uuid_hex": lambda v: str(uuid.UUID(hex=v)), "datetime_iso": str, "decimal_str": str}


class Problem(Exception):
    def __init__(self, problem: str, position: int | None, detail: str,
                 field: str | None = None) -> None:
        super().__init__(detail)
        self.problem, self.position, self.detail, self.field = problem, position, detail, field


# §3 readable fields from the stored bytes ---------------------------------------------------------

def plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"_type_", "_data_"}:
            return TRANSCODED[value["_type_"]](value["_data_"])
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def readable(position: int, stream: str, version: int, topic: str, state: bytes) -> dict[str, Any]:
    values = plain(json.loads(state.decode("utf-8")))
    if not isinstance(values, dict):
        raise ValueError("stored state is not a JSON object")
    if "occurred_at" not in values:
        return {"specversion": "1.0", "id": stream, "source": "crm", "position": position,
                "stream": stream, "version": version, "type": "crm.internal"}
    name = topic.rpartition(":")[2].rpartition(".")[2]
    ce_type = f"crm.{name}.v{int(values.get('class_version', 1))}"
    client = values.get("client_id")
    out = {"specversion": "1.0",
           "id": str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream}:{version}")),
           "source": "crm", "type": ce_type,
           "subject": client if client is not None else stream,
           "time": values["occurred_at"], "datacontenttype": "application/json",
           "dataschema": f"urn:crm:schema:{ce_type}.data", "position": position,
           "stream": stream, "version": version, "recordedtime": values["timestamp"],
           "actor": values["actor"], "actorrole": values["actor_role"],
           "data": {k: v for k, v in values.items() if k not in ENVELOPE}}
    if client is not None:
        out["clientid"] = client
    return out


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def unbound_field(line: dict[str, Any], fmt: int) -> str | None:
    try:
        stream = str(uuid.UUID(str(line["stream"])))
        expected = readable(int(line["position"]), stream, int(line["version"]),
                            str(line["storedtopic"]),
                            base64.b64decode(line["storedstate"], validate=True))
    except (KeyError, TypeError, ValueError):
        return "storedstate"
    if fmt < 2 and "dataschema" in line:
        expected["dataschema"] = line["dataschema"]
    for key, value in expected.items():
        if key not in line or canonical(line[key]) != canonical(value):
            return key
    extra = sorted(k for k in line if k not in expected and k not in HASH_FIELDS)
    return extra[0] if extra else None


# §4 hashes ----------------------------------------------------------------------------------------

def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def stream_hash(prev: bytes, stream: str, version: int, topic: str, state: bytes) -> bytes:
    content = sha256(topic.encode("utf-8") + b"\x00" + state)
    return sha256(prev + uuid.UUID(stream).bytes + version.to_bytes(8, "big") + content)


def chain_hash(prev: bytes, position: int, s_hash: bytes) -> bytes:
    return sha256(prev + position.to_bytes(8, "big") + s_hash)


# §6 signed heads ----------------------------------------------------------------------------------

def head_is_signed(head: dict[str, Any]) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        message = f"crm chain head v1\n{int(head['position'])}\n{head['hash']}\n{head['time']}\n"
        key = Ed25519PublicKey.from_public_bytes(base64.b64decode(head["key"], validate=True))
        key.verify(base64.b64decode(head["sig"], validate=True), message.encode())
    except (InvalidSignature, KeyError, TypeError, ValueError):
        return False
    return True


# §5 the walk --------------------------------------------------------------------------------------

def verify(lines: list[bytes], anchor: dict[str, Any] | None) -> dict[str, Any]:
    header: dict[str, Any] = {}
    head: dict[str, Any] | None = None
    count, last, before_last = 0, None, None  # last: (position, hash)
    seen: set[tuple[str, int]] = set()
    streams: dict[str, tuple[int, str]] = {}
    hashes: dict[int, str] = {}
    pending: int | None = None
    try:
        for raw in lines:
            if not raw.strip():
                continue
            line = json.loads(raw)
            if "crmexport" in line:
                header = line
                continue
            if "datakey" in line or "searchkey" in line:
                continue
            if "crmhead" in line:
                head = line
                continue
            try:
                position = int(line["position"])
                stream, version = str(line["stream"]), int(line["version"])
            except (KeyError, TypeError, ValueError):
                raise Problem("altered", None, "a line without position, stream or version",
                              "position") from None
            if head is not None:
                raise Problem("inserted", position, "a line follows the signed head")
            if pending is not None:
                if position < pending:
                    raise Problem("reordered", pending, "out of order")
                raise Problem("removed", pending, "does not link to the line before it")
            if (stream, version) in seen:
                raise Problem("duplicate", position, f"{stream} v{version} appears twice")
            field = unbound_field(line, int(header.get("crmexport", 2)))
            if field is not None:
                raise Problem("altered", position, f"`{field}` is not what the stored bytes "
                              "say", field)
            state = base64.b64decode(line["storedstate"])
            try:
                s_hash = stream_hash(bytes.fromhex(line["prevstreamhash"]), stream, version,
                                     line["storedtopic"], state)
                c_hash = chain_hash(bytes.fromhex(line["prevhash"]), position, s_hash).hex()
            except (TypeError, ValueError):
                raise Problem("altered", position, "malformed hashes", "hash") from None
            if line["streamhash"] != s_hash.hex():
                raise Problem("altered", position, "stream hash mismatch", "storedstate")
            if line["hash"] != c_hash:
                raise Problem("altered", position, "chain hash mismatch", "position")
            if header.get("scope") == "full" and line["prevhash"] != (last[1] if last
                                                                       else GENESIS):
                if last is not None and line["prevhash"] == before_last:
                    raise Problem("inserted", last[0], "the next line skips it")
                pending = position
            if last is not None and position <= last[0] and pending is None:
                raise Problem("reordered", position, f"comes after position {last[0]}")
            known = streams.get(stream)
            if known and known[0] == version - 1 and known[1] != line["prevstreamhash"]:
                raise Problem("altered", position, "does not link to its stream",
                              "prevstreamhash")
            if header.get("scope") in ("full", "client") and (
                    (known is None and version != 1)
                    or (known is not None and known[0] != version - 1)):
                raise Problem("removed", position, f"stream {stream} jumps to v{version}")
            streams[stream] = (version, line["streamhash"])
            seen.add((stream, version))
            hashes[position] = line["hash"]
            before_last = last[1] if last else GENESIS
            last = (position, line["hash"])
            count += 1
        if pending is not None:
            raise Problem("removed", pending, "does not link to the line before it")
        signed = False
        if head is not None:
            if head.get("sig") is not None:
                signed = head_is_signed(head)
                if not signed:
                    raise Problem("altered", head.get("position"), "bad head signature", "head")
            h_pos, h_hash = int(head["position"]), str(head["hash"])
            beyond = sorted(p for p in hashes if p > h_pos)
            if beyond:
                raise Problem("inserted", beyond[0], "beyond the signed head")
            if h_pos in hashes and hashes[h_pos] != h_hash:
                raise Problem("altered", h_pos, "differs from the signed head", "head")
            if header.get("scope") == "full" and (last[0] if last else 0) != h_pos:
                raise Problem("removed", h_pos, "the export ends before its head", "head")
        elif int(header.get("crmexport", 1)) >= 2 and header.get("limit") is None:
            raise Problem("removed", None, "no chain head at the end", "head")
        if anchor is not None:
            a_pos = anchor.get("position")
            if not head_is_signed(anchor):
                raise Problem("anchor", a_pos, "the anchor's signature does not verify")
            if signed and head is not None and head.get("key") != anchor.get("key"):
                raise Problem("anchor", a_pos, "signed by another key than the anchor")
            if int(anchor["position"]) and hashes.get(int(anchor["position"])) != anchor["hash"]:
                raise Problem("anchor", a_pos, "the history up to the anchor changed or is "
                              "not in the export")
    except Problem as p:
        return {"ok": False, "events": count, "problem": p.problem, "field": p.field,
                "position": p.position, "detail": p.detail}
    return {"ok": True, "events": count, "problem": None, "field": None, "position": None,
            "detail": None, "chain_head": last[1] if last else None, "signed": signed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export", help="the .jsonl export")
    parser.add_argument("--anchor", help="a signed head kept earlier: its JSON or a file")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    anchor = None
    try:
        if args.anchor:
            text = args.anchor.strip()
            if not text.startswith("{"):
                with open(text, encoding="utf-8") as handle:
                    text = handle.read().strip()
            anchor = json.loads(text)
        with open(args.export, "rb") as handle:
            verdict = verify(handle.read().splitlines(), anchor)
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(f"cannot verify: {error}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(verdict))
    elif verdict["ok"]:
        print(f"ok: {verdict['events']} events; chain head {verdict['chain_head']}; "
              f"{'signed head verified' if verdict['signed'] else 'no signed head'}")
    else:
        where = f" ({verdict['field']})" if verdict["field"] else ""
        print(f"FAILED: {verdict['problem']}{where} at position {verdict['position']}: "
              f"{verdict['detail']}")
    return 0 if verdict["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
