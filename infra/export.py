"""Export and import of history as CloudEvents JSON lines that verify offline.

Line 1 is a header: {"crmexport": 1, "scope": "full"|"client"|"range", ...}. Every other line is a
CloudEvent (consumers.cloudevents) carrying, besides the usual extensions, what the verifier needs
without the database: `storedtopic` and `storedstate` (base64 of the stored bytes: personal fields
are ciphertext there), `streamhash`, `prevstreamhash`, `hash` (the global chain) and `prevhash`.
Each line verifies on its own; consecutive lines must link (a full export links every line, so a
removed, inserted or reordered line is named). With `--with-keys`, the clients' data keys follow,
wrapped by the master key (useless without it; erased clients have none), and the key of the
blind search index (`{"searchkey": ...}`, wrapped the same way), so an import rebuilds the
read models exactly as they were.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import StoredEvent
from sqlalchemy import select

from consumers.cloudevents import to_cloudevent
from domain.chain import GENESIS, Verdict, chain_hash, stream_hash
from infra.chain import HASHES, hashes_before, stored_records
from infra.crypto import PersonalDataMapper, client_keys

HEADER = "crmexport"


def export_lines(container: Any, *, client_id: UUID | None = None,
                 recorded_from: datetime | None = None, recorded_to: datetime | None = None,
                 with_keys: bool = False, after: int = 0,
                 limit: int | None = None) -> Iterator[bytes]:
    """The header, then the events (after position `after`, at most `limit` of them)."""
    app = container.app
    sealed = PersonalDataMapper(app.mapper, container.keyring, unseal=False)
    scope = "client" if client_id else "range" if (recorded_from or recorded_to or after
                                                   or limit) else "full"
    yield orjson.dumps({HEADER: 1, "scope": scope, "client": str(client_id) if client_id else None,
                        "from": recorded_from, "to": recorded_to, "after": after})
    previous_chain = GENESIS
    previous_stream: dict[UUID, bytes] = {}
    clients: set[UUID] = set()
    written = 0
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
        event = sealed.to_domain_event(StoredEvent(record.stream_id, record.version,
                                                   record.topic, record.state))
        prev_stream = previous_stream.get(record.stream_id, GENESIS)
        prev_chain = previous_chain
        previous_chain = record.chain_hash or GENESIS
        previous_stream[record.stream_id] = record.stream_hash or GENESIS
        client = getattr(event, "client_id", None)
        if client_id is not None and client != client_id:
            continue
        recorded = getattr(event, "timestamp", None)
        if (recorded_from and recorded and recorded < recorded_from) or (
                recorded_to and recorded and recorded > recorded_to):
            continue
        line = to_cloudevent(record.position, event, hash_=_hex(record.chain_hash)) if hasattr(
            event, "occurred_at") else {"specversion": "1.0", "id": str(record.stream_id),
                                        "source": "crm", "position": record.position,
                                        "stream": str(record.stream_id),
                                        "version": record.version, "type": "crm.internal"}
        line.update(storedtopic=record.topic,
                    storedstate=base64.b64encode(record.state).decode(),
                    streamhash=_hex(record.stream_hash), prevstreamhash=prev_stream.hex(),
                    hash=_hex(record.chain_hash), prevhash=prev_chain.hex())
        if client is not None:
            clients.add(client)
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


def _hex(value: bytes | None) -> str | None:
    return None if value is None else value.hex()


def verify_lines(lines: Iterable[bytes]) -> Verdict:
    """Offline: recompute every line's hashes and check that consecutive lines link."""
    header: dict[str, Any] = {}
    count = 0
    last_chain: str | None = None
    last_position = 0
    last_stream: dict[str, tuple[int, str]] = {}
    for raw in lines:
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        if HEADER in line:
            header = line
            continue
        if "datakey" in line or "searchkey" in line:
            continue
        position, stream = int(line["position"]), UUID(line["stream"])
        version = int(line["version"])

        def fail(problem: str, detail: str, pos: int = position, seen: int = count) -> Verdict:
            return Verdict(False, seen, problem, pos, detail)

        if position <= last_position:
            return fail("reordered", f"position {position} comes after {last_position}")
        state = base64.b64decode(line["storedstate"])
        expected = stream_hash(bytes.fromhex(line["prevstreamhash"]), stream, version,
                               line["storedtopic"], state)
        if line["streamhash"] is None or expected.hex() != line["streamhash"]:
            return fail("altered", f"position {position}: stored bytes do not match the hash")
        if chain_hash(bytes.fromhex(line["prevhash"]), position,
                      expected).hex() != line["hash"]:
            return fail("altered", f"position {position}: the chain hash does not match")
        if header.get("scope") == "full" and line["prevhash"] != (last_chain or GENESIS.hex()):
            return fail("removed", f"position {position} does not link to the line before it")
        seen = last_stream.get(line["stream"])
        if seen is not None and seen[0] == version - 1 and seen[1] != line["prevstreamhash"]:
            return fail("altered", f"position {position} does not link to its stream")
        if header.get("scope") in ("full", "client") and (
                (seen is None and version != 1) or (seen is not None and seen[0] != version - 1)):
            return fail("removed", f"stream {stream} jumps to version {version}")
        last_stream[line["stream"]] = (version, line["streamhash"])
        last_chain, last_position = line["hash"], position
        count += 1
    return Verdict(True, count, last_chain_hash=last_chain)


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
