"""The event store: eventsourcing's SQLite or PostgreSQL recorder, chosen by CRM_DATABASE_URL."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse
from uuid import UUID, SafeUUID

import msgspec
from eventsourcing.application import Application
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    JSONTranscoder,
    Transcoder,
    UUIDAsHex,
)
from eventsourcing.sqlite import SQLiteApplicationRecorder

from infra.chain import recorder_topic
from infra.settings import Settings
from projections.base import Undecodable

APP_NAME = "crm"


def store_env(settings: Settings) -> dict[str, str]:
    if settings.is_sqlite:
        path = settings.sqlite_path
        path.parent.mkdir(parents=True, exist_ok=True)
        return {"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "10", "APPLICATION_RECORDER_TOPIC": recorder_topic(True)}
    url = urlparse(settings.database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": unquote(url.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(url.password or ""),
        # The default waits forever for the table lock; a stuck writer should fail visibly.
        "POSTGRES_LOCK_TIMEOUT": "5",
        # Also the wait for a pooled connection; the library retries 10 times, so an outage
        # turns into a 503 after ~20 s instead of ~50 s.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "POSTGRES_POOL_SIZE": "10",
        "POSTGRES_MAX_OVERFLOW": "10",
        "POSTGRES_PRE_PING": "y",
        # Off: with concurrent writers a tailing reader was seen to miss events (STYLE.md).
        "POSTGRES_ENABLE_DB_FUNCTIONS": "n",
        "APPLICATION_RECORDER_TOPIC": recorder_topic(False),
    }


def read_model_url(settings: Settings) -> str:
    """SQLAlchemy URL of the read models: a file beside the event store, or the same database.

    On SQLite the read models live in their own file so projection writes never contend with
    event appends for the single SQLite writer lock."""
    if settings.is_sqlite:
        path = settings.sqlite_path
        return f"sqlite:///{path.with_name(path.stem + '.read' + (path.suffix or '.db'))}"
    return "postgresql+psycopg://" + settings.database_url.split("://", 1)[1]


def events_table(app: Application[Any]) -> str:
    return getattr(app.recorder, "events_table_name", "stored_events")


def position_lookup(app: Application[Any]) -> Callable[[UUID, int], int | None]:
    """(stream id, version) -> global position, for answering idempotent retries."""
    recorder: Any = app.recorder
    table = events_table(app)
    # isinstance, not the class's module name: the store's recorder is a subclass (infra.chain).
    if isinstance(recorder, SQLiteApplicationRecorder):
        sql = f"SELECT rowid FROM {table} WHERE originator_id=? AND originator_version=?"

        def lookup(stream: UUID, version: int) -> int | None:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, (stream.hex, version))
                row = cursor.fetchone()
                return int(row[0]) if row else None
    else:
        sql = (f"SELECT notification_id FROM {table} "
               "WHERE originator_id=%s AND originator_version=%s")

        def lookup(stream: UUID, version: int) -> int | None:
            with recorder.datastore.transaction(commit=False) as cursor:
                cursor.execute(sql, (stream, version))
                row = cursor.fetchone()
                return int(row["notification_id"]) if row else None
    return lookup


def sqlite_file(settings: Settings) -> Path | None:
    return settings.sqlite_path if settings.is_sqlite else None


def notification_reader(app: Application[Any]) -> Callable[[int, int], list[tuple[int, Any]]]:
    """(start, limit) -> [(position, domain event)] from the store's notification log, with
    personal fields left sealed as stored: what projections, the bus and exports read (§8).
    An event that cannot be decoded comes as an Undecodable in its place (issue 15).

    With the store's mapper (infra.crypto) a page is decoded from plain rows (issue 14.4); on
    SQLite they are read with the library's query for a page of notifications, as tuples."""
    sealed = getattr(app.mapper, "sealed", None)
    mapper = sealed() if sealed is not None else app.mapper
    recorder: Any = app.recorder
    decode_rows = getattr(mapper, "decode_rows", None)
    if decode_rows is None:
        def read(start: int, limit: int) -> list[tuple[int, Any]]:
            page: list[tuple[int, Any]] = []
            for n in recorder.select_notifications(start=start, limit=limit):
                try:
                    page.append((n.id, mapper.to_domain_event(n)))
                except Exception as error:  # parked by every projection, never a stop
                    page.append((n.id, _undecodable(n.originator_id, n.originator_version,
                                                    n.topic, error)))
            return page

        return read

    def decode(rows: list[Any], ids_as_text: bool) -> list[tuple[int, Any]]:
        try:
            with gc_paused():
                return decode_rows(rows, ids_as_text=ids_as_text)  # type: ignore[no-any-return]
        except Exception:  # one by one, to put each bad event's Undecodable in its place
            page: list[tuple[int, Any]] = []
            for row in rows:
                try:
                    page += decode_rows([row], ids_as_text=ids_as_text)
                except Exception as error:  # parked by every projection, never a stop
                    stream = row[1]
                    if ids_as_text:
                        with contextlib.suppress(ValueError):
                            stream = UUID(stream)
                    page.append((row[0], _undecodable(stream, row[2], row[3], error)))
            return page

    if isinstance(recorder, SQLiteApplicationRecorder):
        sql = (f"SELECT rowid, originator_id, originator_version, topic, state "
               f"FROM {recorder.events_table_name} WHERE rowid>=? ORDER BY rowid LIMIT ?")
        as_uuid = recorder.datastore.originator_id_type == "uuid"

        def read_sqlite(start: int, limit: int) -> list[tuple[int, Any]]:
            with recorder.datastore.transaction(commit=False) as c:
                c.sqlite_cursor.row_factory = None  # tuples
                c.execute(sql, (start, limit))
                rows = c.fetchall()
            return decode(rows, as_uuid)

        return read_sqlite

    def read_rows(start: int, limit: int) -> list[tuple[int, Any]]:
        return decode([(n.id, n.originator_id, n.originator_version, n.topic, n.state)
                       for n in recorder.select_notifications(start=start, limit=limit)], False)

    return read_rows


