"""Export and import of history as CloudEvents JSON lines that verify offline.

The format is specified in docs/audit-format.md (format 2; format-1 files still import and
verify, without a head). Line 1 is a header: {"crmexport": 2, "scope": "full"|"client"|"range",
...}. Every other line is a CloudEvent (consumers.cloudevents) carrying, besides the usual
extensions, what the verifier needs without the database: `storedtopic` and `storedstate`
(base64 of the stored bytes: personal fields are ciphertext there), `streamhash`,
`prevstreamhash`, `hash` (the global chain) and `prevhash`; every other field is derived from
the stored bytes and checked against them. Each line verifies on its own; consecutive lines
must link (a full export links every line, so a removed, inserted or reordered line is named).
With `--with-keys`, the clients' data keys follow, wrapped by the master key (useless without
it; erased clients have none), and the key of the blind search index (`{"searchkey": ...}`,
wrapped the same way), so an import rebuilds the read models exactly as they were. The last
line is the store's chain head signed with the service's Ed25519 key ({"crmhead": 1, ...},
infra.audit).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.sqlite import SQLiteApplicationRecorder
from psycopg.sql import SQL, Identifier
from sqlalchemy import select

from domain.chain import GENESIS, Verdict, chain_hash, stream_hash
from infra.audit import FORMAT, HEAD, head_is_signed, readable, signed_head, unbound_field
from infra.chain import HASHES, hashes_before, stored_records
from infra.crypto import client_keys

HEADER = "crmexport"


def export_lines(container: Any, *, client_id: UUID | None = None,
                 recorded_from: datetime | None = None, recorded_to: datetime | None = None,
                 with_keys: bool = False, after: int = 0,
                 limit: int | None = None) -> Iterator[bytes]:
    """The header, the events (after position `after`, at most `limit` of them), the data keys
    if asked, and (unless `limit` makes it a page) the chain head signed with the service's key.

    Every readable field of a line is what its stored bytes decode to (infra.audit.readable),
    so a line shows an event in the class version it was stored in (`crm.X.v1` for a row an
    older release wrote; readers upcast it like any older record)."""
    app = container.app
    scope = "client" if client_id else "range" if (recorded_from or recorded_to or after
                                                   or limit) else "full"
    yield orjson.dumps({HEADER: FORMAT, "scope": scope,
                        "client": str(client_id) if client_id else None,
                        "from": recorded_from, "to": recorded_to, "after": after,
                        "limit": limit})
    previous_chain = GENESIS
    previous_stream: dict[UUID, bytes] = {}
    head = (after, GENESIS)
    written = 0
    wanted = str(client_id) if client_id else None
    for record in stored_records(app, after + 1):
        if limit is not None and written >= limit:
            break
        if record.stream_id not in previous_stream and (record.version > 1 or after):
            # A page that starts mid-history links to the hashes stored before it.
            chain, known = hashes_before(app, record.position,
                                         {record.stream_id: record.version})
            previous_stream.update(known)
            if after and not written and previous_chain == GENESIS:
                previous_chain = chain
        prev_stream = previous_stream.get(record.stream_id, GENESIS)
        prev_chain = previous_chain
        previous_chain = record.chain_hash or GENESIS
        previous_stream[record.stream_id] = record.stream_hash or GENESIS
        head = (record.position, previous_chain)
        line = readable(record.position, record.stream_id, record.version, record.topic,
                        record.state)
        if wanted is not None and line.get("clientid") != wanted:
            continue
        recorded = line.get("recordedtime")
        if recorded and (recorded_from or recorded_to):
            at = datetime.fromisoformat(recorded)
            if (recorded_from and at < recorded_from) or (recorded_to and at > recorded_to):
                continue
        line.update(storedtopic=record.topic,
                    storedstate=base64.b64encode(record.state).decode(),
                    streamhash=_hex(record.stream_hash), prevstreamhash=prev_stream.hex(),
                    hash=_hex(record.chain_hash), prevhash=prev_chain.hex())
        written += 1
        yield orjson.dumps(line)
    if with_keys:
        yield orjson.dumps({"searchkey": base64.b64encode(
            container.keyring.wrapped_search_key()).decode()})
        with container.engine.connect() as conn:
            for row in conn.execute(select(client_keys)):
                if client_id is None or row.client_id == client_id:
                    yield orjson.dumps({"datakey": str(row.client_id),
                                        "wrapped": base64.b64encode(row.wrapped).decode()})
    if limit is None:
        yield orjson.dumps(signed_head(getattr(container, "signer", None), head[0],
                                       head[1].hex(), container.clock()))


def current_head(container: Any) -> dict[str, Any]:
    """The store's chain head now (position, hash, time), signed: an anchor for auditors."""
    position, chain = 0, GENESIS
    found = chain_head(container.app)
    if found is not None:
        position, chain = found
    return signed_head(getattr(container, "signer", None), position, chain.hex(),
                       container.clock())


