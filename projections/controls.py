"""The controls report (§5): what was not done in time, at `at` as known at `as_of`.

Sections: overdue planned contacts, late data entry (recorded_at - occurred_at above a
threshold, for activity events (contacts, planned contacts, agreements, works and feedback)
that occurred in the `period` before `at`, with the user who entered them), card completeness
(clients below 100% with the names of the missing fields), overdue agreements, completed work
without feedback after `feedback_days`. Reaction-time breaches come from the reaction-times
report (projections.reaction_times), added by the route, which holds the reaction policy.
Client ids only, no free text: the report is readable by analysts. The specialist filter uses
the planned contact's own specialist for planned contacts, and the client's specialist at `at`
(as known at `as_of`) for everything else.

Each section is a page (issue 16.2): its exact `count`, at most `limit` items in the order
`sort` names (each section's `SORTS`; the first is the default), `truncated` when more follow
and `next_cursor` to fetch them (`control_section`). Counts and pages are computed in SQL from
the activity tables and the controls facts (projections.control_facts): no section reads more
rows than its count and page, whatever the history holds. `controls_reference` is the former
computation (every row read, filtered and sorted in Python): the tests hold both to the same
answers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    String,
    and_,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy import Uuid as PgUuid

from domain.errors import InvalidValueError
from projections.activity import (
    agreements,
    late_entries,
    open_agreements,
    overdue_planned_contacts,
    planned_contacts,
    works,
    works_without_feedback,
)
from projections.clients import incomplete_clients
from projections.control_facts import control_assignments, control_completeness, control_entries
from projections.facts import happened, known
from projections.payments import assignments

SECTIONS = ("overdue_planned_contacts", "late_data_entry", "card_completeness",
            "overdue_agreements", "work_without_feedback")
# The orders a caller may pick per section; the first is the default.
SORTS: dict[str, tuple[str, ...]] = {
    "overdue_planned_contacts": ("due_at", "-due_at"),
    "late_data_entry": ("occurred_at", "-occurred_at", "-delay_seconds"),
    "card_completeness": ("registered", "-registered"),
    "overdue_agreements": ("due_at", "-due_at"),
    "work_without_feedback": ("completed_at", "-completed_at"),
}


@dataclass(frozen=True)
class Options:
    """What the sections are computed with: the moments, filter and thresholds."""

    at: datetime
    as_of: datetime | None
    specialist_id: UUID | None = None
    late_entry_hours: float = 24
    period: timedelta = timedelta(days=30)
    feedback_days: int = 7

    def thresholds(self, limit: int) -> dict[str, Any]:
        return {"late_entry_hours": self.late_entry_hours,
                "late_entry_period_days": self.period.days,
                "feedback_days": self.feedback_days, "items_per_section": limit}


def controls_report(conn: Connection, *, at: datetime, as_of: datetime | None,
                    specialist_id: UUID | None = None, late_entry_hours: float = 24,
                    period: timedelta = timedelta(days=30),
                    feedback_days: int = 7, limit: int = 100) -> dict[str, Any]:
    """Every section's count and first page (default order)."""
    options = Options(at, as_of, specialist_id, late_entry_hours, period, feedback_days)
    mine = _among(conn, _mine(conn, options))
    report: dict[str, Any] = {"at": at, "as_of": as_of, "specialist_id": specialist_id,
                              "thresholds": options.thresholds(limit)}
    for name in SECTIONS:
        report[name] = _section(conn, name, options, mine, SORTS[name][0], None, limit)
    report["reaction_time_breaches"] = None  # hook: the reaction-times projection
    return report


def control_section(conn: Connection, section: str, *, at: datetime, as_of: datetime | None,
                    specialist_id: UUID | None = None, late_entry_hours: float = 24,
                    period: timedelta = timedelta(days=30), feedback_days: int = 7,
                    sort: str | None = None, cursor: str | None = None,
                    limit: int = 100) -> dict[str, Any]:
    """One page of one section in the order `sort`, after `cursor` (a `next_cursor` this
    section gave for the same sort); the count is the section's whole count."""
    if section not in SECTIONS:
        raise InvalidValueError(f"unknown section {section!r}", field="section")
    chosen = sort or SORTS[section][0]
    if chosen not in SORTS[section]:
        raise InvalidValueError(f"one of {', '.join(SORTS[section])} for {section}",
                                field="sort")
    options = Options(at, as_of, specialist_id, late_entry_hours, period, feedback_days)
    return _section(conn, section, options, _among(conn, _mine(conn, options)), chosen, cursor,
                    limit)


# -- the specialist filter ------------------------------------------------------------------------

