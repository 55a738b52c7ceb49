"""The page-fold engine: a projection's state as keyed rows, folded in memory, written per page.

A `FoldProjection` declares which rows each event needs (`needs`: rows of a table where a
column equals a value) and folds events into a `Rows` view with `get`, `where`, `put`,
`update` and `delete`; it never runs SQL. For each page the runner:

1. loads the rows the page needs that it does not hold yet, in one query per table and column
   (none for a table that was empty when the runner started: everything in it is in memory);
2. folds every event of the page into plain dicts, keeping an undo record per event, so an
   event that fails is taken back alone and parked (projections.deadletters);
3. writes the changed rows back with one bulk statement per table (an executemany upsert and
   an executemany delete), in the transaction that moves the projection's tracked position.

Rows stay in memory between pages, so a rebuild reads nothing back; when the rows held pass
the memory budget they are dropped (they are all written by then) and later pages load what
they need again. Another writer of the same tables (a second process, a blue/green swap) is
noticed by its tracking position and empties the cache.
"""

from __future__ import annotations

import json
import re
from abc import abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from typing import Any, ClassVar, NamedTuple

from sqlalchemy import JSON, Connection, LargeBinary, Table, Uuid, and_, bindparam, delete, select

from projections.base import Projection, UtcDateTime

Key = tuple[Any, ...]
Row = dict[str, Any]

LOAD_CHUNK = 500  # values per IN (...) list: within SQLite's and PostgreSQL's bind limits
DEFAULT_BUDGET_ROWS = 400_000  # rows held in memory across pages, all projections of a runner


class Need(NamedTuple):
    """The rows of `table` whose `column` equals `value` (the column may be the primary key)."""

    table: Table
    column: str
    value: Any


class FoldError(RuntimeError):
    """A projection asked for rows it did not declare in `needs` (a bug in the projection)."""


class _Table:
    """One table's rows in memory: a cache of stored rows plus this page's changes."""

    __slots__ = ("complete", "deleted", "dirty", "groups", "indexes", "key_columns",
                 "rows", "table")

    def __init__(self, table: Table) -> None:
        self.table = table
        self.key_columns = tuple(c.name for c in table.primary_key.columns)
        self.rows: dict[Key, Row] = {}
        self.dirty: set[Key] = set()
        self.deleted: set[Key] = set()
        # column -> values whose rows are all held (loaded, or the table was complete)
        self.groups: dict[str, set[Any]] = {}
        # column -> value -> keys held with that value (built on first `where`)
        self.indexes: dict[str, dict[Any, set[Key]]] = {}
        self.complete = False

    def key_of(self, row: Row) -> Key:
        columns = self.key_columns
        if len(columns) == 1:
            return (row[columns[0]],)
        return tuple([row[c] for c in columns])

    def holds(self, column: str, value: Any) -> bool:
        return self.complete or value in self.groups.get(column, ())

    def index(self, column: str) -> dict[Any, set[Key]]:
        found = self.indexes.get(column)
        if found is None:
            found = {}
            for key, row in self.rows.items():
                found.setdefault(row[column], set()).add(key)
            self.indexes[column] = found
        return found

    def set_row(self, key: Key, row: Row | None) -> None:
        old = self.rows.get(key)
        for column, index in self.indexes.items():
            if old is not None and (row is None or old[column] != row[column]):
                keys = index.get(old[column])
                if keys is not None:
                    keys.discard(key)
            if row is not None:
                index.setdefault(row[column], set()).add(key)
        if row is None:
            self.rows.pop(key, None)
        else:
            self.rows[key] = row

    def forget(self) -> None:
        self.rows.clear()
        self.dirty.clear()
        self.deleted.clear()
        self.groups.clear()
        self.indexes.clear()
        self.complete = False