_gc_lock = threading.Lock()
_gc_pauses = 0  # decodes under way that paused the collector
_gc_was_enabled = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector paused while a page of events is built (other threads'
    decodes included; it is enabled again, if it was, when the last one ends). A page makes
    thousands of dicts, lists and events, none of them in a reference cycle, and each few
    hundred allocations started a collection that walked them all again, now and then the
    whole heap: ~10% of reading an event. The same collections run afterwards, far fewer."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        if _gc_pauses == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_pauses += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


def _undecodable(originator_id: Any, version: int, topic: str, error: Exception) -> Undecodable:
    return Undecodable(originator_id, version, topic, f"{type(error).__name__}: {error}")


def max_position(app: Application[Any]) -> int:
    return int(app.recorder.max_notification_id() or 0)


# Decoding stored state (issue 14.4). The library's JSONTranscoder decodes with the stdlib json
# module and an object_hook called for every JSON object, and builds each UUID with UUID(); that
# was ~60% of reading an event. StateDecoder gives the same dicts from the same bytes (the encode
# side is untouched): msgspec parses in C, then only the tagged values ({"_type_": name,
# "_data_": value}) are converted.
_UUIDS_KEPT = 1 << 16  # hex -> UUID: ids recur (a client's events, specialists); ~13 MiB at most
_FAST = (UUIDAsHex, DatetimeAsISO, DecimalAsStr)
_NONE: Any = object()  # a transcoding name that is never registered
_new = object.__new__
_setattr = object.__setattr__
_UNKNOWN_SAFETY = SafeUUID.unknown


class Plan:
    """The top-level keys of one event type seen holding a JSON object, by what they held: a
    tagged UUID, a tagged datetime, or anything else (sealed values, change sets, Decimals);
    and those seen holding a list of objects (a survey's questions). Learnt by StateDecoder; a
    key in the wrong list costs speed, never correctness."""

    __slots__ = ("arrays", "objects", "times", "uuids")

    def __init__(self) -> None:
        self.uuids: list[str] = []
        self.times: list[str] = []
        self.objects: list[str] = []
        self.arrays: list[str] = []

    def learn_array(self, key: str, items: list[Any]) -> None:
        if key not in self.arrays and any(item.__class__ is dict for item in items):
            self.arrays.append(key)

    def learn(self, key: str, value: dict[str, Any], uuid_hex: Any, datetime_iso: Any) -> None:
        if key in self.uuids or key in self.times or key in self.objects:
            return
        tagged = len(value) == 2 and "_data_" in value and isinstance(value["_data_"], str)
        name = value.get("_type_") if tagged else None
        if name is not None and name == uuid_hex:
            self.uuids.append(key)
        elif name is not None and name == datetime_iso:
            self.times.append(key)
        else:
            self.objects.append(key)