def chain_head(app: Any) -> tuple[int, bytes] | None:
    """(position, chain hash) of the last hashed event, None for an empty store."""
    recorder = app.recorder
    with recorder.datastore.transaction(commit=False) as c:
        if isinstance(recorder, SQLiteApplicationRecorder):
            c.execute(f"SELECT position, chain_hash FROM {HASHES} ORDER BY position DESC LIMIT 1")
            row = c.fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]))
        c.execute(SQL("SELECT position, chain_hash FROM {}.{} ORDER BY position DESC LIMIT 1")
                  .format(Identifier(recorder.datastore.schema), Identifier(HASHES)))
        found = c.fetchone()
        return None if found is None else (int(found["position"]), bytes(found["chain_hash"]))


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


@dataclass(frozen=True)
class ExportVerdict(Verdict):
    """A Verdict that also names the readable field an edit touched, and the export's head."""

    field: str | None = None
    head: dict[str, Any] | None = None  # the export's chain head line, if it has one
    signed: bool = False  # whether that head's signature verifies


def verify_lines(lines: Iterable[bytes], *, anchor: dict[str, Any] | None = None
                 ) -> ExportVerdict:
    """Offline, by the rules of docs/audit-format.md: every line's readable fields against its
    stored bytes, its hashes, the links between lines, the signed head at the end; with an
    `anchor` (a signed head kept from earlier), that the export extends the history it
    vouched for."""
    return _ExportCheck(anchor).run(lines)