class Rows:
    """A projection's tables in memory, as the fold sees them. Rows handed out are read-only:
    change them with `put` or `update`."""

    def __init__(self, tables: Sequence[Table], keeps: Sequence[Table] | None = None) -> None:
        self._tables = {t: _Table(t) for t in tables}
        # Tables whose rows are held between pages (those later events read back); the rest
        # (history, contacts, search tokens: most rows) are dropped once written.
        self._keeps = frozenset(tables if keeps is None else keeps)
        # (table state, key, row before, was dirty, was deleted) of the event being folded
        self._undo: list[tuple[_Table, Key, Row | None, bool, bool]] = []

    # -- what a fold uses -----------------------------------------------------------------------

    def get(self, table: Table, *key: Any) -> Row | None:
        state = self._tables[table]
        found = state.rows.get(key)
        if found is None and not state.complete and not self._held(state, key):
            raise FoldError(f"{table.name}: row {key} read but not declared in needs()")
        return found

    def where(self, table: Table, column: str, value: Any) -> list[Row]:
        """Every row with `column` == `value`, ordered by primary key."""
        state = self._tables[table]
        if not state.holds(column, value):
            raise FoldError(f"{table.name}: rows where {column} = {value!r} read but not "
                            "declared in needs()")
        keys = state.index(column).get(value, ())
        try:
            ordered = sorted(keys)
        except TypeError:  # None among the key values
            ordered = sorted(keys, key=_sortable)
        return [state.rows[k] for k in ordered]

    def put(self, table: Table, row: Row) -> None:
        """Insert or replace a whole row (every column given)."""
        state = self._tables[table]
        columns = state.key_columns
        key = (row[columns[0]],) if len(columns) == 1 else tuple([row[c] for c in columns])
        held = state.rows
        dirty, deleted = state.dirty, state.deleted
        self._undo.append((state, key, held.get(key), key in dirty, key in deleted))
        if state.indexes:
            state.set_row(key, dict(row))
        else:
            held[key] = dict(row)
        dirty.add(key)
        deleted.discard(key)

    def insert_missing(self, table: Table, row: Row) -> bool:
        """Put the row unless one with its key exists; True if it was put."""
        state = self._tables[table]
        if self.get(table, *state.key_of(row)) is not None:
            return False
        self.put(table, row)
        return True

    def update(self, table: Table, key: Key | Any, **changes: Any) -> bool:
        """Change some columns of a row; nothing if there is no such row (like SQL UPDATE)."""
        state = self._tables[table]
        key = key if isinstance(key, tuple) else (key,)
        old = self.get(table, *key)
        if old is None:
            return False
        self._remember(state, key)
        state.set_row(key, {**old, **changes})
        state.dirty.add(key)
        return True

    def update_where(self, table: Table, column: str, value: Any, **changes: Any) -> int:
        rows = self.where(table, column, value)
        state = self._tables[table]
        for row in rows:
            self.update(table, state.key_of(row), **changes)
        return len(rows)

    def delete(self, table: Table, *key: Any) -> bool:
        state = self._tables[table]
        if self.get(table, *key) is None:
            return False
        self._remember(state, key)
        state.set_row(key, None)
        state.dirty.discard(key)
        state.deleted.add(key)
        return True

    def delete_where(self, table: Table, column: str, value: Any) -> int:
        rows = self.where(table, column, value)
        state = self._tables[table]
        for row in rows:
            self.delete(table, *state.key_of(row))
        return len(rows)

    # -- what the runner uses -------------------------------------------------------------------

    def _held(self, state: _Table, key: Key) -> bool:
        # every row with one of the key's values in a column was loaded: the row is known
        return any(state.holds(column, value)
                   for column, value in zip(state.key_columns, key, strict=True))

    def _remember(self, state: _Table, key: Key) -> None:
        self._undo.append((state, key, state.rows.get(key), key in state.dirty,
                           key in state.deleted))

    def begin_event(self) -> None:
        self._undo.clear()

    def undo_event(self) -> None:
        """Take back every change of the event being folded (it failed)."""
        for state, key, before, was_dirty, was_deleted in reversed(self._undo):
            state.set_row(key, before)
            (state.dirty.add if was_dirty else state.dirty.discard)(key)
            (state.deleted.add if was_deleted else state.deleted.discard)(key)
        self._undo.clear()

    def held_rows(self) -> int:
        return sum(len(s.rows) for s in self._tables.values())

    def forget(self) -> None:
        for state in self._tables.values():
            state.forget()

    def mark_complete(self, conn: Connection) -> None:
        """Tables with no rows at all are wholly in memory from now on."""
        for table, state in self._tables.items():
            if conn.execute(select(1).select_from(table).limit(1)).first() is None:
                state.complete = True

    def load(self, conn: Connection, needs: Iterable[Need]) -> int:
        """Fetch the rows of every need not held yet: one query per table and column (in
        chunks). Returns the number of queries sent."""
        wanted: dict[tuple[Table, str], set[Any]] = {}
        for need in needs:
            state = self._tables[need.table]
            if not state.holds(need.column, need.value):
                wanted.setdefault((need.table, need.column), set()).add(need.value)
        queries = 0
        for (table, column), values in wanted.items():
            state = self._tables[table]
            ordered = list(values)
            for start in range(0, len(ordered), LOAD_CHUNK):
                chunk = ordered[start:start + LOAD_CHUNK]
                queries += 1
                for found in conn.execute(_loader(table, column), {"values": chunk}):
                    row = dict(found._mapping)
                    key = state.key_of(row)
                    # a row changed or deleted in memory is newer than its stored copy
                    if key not in state.rows and key not in state.deleted:
                        state.set_row(key, row)
            state.groups.setdefault(column, set()).update(values)
        return queries

    def write(self, conn: Connection) -> int:
        """Send this page's changes: one upsert and one delete executemany per table."""
        statements = 0
        for table, state in self._tables.items():
            if state.deleted:
                conn.execute(_deleter(table), [
                    {f"k_{c}": v for c, v in zip(state.key_columns, key, strict=True)}
                    for key in state.deleted])
                statements += 1
                state.deleted.clear()
            if state.dirty:
                rows = state.rows
                _upsert(conn, table, [rows[k] for k in state.dirty])
                statements += 1
                state.dirty.clear()
            if table not in self._keeps and state.rows:  # written, not read back: not held
                state.forget()
        return statements

    def changed(self) -> bool:
        return any(s.dirty or s.deleted for s in self._tables.values())