def _mine(conn: Connection, o: Options) -> Any:
    """The clients whose specialist at `at` (as known at `as_of`) is the one asked for, as a
    subquery of client ids (None: no filter). Only that specialist's assignment rows are
    candidates (by the index on specialist_id); one is the client's specialist at `at` when it
    is the latest change that occurred by `at`, or, with none by then, the first change (a
    client's specialist before its registration is the one it was registered with:
    projections.payments.Assignments)."""
    if o.specialist_id is None:
        return None
    t = control_assignments
    r = t.alias("r")
    other = t.alias("o")
    known_other = and_(other.c.client_id == r.c.client_id, known(other.c.recorded_at, o.as_of))
    later = or_(other.c.occurred_at > r.c.occurred_at,
                and_(other.c.occurred_at == r.c.occurred_at, other.c.version > r.c.version))
    earlier = or_(other.c.occurred_at < r.c.occurred_at,
                  and_(other.c.occurred_at == r.c.occurred_at, other.c.version < r.c.version))
    latest_by_at = and_(r.c.occurred_at <= o.at, ~exists().where(
        known_other, other.c.occurred_at <= o.at, later))
    first_before_any = and_(r.c.occurred_at > o.at, ~exists().where(
        known_other, or_(other.c.occurred_at <= o.at, earlier)))
    return (select(r.c.client_id)
            .where(r.c.specialist_id == o.specialist_id, known(r.c.recorded_at, o.as_of),
                   or_(latest_by_at, first_before_any)))


def _among(conn: Connection, mine: Any) -> Callable[[Any], ColumnElement[bool]] | None:
    """The specialist filter as a condition on a client column: its clients are read once per
    report and bound as one value (a JSON array on SQLite, an array on PostgreSQL), so each
    section's queries neither evaluate the subquery again nor bind thousands of parameters."""
    if mine is None:
        return None
    ids = list(conn.execute(mine).scalars())
    if conn.dialect.name == "sqlite":  # Uuid is stored as 32 hex digits there
        values = json.dumps([i.hex for i in ids])
        return lambda column: column.in_(
            select(literal_column("value")).select_from(
                func.json_each(literal(values, String())).table_valued("value")))
    return lambda column: column == func.any(literal(ids, ARRAY(PgUuid())))


# -- sections -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Key:
    """One column of a section's order: the expression, its kind (for the cursor) and way."""

    column: Any
    kind: str  # "time", "uuid", "int" or "str"
    descending: bool = False


@dataclass(frozen=True)
class _Spec:
    """A section as SQL: the row filter, the client column the specialist filter applies to
    (None: the section filters by specialist itself), the columns read, the orders and how a
    row becomes an item."""

    where: ColumnElement[bool]
    client: Any
    columns: Sequence[Any]
    orders: dict[str, tuple[_Key, ...]]
    item: Callable[[Any], dict[str, Any]]
    # Disjoint conditions whose union is "not closed by `at` as known at `as_of`", each a
    # range of a covering index (named: SQLite is told to page by it too, rather than by the
    # index of the order), counted and paged on its own (None: one query).
    branches: Sequence[tuple[ColumnElement[bool], Any, str]] | None = None