class _ExportCheck:
    def __init__(self, anchor: dict[str, Any] | None) -> None:
        self.anchor = anchor
        self.header: dict[str, Any] = {}
        self.count = 0
        self.last: tuple[int, str] | None = None  # (position, hash) of the last line
        self.before_last: str | None = None
        self.seen: set[tuple[str, int]] = set()
        self.streams: dict[str, tuple[int, str]] = {}
        self.hashes: dict[int, str] = {}
        self.pending: int | None = None  # position of a line that does not link to the last
        self.head: dict[str, Any] | None = None

    def fail(self, problem: str, position: int | None, detail: str,
             field: str | None = None) -> ExportVerdict:
        return ExportVerdict(False, self.count, problem, position, detail,
                             field=field, head=self.head)

    def run(self, lines: Iterable[bytes]) -> ExportVerdict:
        for raw in lines:
            if not raw.strip():
                continue
            line = orjson.loads(raw)
            if HEADER in line:
                self.header = line
                continue
            if "datakey" in line or "searchkey" in line:
                continue
            if HEAD in line:
                self.head = line
                continue
            failed = self.line(line)
            if failed is not None:
                return failed
        if self.pending is not None:
            return self.fail("removed", self.pending, f"position {self.pending} does not link "
                             "to the line before it: events between them are missing")
        return self.finish()

    def line(self, line: dict[str, Any]) -> ExportVerdict | None:
        try:
            position, stream, version = int(line["position"]), str(line["stream"]), int(
                line["version"])
        except (KeyError, TypeError, ValueError):
            return self.fail("altered", None, "a line without position, stream or version",
                             "position")
        if self.head is not None:
            return self.fail("inserted", position, f"position {position} follows the signed "
                             "head")
        if self.pending is not None:
            if position < self.pending:
                return self.fail("reordered", self.pending, f"position {self.pending} comes "
                                 f"before position {position}")
            return self.fail("removed", self.pending, f"position {self.pending} does not link "
                             "to the line before it: events between them are missing")
        where = f"position {position}"
        if (stream, version) in self.seen:
            return self.fail("duplicate", position, f"{where}: stream {stream} version "
                             f"{version} appears twice")
        field = unbound_field(line, format_=int(self.header.get(HEADER, FORMAT)))
        if field is not None:
            return self.fail("altered", position, f"{where}: `{field}` is not what its stored "
                             "bytes say", field)
        state = base64.b64decode(line["storedstate"])
        try:
            expected = stream_hash(bytes.fromhex(line["prevstreamhash"]), UUID(stream), version,
                                   line["storedtopic"], state)
            chained = chain_hash(bytes.fromhex(line["prevhash"]), position, expected).hex()
        except (TypeError, ValueError):
            return self.fail("altered", position, f"{where}: malformed hashes", "hash")
        if line["streamhash"] != expected.hex():
            return self.fail("altered", position, f"{where}: its stored bytes, stream or "
                             "version do not match its stream hash", "storedstate")
        if line["hash"] != chained:
            return self.fail("altered", position, f"{where}: its position or chain hashes were "
                             "edited (the chain hash does not match)", "position")
        full = self.header.get("scope") == "full"
        if full:
            linked = self.last[1] if self.last else GENESIS.hex()
            if line["prevhash"] != linked:
                if self.last is not None and line["prevhash"] == self.before_last:
                    return self.fail("inserted", self.last[0], f"position {self.last[0]} was "
                                     "inserted: the line after it links to the one before it")
                self.pending = position
        if self.last is not None and position <= self.last[0] and self.pending is None:
            return self.fail("reordered", position, f"{where} comes after position "
                             f"{self.last[0]}")
        seen = self.streams.get(stream)
        if seen is not None and seen[0] == version - 1 and seen[1] != line["prevstreamhash"]:
            return self.fail("altered", position, f"{where} does not link to its stream",
                             "prevstreamhash")
        if self.header.get("scope") in ("full", "client") and (
                (seen is None and version != 1) or (seen is not None and seen[0] != version - 1)):
            return self.fail("removed", position, f"stream {stream} jumps to version {version}")
        self.streams[stream] = (version, line["streamhash"])
        self.seen.add((stream, version))
        self.hashes[position] = line["hash"]
        self.before_last = self.last[1] if self.last else GENESIS.hex()
        self.last = (position, line["hash"])
        self.count += 1
        return None

    def finish(self) -> ExportVerdict:
        head, signed = self.head, False
        last_hash = self.last[1] if self.last else None
        if head is not None:
            if head.get("sig") is not None:
                signed = head_is_signed(head)
                if not signed:
                    return self.fail("altered", head.get("position"), "the signature of the "
                                     "export's chain head does not verify", "head")
            try:
                position, chain = int(head["position"]), str(head["hash"])
            except (KeyError, TypeError, ValueError):
                return self.fail("altered", None, "a malformed chain head", "head")
            beyond = sorted(p for p in self.hashes if p > position)
            if beyond:
                return self.fail("inserted", beyond[0], f"position {beyond[0]} is beyond the "
                                 f"signed head (position {position})")
            if position in self.hashes and self.hashes[position] != chain:
                return self.fail("altered", position, f"position {position}: the chain hash "
                                 "differs from the signed head's", "head")
            if self.header.get("scope") == "full" and (self.last or (0, ""))[0] != position:
                return self.fail("removed", position, f"the export ends at position "
                                 f"{(self.last or (0, ''))[0]}; its head is at {position}",
                                 "head")
        elif int(self.header.get(HEADER, 1)) >= FORMAT and self.header.get("limit") is None:
            return self.fail("removed", None, "the export ends without its chain head "
                             "(cut short?)", "head")
        if self.anchor is not None:
            failed = self.check_anchor(self.anchor, signed)
            if failed is not None:
                return failed
        return ExportVerdict(True, self.count, last_chain_hash=last_hash, head=head,
                             signed=signed)

    def check_anchor(self, anchor: dict[str, Any], signed: bool) -> ExportVerdict | None:
        if not head_is_signed(anchor):
            return self.fail("anchor", anchor.get("position"), "the anchor's signature does "
                             "not verify")
        if signed and self.head is not None and self.head.get("key") != anchor.get("key"):
            return self.fail("anchor", anchor.get("position"), "the export's head is signed "
                             "by another key than the anchor")
        position = int(anchor["position"])
        if position == 0:
            return None
        if position not in self.hashes:
            return self.fail("anchor", position, f"the export holds no event at the anchor's "
                             f"position {position}")
        if self.hashes[position] != anchor["hash"]:
            return self.fail("anchor", position, f"the history up to position {position} "
                             "changed: its chain hash is not the one the anchor vouched for")
        return None