def _sortable(value: Any) -> Any:
    # Keys mix None and values of one type per column; order them without comparing None.
    if isinstance(value, tuple):
        return tuple(_sortable(v) for v in value)
    return (value is not None, str(value) if not isinstance(value, (int, float)) else value)


_LOADERS: dict[tuple[Table, str], Any] = {}
_DELETERS: dict[Table, Any] = {}


def _loader(table: Table, column: str) -> Any:
    stmt = _LOADERS.get((table, column))
    if stmt is None:
        stmt = select(table).where(table.c[column].in_(bindparam("values", expanding=True)))
        _LOADERS[(table, column)] = stmt
    return stmt


def _deleter(table: Table) -> Any:
    stmt = _DELETERS.get(table)
    if stmt is None:
        stmt = delete(table).where(and_(*[c == bindparam(f"k_{c.name}")
                                          for c in table.primary_key.columns]))
        _DELETERS[table] = stmt
    return stmt


class _Upsert(NamedTuple):
    sql: str
    # PostgreSQL: one statement for all the rows, each column's values bound as one array
    # (None: executemany of `sql`)
    arrays: str | None
    pick: Callable[[Row], tuple[Any, ...]]  # a row's values in column order
    # (column index, converter of a whole column of values) for the columns whose values the
    # driver cannot take as they are
    converters: tuple[tuple[int, Callable[[Sequence[Any]], list[Any]]], ...]


def _upsert(conn: Connection, table: Table, rows: list[Row]) -> None:
    """INSERT ... ON CONFLICT DO UPDATE for every row: one DB-API executemany (SQLite), or one
    statement binding each column as an array (PostgreSQL).

    SQLAlchemy's executemany builds a parameter dict per row through its compiled-statement
    machinery; that was half the cost of a rebuild. Here the rows go to the driver as tuples,
    inside the connection's transaction, and the values are bound column by column with the
    values each column's bind processor gives (what the ORM layer would store: UTC instants,
    UUIDs, JSON, decimals), without a processor call per value for the common types."""
    if not rows:
        return
    dialect = conn.dialect
    translate = conn.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(table.schema, table.schema)
    cache_key = (table, dialect.name, schema)
    plan = _UPSERTS.get(cache_key)
    if plan is None:
        plan = _plan_upsert(table, dialect, schema)
        _UPSERTS[cache_key] = plan
    params: list[Any] = list(map(plan.pick, rows))
    columns: list[Any] = []
    if plan.converters or plan.arrays is not None:
        columns = list(zip(*params, strict=True))
        for i, convert in plan.converters:
            columns[i] = convert(columns[i])
    cursor = conn.connection.cursor()
    try:
        if plan.arrays is not None and all(map(_one_type, columns)):
            # psycopg's executemany sends one statement per row through its pipeline, with
            # Python work per row on both sides (most of a PostgreSQL rebuild's write time).
            # Here each column goes as one array (binary) and the server unnests them into
            # rows: the same values to the same columns. A page's keys are distinct (`dirty` is
            # a set), so the statement never changes a row twice. A column mixing Python types
            # (which psycopg would dump with one element type) goes row by row instead.
            cursor.execute(plan.arrays, [list(c) for c in columns])
        else:
            if plan.converters:
                params = list(zip(*columns, strict=True))
            cursor.executemany(plan.sql, params)
    finally:
        cursor.close()