class StateDecoder:
    """Stored state -> the dict `transcoder.decode` returns, equal in every value and type.

    `decode(data, plan)`: the plan (one per event type) names the top-level keys seen holding a
    JSON object. Those objects are looked at directly: a tagged UUID, datetime or Decimal is
    converted, any other object is kept. Every JSON object of the tree starts with a `{` byte of
    its own (a brace inside a string only adds to the count, and no escape can make a structural
    one), so when the bytes hold exactly one `{` more than the objects looked at (the top
    level's), no other object exists: nothing else can be tagged, and the library's object_hook
    would have returned every other object unchanged. Otherwise the whole tree is walked
    bottom-up, exactly as the object_hook does, and the plan learns the keys. Anything this
    cannot parse or convert (NaN, out-of-range floats, lone surrogates, unknown transcodings,
    bad values) is decoded by the library's transcoder itself, so its answers and errors stay."""

    def __init__(self, transcoder: JSONTranscoder) -> None:
        self._slow = transcoder.decode
        self._names = transcoder.names
        self._loads = msgspec.json.Decoder().decode
        self._uuids: dict[str, UUID] = {}
        # Names whose transcoding is the library's own (so its decode is known exactly).
        self._fast = {name: type(t) for name, t in transcoder.names.items()
                      if type(t) in _FAST}
        # The names of the library's UUID and datetime transcodings, if registered (inlined).
        self._uuid_hex = next((n for n, t in self._fast.items() if t is UUIDAsHex), _NONE)
        self._datetime_iso = next((n for n, t in self._fast.items() if t is DatetimeAsISO),
                                  _NONE)

    @staticmethod
    def for_transcoder(transcoder: Transcoder) -> StateDecoder | None:
        """A decoder for this transcoder, or None when its decode is not the library's JSON."""
        if not isinstance(transcoder, JSONTranscoder):
            return None
        kind = type(transcoder)
        if (kind.decode is JSONTranscoder.decode
                and kind._decode_obj is JSONTranscoder._decode_obj):
            return StateDecoder(transcoder)
        return None

    def decode(self, data: bytes, plan: Plan) -> Any:
        if data.__class__ is not bytes:
            data = bytes(data)
        try:
            state = self._loads(data)
            if state.__class__ is not dict:
                return self._slow(data)
            seen = 1  # JSON objects looked at: the top level, then the plan's
            name = self._uuid_hex
            uuids = self._uuids
            for key in plan.uuids:
                value = state.get(key)
                if value.__class__ is dict and len(value) == 2 and value.get("_type_") == name:
                    text = value["_data_"]
                    state[key] = uuids.get(text) or self.uuid(text)
                    seen += 1
            name = self._datetime_iso
            for key in plan.times:
                value = state.get(key)
                if value.__class__ is dict and len(value) == 2 and value.get("_type_") == name:
                    state[key] = datetime.fromisoformat(value["_data_"])
                    seen += 1
            for key in plan.objects:
                value = state.get(key)
                if value.__class__ is dict:
                    if "_type_" not in value:
                        seen += 1  # kept as it is by the object_hook (if it holds no object)
                    elif len(value) == 2 and "_data_" in value:
                        converted = self._convert(value["_type_"], value["_data_"])
                        if converted is not None:
                            state[key] = converted
                            seen += 1
            for key in plan.arrays:
                value = state.get(key)
                if value.__class__ is list:
                    for item in value:
                        if item.__class__ is dict and "_type_" not in item:
                            seen += 1  # kept, as above
            if data.count(b"{") == seen and "_type_" not in state:  # (the top level is kept)
                return state
            return self._walk_top(state, plan)
        except Exception:  # the library's decode answers (or raises) instead
            return self._slow(data)

    def uuid(self, text: str) -> UUID:
        """UUID(text), kept for the next event naming the same id."""
        found = self._uuids.get(text)
        if found is None:
            if len(text) == 32 and text.isalnum():
                # What UUID(text) does with 32 letters and digits (nothing to strip), without
                # its argument handling: int(text, 16), is_safe unknown.
                found = _new(UUID)
                _setattr(found, "int", int(text, 16))
                _setattr(found, "is_safe", _UNKNOWN_SAFETY)
            else:
                found = UUID(text)
            if len(self._uuids) >= _UUIDS_KEPT:
                self._uuids.clear()
            self._uuids[text] = found
        return found

    def _convert(self, name: Any, data: Any) -> Any:
        """A UUID, datetime or Decimal by the library's own transcoding; None for other names
        or values (the library's transcoding takes them)."""
        kind = self._fast.get(name) if name.__class__ is str else None
        if kind is None or data.__class__ is not str:
            return None
        if kind is UUIDAsHex:
            return self.uuid(data)
        if kind is DatetimeAsISO:
            return datetime.fromisoformat(data)
        return Decimal(data)

    def _walk_top(self, state: dict[str, Any], plan: Plan) -> Any:
        for key, value in state.items():
            if value.__class__ is dict:
                plan.learn(key, value, self._uuid_hex, self._datetime_iso)
                state[key] = self._object(value)
            elif value.__class__ is list:
                plan.learn_array(key, value)
                self._array(value)
        return self._hook(state)

    def _object(self, obj: dict[str, Any]) -> Any:
        for key, value in obj.items():
            if value.__class__ is dict:
                obj[key] = self._object(value)
            elif value.__class__ is list:
                self._array(value)
        return self._hook(obj)

    def _array(self, items: list[Any]) -> None:
        for i, value in enumerate(items):
            if value.__class__ is dict:
                items[i] = self._object(value)
            elif value.__class__ is list:
                self._array(value)

    def _hook(self, obj: dict[str, Any]) -> Any:
        """The library's object_hook, for an object whose members are decoded already."""
        if len(obj) == 2 and "_type_" in obj and "_data_" in obj:
            name, data = obj["_type_"], obj["_data_"]
            converted = self._convert(name, data)
            if converted is not None:
                return converted
            return self._names[name].decode(data)  # KeyError: the library's error follows
        return obj