def _spec(name: str, o: Options) -> _Spec:
    at = o.at
    where: ColumnElement[bool]
    if name == "overdue_planned_contacts":
        p = planned_contacts.c
        where = and_(p.due_at < at, p.planned_at <= at, known(p.recorded_at, o.as_of))
        if o.specialist_id is not None:
            where = where & (p.specialist_id == o.specialist_id)
        return _Spec(where, None, (p.planned_contact_id, p.client_id, p.purpose, p.due_at,
                                   p.specialist_id),
                     _by_time(p.due_at, p.planned_contact_id),
                     lambda r: {"planned_contact_id": r.planned_contact_id,
                                "client_id": r.client_id, "purpose": r.purpose,
                                "due_at": r.due_at, "specialist_id": r.specialist_id,
                                "overdue_seconds": int((at - r.due_at).total_seconds())},
                     _not_closed(planned_contacts, p.closed_at, p.closed_recorded_at, o,
                                 "ix_activity_planned_open",
                                 "ix_activity_planned_closing_known"))
    if name == "late_data_entry":
        e = control_entries.c
        threshold = int(o.late_entry_hours * 3600)
        where = and_(e.delay_seconds > threshold, e.occurred_at > at - o.period,
                     e.occurred_at <= at, known(e.recorded_at, o.as_of))
        ties = (_Key(e.entity_id, "uuid"), _Key(e.type, "str"))
        orders = {"occurred_at": (_Key(e.occurred_at, "time"), *ties),
                  "-occurred_at": (_Key(e.occurred_at, "time", True),
                                   _Key(e.entity_id, "uuid", True), _Key(e.type, "str", True)),
                  "-delay_seconds": (_Key(e.delay_seconds, "int", True),
                                     _Key(e.occurred_at, "time"), *ties)}
        return _Spec(where, e.client_id, (e.type, e.entity_id, e.client_id, e.occurred_at,
                                          e.recorded_at, e.delay_seconds, e.actor), orders,
                     lambda r: {"type": r.type, "entity_id": r.entity_id,
                                "client_id": r.client_id, "occurred_at": r.occurred_at,
                                "recorded_at": r.recorded_at, "delay_seconds": r.delay_seconds,
                                "actor": r.actor})
    if name == "card_completeness":
        c = control_completeness.c
        if o.as_of is None:
            where = and_(c.incomplete == True, c.until.is_(None))  # noqa: E712 (index use)
        else:
            where = and_(c.incomplete == True, c.since <= o.as_of,  # noqa: E712
                         or_(c.until.is_(None), c.until > o.as_of))
        return _Spec(where, c.client_id, (c.client_id, c.form, c.score, c.missing, c.position),
                     {"registered": (_Key(c.position, "int"),),
                      "-registered": (_Key(c.position, "int", True),)},
                     lambda r: {"client_id": r.client_id, "form": r.form, "score": r.score,
                                "missing": list(r.missing)})
    if name == "overdue_agreements":
        a = agreements.c
        where = and_(a.due_at < at, a.made_at <= at, known(a.recorded_at, o.as_of))
        return _Spec(where, a.client_id, (a.agreement_id, a.client_id, a.due_at, a.made_at),
                     _by_time(a.due_at, a.agreement_id),
                     lambda r: {"agreement_id": r.agreement_id, "client_id": r.client_id,
                                "due_at": r.due_at, "made_at": r.made_at,
                                "overdue_seconds": int((at - r.due_at).total_seconds())},
                     _not_closed(agreements, a.outcome_at, a.outcome_recorded_at, o,
                                 "ix_activity_agreements_open",
                                 "ix_activity_agreements_outcome_known"))
    w = works.c
    where = and_(known(w.recorded_at, o.as_of),
                 happened(w.completed_at, w.completed_recorded_at, at, o.as_of),
                 w.completed_at < at - timedelta(days=o.feedback_days))
    return _Spec(where, w.client_id, (w.work_id, w.client_id, w.completed_at),
                 {"completed_at": (_Key(w.completed_at, "time"), _Key(w.work_id, "uuid")),
                  "-completed_at": (_Key(w.completed_at, "time", True),
                                    _Key(w.work_id, "uuid", True))},
                 lambda r: {"work_id": r.work_id, "client_id": r.client_id,
                            "completed_at": r.completed_at},
                 _not_closed(works, w.feedback_at, w.feedback_recorded_at, o,
                             "ix_activity_works_unrated", "ix_activity_works_feedback_known"))


def _not_closed(table: Any, occurred: Any, recorded: Any, o: Options, by_closing: str,
                by_record: str) -> list[tuple[ColumnElement[bool], Any, str]]:
    """`not happened(occurred, recorded, at, as_of)` as disjoint ranges, with the index each
    is a range of: never closed, closed after `at`, closed by `at` but recorded after
    `as_of`."""
    out = [(occurred.is_(None), table, by_closing), (occurred > o.at, table, by_closing)]
    if o.as_of is not None:
        out.append((and_(occurred <= o.at, recorded > o.as_of), table, by_record))
    return out


def _by_time(time: Any, key: Any) -> dict[str, tuple[_Key, ...]]:
    name = time.name
    return {name: (_Key(time, "time"), _Key(key, "uuid")),
            "-" + name: (_Key(time, "time", True), _Key(key, "uuid", True))}