def import_lines(container: Any, lines: Iterable[bytes]) -> int:
    """Load a full export into an EMPTY store as it was: same positions, bytes and hashes."""
    app = container.app
    if int(app.recorder.max_notification_id() or 0):
        raise ValueError("import needs an empty store")
    events, hashes, keys = [], [], []
    search_key: bytes | None = None
    for raw in lines:
        line = orjson.loads(raw)
        if HEADER in line:
            if line.get("scope") != "full":
                raise ValueError("only a full export can be imported")
            continue
        if "datakey" in line:
            keys.append((UUID(line["datakey"]), base64.b64decode(line["wrapped"])))
            continue
        if "searchkey" in line:
            search_key = base64.b64decode(line["searchkey"])
            continue
        if HEAD in line:
            continue
        events.append((int(line["position"]), UUID(line["stream"]), int(line["version"]),
                       line["storedtopic"], base64.b64decode(line["storedstate"])))
        hashes.append((int(line["position"]), UUID(line["stream"]), int(line["version"]),
                       bytes.fromhex(line["streamhash"]), bytes.fromhex(line["hash"])))
    # Keys first: a follower that reads the events must find them.
    if search_key is not None:
        container.keyring.adopt_search_key(search_key)
    with container.engine.begin() as conn:
        for client, wrapped in keys:
            conn.execute(client_keys.insert().values(client_id=client, wrapped=wrapped,
                                                     created_at=container.clock()))
    _insert_raw(app, events, hashes)
    return len(events)


def _insert_raw(app: Any, events: list[tuple[Any, ...]], hashes: list[tuple[Any, ...]]) -> None:
    recorder = app.recorder
    table = recorder.events_table_name
    sqlite = "sqlite" in type(recorder.datastore).__module__
    with recorder.datastore.transaction(commit=True) as cursor:
        if sqlite:
            cursor.executemany(f"INSERT INTO {table} (rowid, originator_id, originator_version, "
                               "topic, state) VALUES (?,?,?,?,?)",
                               [(p, s.hex, v, t, st) for p, s, v, t, st in events])
            cursor.executemany(f"INSERT INTO {HASHES} VALUES (?,?,?,?,?)",
                               [(p, s.hex, v, sh, ch) for p, s, v, sh, ch in hashes])
        else:
            cursor.executemany(f"INSERT INTO {table} (notification_id, originator_id, "
                               "originator_version, topic, state) VALUES (%s,%s,%s,%s,%s)", events)
            cursor.executemany(f"INSERT INTO {HASHES} VALUES (%s,%s,%s,%s,%s)", hashes)
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'notification_id'), "
                           f"(SELECT COALESCE(MAX(notification_id), 1) FROM {table}))")