def _one_type(values: Sequence[Any]) -> bool:
    """Whether the non-null values are all of one Python type."""
    kinds = set(map(type, values))
    kinds.discard(type(None))
    return len(kinds) <= 1


def _plan_upsert(table: Table, dialect: Any, schema: str | None) -> _Upsert:
    names = tuple(c.name for c in table.columns)
    keys = [c.name for c in table.primary_key.columns]
    quote = dialect.identifier_preparer.quote
    target = (f"{quote(schema)}." if schema else "") + quote(table.name)
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    updates = ", ".join(f"{quote(n)} = excluded.{quote(n)}" for n in names if n not in keys)
    conflict = ", ".join(quote(k) for k in keys)
    head = f"INSERT INTO {target} ({', '.join(quote(n) for n in names)}) VALUES "
    marks = f"({', '.join([mark] * len(names))})"
    tail = (f" ON CONFLICT ({conflict}) "
            + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
    arrays = None
    if dialect.name == "postgresql":
        # each array cast to its column's type without length or precision: the insert then
        # checks (or rounds) the values as it does for single rows
        casts = [re.sub(r"\(.*\)", "", column.type.compile(dialect)) + "[]"
                 for column in table.columns]
        arrays = (head.removesuffix("VALUES ") + "SELECT * FROM unnest("
                  + ", ".join(f"%b::{cast}" for cast in casts) + ")" + tail)
    pick: Callable[[Row], tuple[Any, ...]] = (
        itemgetter(*names) if len(names) > 1 else lambda row: (row[names[0]],))
    converters = tuple((i, convert) for i, column in enumerate(table.columns)
                       if (convert := _column_converter(column.type, dialect)) is not None)
    return _Upsert(head + marks + tail, arrays, pick, converters)


def _column_converter(kind: Any, dialect: Any) -> Callable[[Sequence[Any]], list[Any]] | None:
    """How a column's values are bound, a whole column at a time: the values its SQLAlchemy
    bind processor gives (None stays NULL), with the processor's call per value inlined for
    UUIDs as text (SQLite), instants (UtcDateTime.bind_column) and JSON."""
    if isinstance(kind, LargeBinary):  # both drivers take bytes as they are
        return None
    process = kind._cached_bind_processor(dialect)
    if process is None:
        return None
    if isinstance(kind, UtcDateTime):
        return kind.bind_column(dialect)
    own = type(kind.dialect_impl(dialect))  # the processor as the dialect has it
    if own.bind_processor is Uuid.bind_processor and kind.as_uuid:
        # what Uuid's processor does without a native type: value.hex, i.e. this text
        return lambda values: [None if v is None else f"{v.int:032x}" for v in values]
    if (own.bind_processor is JSON.bind_processor
            and own._make_bind_processor is JSON._make_bind_processor
            and kind._str_impl.bind_processor(dialect) is None):
        # for anything but its NULL markers the processor is the dialect's serializer
        serialize = dialect._json_serializer or json.dumps
        return lambda values: [None if v is None else serialize(v)
                               if v.__class__ in _JSON_PLAIN else process(v) for v in values]
    return lambda values: [None if v is None else process(v) for v in values]


_JSON_PLAIN = frozenset({dict, list, str, int, float, bool})


_UPSERTS: dict[tuple[Table, str, str | None], _Upsert] = {}


class FoldProjection(Projection):
    """A read model folded in memory: `needs` names the rows an event reads or changes,
    `fold` changes them through `Rows`. No SQL runs inside `fold`. `keeps`: the tables whose
    rows later events read back, held between pages (None: all of them)."""

    keeps: ClassVar[tuple[Table, ...] | None] = None

    def needs(self, event: Any) -> Iterator[Need]:
        return iter(())

    @abstractmethod
    def fold(self, rows: Rows, event: Any, position: int) -> None: ...

    def apply(self, conn: Connection, event: Any, position: int) -> None:
        """One event on its own (re-drive of a parked event, tests): load, fold, write."""
        rows = Rows(self.tables, self.keeps)
        rows.load(conn, self.needs(event))
        rows.begin_event()
        self.fold(rows, event, position)
        rows.write(conn)