def _section(conn: Connection, name: str, o: Options,
             mine: Callable[[Any], ColumnElement[bool]] | None, sort: str,
             cursor: str | None, limit: int) -> dict[str, Any]:
    spec = _spec(name, o)
    keys = spec.orders[sort]
    after = _decode(cursor, keys, (name, sort)) if cursor else None
    where = spec.where
    if mine is not None and spec.client is not None:
        where = and_(where, mine(spec.client))
    order = [k.column.desc() if k.descending else k.column for k in keys]
    labels = [f"k{i}" for i in range(len(keys))]
    count = 0
    rows: list[Any] = []
    parts = [(where, None, "")] if spec.branches is None else [
        (and_(where, b), table, index) for b, table, index in spec.branches]
    for part, table, index in parts:
        found = int(conn.execute(select(func.count()).where(part)).scalar_one())
        count += found
        if not found:
            continue
        query = select(*spec.columns, *(k.column.label(n) for k, n in zip(keys, labels,
                                                                          strict=True)))
        if table is not None:
            query = query.with_hint(table, f"INDEXED BY {index}", "sqlite")
        query = query.where(part if after is None else and_(part, _after(keys, after)))
        rows += conn.execute(query.order_by(*order).limit(limit + 1)).all()
    if len(parts) > 1:  # merge the branches' pages (their orders are all one way)
        descending = {k.descending for k in keys}
        assert len(descending) == 1
        rows.sort(key=lambda r: tuple(getattr(r, n) for n in labels), reverse=descending.pop())
    more = len(rows) > limit
    rows = rows[:limit]
    return {"count": count, "items": [spec.item(r) for r in rows], "truncated": more,
            "sort": sort,
            "next_cursor": (_encode((name, sort), [getattr(rows[-1], n) for n in labels])
                            if more else None)}


def _after(keys: Sequence[_Key], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows after the cursor's values in the order of `keys` (a keyset page)."""
    clauses = []
    for i, key in enumerate(keys):
        same = [keys[j].column == values[j] for j in range(i)]
        beyond = key.column < values[i] if key.descending else key.column > values[i]
        clauses.append(and_(*same, beyond))
    return or_(*clauses)


def _encode(where: tuple[str, str], values: Sequence[Any]) -> str:
    """The cursor: the section and sort it belongs to, and the last item's key values."""
    plain = [*where, *(v.isoformat() if isinstance(v, datetime) else
             str(v) if isinstance(v, UUID) else v for v in values)]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _decode(cursor: str, keys: Sequence[_Key], where: tuple[str, str]) -> list[Any]:
    try:
        plain = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(plain, list) or len(plain) != len(keys) + 2 or \
                tuple(plain[:2]) != where:
            raise ValueError("another section's or sort's cursor")
        out: list[Any] = []
        for value, key in zip(plain[2:], keys, strict=True):
            if key.kind == "time":
                instant = datetime.fromisoformat(value)
                if instant.tzinfo is None:
                    raise ValueError("naive instant")
                out.append(instant)
            elif key.kind == "uuid":
                out.append(UUID(value))
            elif key.kind == "int":
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError("not an integer")
                out.append(value)
            else:
                if not isinstance(value, str):
                    raise ValueError("not a string")
                out.append(value)
        return out
    except (ValueError, TypeError, UnicodeDecodeError):
        raise InvalidValueError("not a cursor this section gave for this sort",
                                field="cursor") from None


# -- the reference: every row read and filtered in Python (the former report) --------------------

def controls_reference(conn: Connection, *, at: datetime, as_of: datetime | None,
                       specialist_id: UUID | None = None, late_entry_hours: float = 24,
                       period: timedelta = timedelta(days=30),
                       feedback_days: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Every item of every section, in default order, computed as before issue 16: from the
    activity rows and every client's stored or folded completeness, filtered in Python."""
    assigned = assignments(conn, as_of) if specialist_id is not None else None

    def mine(client_id: UUID) -> bool:
        return assigned is None or assigned.at(client_id, at) == specialist_id

    _count, planned_rows = overdue_planned_contacts(conn, at, as_of,
                                                    specialist_id=specialist_id,
                                                    limit=10 ** 9)
    threshold = int(late_entry_hours * 3600)
    return {
        "overdue_planned_contacts": [
            {"planned_contact_id": r.planned_contact_id, "client_id": r.client_id,
             "purpose": r.purpose, "due_at": r.due_at, "specialist_id": r.specialist_id,
             "overdue_seconds": int((at - r.due_at).total_seconds())} for r in planned_rows],
        "late_data_entry": [e for e in late_entries(conn, since=at - period, at=at,
                                                    as_of=as_of, threshold_seconds=threshold)
                            if mine(e["client_id"])],
        "card_completeness": [c for c in incomplete_clients(conn, as_of)
                              if mine(c["client_id"])],
        "overdue_agreements": [
            {"agreement_id": r.agreement_id, "client_id": r.client_id, "due_at": r.due_at,
             "made_at": r.made_at, "overdue_seconds": int((at - r.due_at).total_seconds())}
            for r in open_agreements(conn, at, as_of, due_before=at) if mine(r.client_id)],
        "work_without_feedback": [
            {"work_id": r.work_id, "client_id": r.client_id, "completed_at": r.completed_at}
            for r in works_without_feedback(
                conn, at, as_of, completed_before=at - timedelta(days=feedback_days))
            if mine(r.client_id)],
    }
