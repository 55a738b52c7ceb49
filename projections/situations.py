"""Situations as facts: their clock events, and every calendar and SLA target version.

Nothing is decided at apply time: each row carries its event's occurred_at, recorded_at, id and
position, and figures are computed at query time (projections.reaction_times), so `as_of` is a
WHERE clause, `at` a cut in the timeline, and a figure can be shown under the calendar in force
when its clock stopped or under today's.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    func,
    or_,
    select,
)

from domain.activity import Contact
from domain.base import CrmAggregate, event_id_of
from domain.business_calendar import BusinessCalendar
from domain.reaction import (
    CLOCK_EVENT_TYPES,
    CLOCKS,
    CONTACT,
    OPENED,
    STOPPED,
    ClockEvent,
    timeline,
)
from domain.reference import Calendar, SlaTarget
from domain.situation import Situation
from projections.base import UtcDateTime, metadata
from projections.facts import FAR_FUTURE
from projections.fold import FoldProjection, Need, Rows

situation_rows = Table(
    "reaction_situations", metadata,
    Column("situation_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("trigger", String(64), nullable=False),
    Column("trigger_event_id", Uuid),
    Column("specialist_id", Uuid),  # assigned to the client when the situation was opened
    Column("opened_event_id", Uuid, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("position", BigInteger, nullable=False),
    # The clocks once every event of the situation counts (kept by the projection from its
    # events alone: no calendar, no target): reads with at >= settled_at and
    # as_of >= settled_recorded_at measure from these instead of the events (see summarise).
    Column("settled_at", UtcDateTime),  # the latest counted instant of its events
    Column("settled_recorded_at", UtcDateTime),  # the latest recorded_at of its events
    Column("status", String(10)),
    Column("first_reaction_state", String(10)),
    Column("resolution_state", String(10)),
    Column("clocks", JSON),  # per clock: stop [event id, counted at, recorded at], pauses
    Index("ix_reaction_situations_opened", "opened_at", "situation_id"),
    Index("ix_reaction_situations_client", "client_id", "opened_at"),  # the card's section
)

clock_rows = Table(
    "reaction_clock_events", metadata,
    Column("situation_id", Uuid, primary_key=True),
    Column("event_id", Uuid, primary_key=True),
    Column("type", String(40), nullable=False),
    Column("stream_id", Uuid, nullable=False),
    Column("version", Integer, nullable=False),
    Column("position", BigInteger, nullable=False, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

calendar_rows = Table(
    "reaction_calendar_versions", metadata,
    Column("calendar_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("name", String(64)),
    Column("definition", JSON, nullable=False),  # BusinessCalendar.to_dict()
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("position", BigInteger, nullable=False),
)

target_rows = Table(
    "reaction_sla_versions", metadata,
    Column("target_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("event_id", Uuid, nullable=False),
    Column("situation_kind", String(40), nullable=False),
    Column("first_reaction_seconds", BigInteger, nullable=False),
    Column("resolution_seconds", BigInteger, nullable=False),
    Column("business_hours", Boolean, nullable=False),
    # The ratio as its decimal text: a float column would make digests backend-dependent.
    Column("warn_ratio", String(32), nullable=False),
    Column("calendar_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("position", BigInteger, nullable=False),
)


class SituationFactsProjection(FoldProjection):
    """Situations, the events that drive their clocks, calendar and SLA target versions."""

    name = "situations"
    tables = (situation_rows, clock_rows, calendar_rows, target_rows)
    keeps = (situation_rows, clock_rows)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        # A clock event reads every clock row of its situation back and updates the situation's
        # summary; calendars and SLA targets are written whole (nothing read).
        situation_id = _clock_situation(event)
        if situation_id is not None:
            yield Need(clock_rows, "situation_id", situation_id)
            yield Need(situation_rows, "situation_id", situation_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        kind = type(event).__name__
        if kind == CONTACT:
            contact: Contact.ContactLogged = event
            if contact.situation_id is not None:
                self._clock(rows, contact.situation_id, event, position)
        elif kind in CLOCK_EVENT_TYPES:
            if kind == OPENED:
                self._opened(rows, event, position)
            self._clock(rows, event.originator_id, event, position)
        elif isinstance(event, (Calendar.CalendarDefined, Calendar.CalendarChanged)):
            self._calendar(rows, event, position)
        elif isinstance(event, (SlaTarget.SlaTargetDefined, SlaTarget.SlaTargetChanged)):
            self._target(rows, event, position)

    @staticmethod
    def _base(event: CrmAggregate.Event, position: int) -> dict[str, Any]:
        # Instants in UTC, as they come back from the database, so rows held in memory read
        # the same as rows loaded.
        return {"event_id": event_id_of(event.originator_id, event.originator_version),
                "occurred_at": _utc(event.occurred_at), "recorded_at": _utc(event.timestamp),
                "position": position}

    def _opened(self, rows: Rows, e: Situation.SituationOpened, position: int) -> None:
        assert e.client_id is not None
        # An upsert of these columns: a row already there keeps its summary columns.
        old = rows.get(situation_rows, e.originator_id)
        rows.put(situation_rows, {
            **(old if old is not None else _NO_SUMMARY),
            "situation_id": e.originator_id, "client_id": e.client_id, "kind": e.kind,
            "trigger": e.trigger, "trigger_event_id": e.trigger_event_id,
            "specialist_id": e.specialist_id,
            "opened_event_id": event_id_of(e.originator_id, e.originator_version),
            "opened_at": _utc(e.occurred_at), "recorded_at": _utc(e.timestamp),
            "position": position})

    def _clock(self, rows: Rows, situation_id: UUID, e: CrmAggregate.Event,
               position: int) -> None:
        rows.put(clock_rows, {"situation_id": situation_id, "type": type(e).__name__,
                              "stream_id": e.originator_id, "version": e.originator_version,
                              **self._base(e, position)})
        # The situation's clock events in position order (where() gives primary-key order;
        # the sort is stable, as the query's order by position was on distinct positions).
        found = sorted(rows.where(clock_rows, "situation_id", situation_id),
                       key=lambda r: r["position"])
        summary = summarise([_held_clock_event(r) for r in found])
        if summary is not None:
            rows.update(situation_rows, situation_id, **summary)

    def _calendar(self, rows: Rows,
                  e: Calendar.CalendarDefined | Calendar.CalendarChanged, position: int) -> None:
        rows.put(calendar_rows, {
            "calendar_id": e.originator_id, "version": e.originator_version,
            "name": e.calendar.get("name"),
            "definition": {k: v for k, v in e.calendar.items() if k != "name"},
            **self._base(e, position)})

    def _target(self, rows: Rows,
                e: SlaTarget.SlaTargetDefined | SlaTarget.SlaTargetChanged, position: int) -> None:
        rows.put(target_rows, {
            "target_id": e.originator_id, "version": e.originator_version,
            "situation_kind": e.situation_kind, "first_reaction_seconds": e.first_reaction_seconds,
            "resolution_seconds": e.resolution_seconds, "business_hours": e.business_hours,
            "warn_ratio": repr(float(e.warn_ratio)), "calendar_id": e.calendar_id,
            **self._base(e, position)})


# The summary columns of a situation row before its first summary.
_NO_SUMMARY: dict[str, Any] = {name: None for name in (
    "settled_at", "settled_recorded_at", "status", "first_reaction_state", "resolution_state",
    "clocks")}


def _clock_situation(event: Any) -> UUID | None:
    """The situation whose clocks an event drives (None for any other event)."""
    kind = type(event).__name__
    if kind == CONTACT:
        situation_id: UUID | None = event.situation_id
        return situation_id
    if kind in CLOCK_EVENT_TYPES:
        originator: UUID = event.originator_id
        return originator
    return None


def _utc(value: datetime) -> datetime:
    # A naive instant is left as it is: writing it fails as the old engine's write did.
    return value if value.tzinfo is None else value.astimezone(UTC)


def _held_clock_event(r: dict[str, Any]) -> ClockEvent:
    return ClockEvent(r["event_id"], r["type"], r["occurred_at"], r["recorded_at"],
                      r["position"], r["stream_id"], r["version"])


def _clock_event(r: Any) -> ClockEvent:
    return ClockEvent(r.event_id, r.type, r.occurred_at, r.recorded_at, r.position,
                      r.stream_id, r.version)


def summarise(events: Sequence[ClockEvent]) -> dict[str, Any] | None:
    """The clocks of a situation read at any `at` from its latest counted instant on, with
    every event known: per clock its state, stop and pauses (times as ISO text). None while the
    situation has not been opened."""
    found = timeline(events, FAR_FUTURE)
    if found is None:
        return None
    clocks: dict[str, Any] = {}
    for name in CLOCKS:
        clock = found.clock(name)
        stop = clock.stop
        clocks[name] = {
            "stop": None if stop is None else [str(stop.event.event_id), stop.at.isoformat(),
                                               _utc_text(stop.event.recorded_at)],
            "pauses": [[a.isoformat(), None if b is None else b.isoformat()]
                       for a, b in clock.pauses()]}
    return {"settled_at": max(m.at for m in found.marks),
            "settled_recorded_at": max(e.recorded_at for e in events),
            "status": found.status, "first_reaction_state": found.first_reaction.state,
            "resolution_state": found.resolution.state, "clocks": clocks}


def _utc_text(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


@dataclass(frozen=True)
class SituationFacts:
    situation_id: UUID
    client_id: UUID
    kind: str
    trigger: str
    trigger_event_id: UUID | None
    specialist_id: UUID | None
    opened_at: datetime
    recorded_at: datetime
    events: tuple[ClockEvent, ...]


@dataclass(frozen=True)
class CalendarVersion:
    calendar_id: UUID
    version: int
    event_id: UUID
    name: str | None
    definition: dict[str, Any]
    recorded_at: datetime


@dataclass(frozen=True)
class TargetVersion:
    target_id: UUID
    version: int
    event_id: UUID
    situation_kind: str
    first_reaction_seconds: int
    resolution_seconds: int
    business_hours: bool
    warn_ratio: Decimal
    calendar_id: UUID | None
    recorded_at: datetime


@dataclass
class Reference:
    """Calendar and SLA target versions known at a cut-off; picks the one in force at a moment
    by recorded time (the latest version recorded at or before it)."""

    calendars: dict[UUID, list[CalendarVersion]]
    targets: dict[str, list[TargetVersion]]
    _parsed: dict[tuple[UUID, int], BusinessCalendar] = field(default_factory=dict)

    def target(self, kind: str, when: datetime) -> TargetVersion | None:
        return _in_force(self.targets.get(kind, []), when)

    def calendar(self, calendar_id: UUID, when: datetime) -> CalendarVersion | None:
        return _in_force(self.calendars.get(calendar_id, []), when)

    def parsed(self, version: CalendarVersion) -> BusinessCalendar:
        key = (version.calendar_id, version.version)
        if key not in self._parsed:
            self._parsed[key] = BusinessCalendar.from_dict(version.definition)
        return self._parsed[key]


V = TypeVar("V", CalendarVersion, TargetVersion)


def _in_force(versions: Sequence[V], when: datetime) -> V | None:
    found = None
    for version in versions:  # in version order
        if version.recorded_at <= when:
            found = version
    return found


def load_reference(conn: Connection, as_of: datetime) -> Reference:
    calendars: dict[UUID, list[CalendarVersion]] = {}
    for r in conn.execute(select(calendar_rows).where(calendar_rows.c.recorded_at <= as_of)
                          .order_by(calendar_rows.c.calendar_id, calendar_rows.c.version)):
        calendars.setdefault(r.calendar_id, []).append(CalendarVersion(
            r.calendar_id, r.version, r.event_id, r.name, dict(r.definition), r.recorded_at))
    targets: dict[str, list[TargetVersion]] = {}
    for r in conn.execute(select(target_rows).where(target_rows.c.recorded_at <= as_of)
                          .order_by(target_rows.c.target_id, target_rows.c.version)):
        targets.setdefault(r.situation_kind, []).append(TargetVersion(
            r.target_id, r.version, r.event_id, r.situation_kind, r.first_reaction_seconds,
            r.resolution_seconds, r.business_hours, Decimal(r.warn_ratio), r.calendar_id,
            r.recorded_at))
    return Reference(calendars, targets)


def reference_position(conn: Connection) -> int:
    """The last position that changed a calendar or an SLA target (0 if none)."""
    found = [conn.execute(select(func.max(t.c.position))).scalar() for t in
             (calendar_rows, target_rows)]
    return max((f or 0 for f in found), default=0)


def last_clock_position(conn: Connection) -> int:
    return int(conn.execute(select(func.max(clock_rows.c.position))).scalar() or 0)


def changed_since(conn: Connection, position: int) -> tuple[set[UUID], int]:
    """Situations whose clock events arrived after `position`, and the last such position."""
    rows = conn.execute(select(clock_rows.c.situation_id, clock_rows.c.position)
                        .where(clock_rows.c.position > position)).all()
    return {r.situation_id for r in rows}, max((r.position for r in rows), default=position)


def _where(query: Any, *, as_of: datetime, at: datetime | None = None,
           ids: Sequence[UUID] | None = None, kind: str | None = None,
           specialist: UUID | None = None, opened_from: datetime | None = None,
           opened_before: datetime | None = None, settled: bool | None = None) -> Any:
    s = situation_rows.c
    query = query.where(s.recorded_at <= as_of)
    if at is not None:
        query = query.where(s.opened_at <= at)
    if ids is not None:
        query = query.where(s.situation_id.in_(list(ids)))
    if kind is not None:
        query = query.where(s.kind == kind)
    if specialist is not None:
        query = query.where(s.specialist_id == specialist)
    if opened_from is not None:
        query = query.where(s.opened_at >= opened_from)
    if opened_before is not None:
        query = query.where(s.opened_at < opened_before)
    if settled is not None:
        assert at is not None
        done = and_(s.settled_at <= at, s.settled_recorded_at <= as_of)
        query = query.where(done if settled else or_(s.settled_at.is_(None), ~done))
    return query


def _quiet(targeted: Collection[str]) -> Any:
    """Situations with no stopped clock, of a kind without an SLA target."""
    s = situation_rows.c
    quiet = and_(s.first_reaction_state != STOPPED, s.resolution_state != STOPPED)
    return and_(quiet, s.kind.not_in(list(targeted))) if targeted else quiet


def settled_rows(conn: Connection, *, as_of: datetime, at: datetime,
                 targeted: Collection[str] | None = None, **filters: Any) -> Sequence[Any]:
    """The situations (as load_situations filters them) whose every event counts at `at` and is
    recorded by `as_of`, with their stored clock summaries (see summarise), in no order. With
    `targeted` (the kinds with an SLA target), the quiet ones are left out (see quiet_groups)."""
    s = situation_rows.c
    query = _where(select(s.situation_id, s.specialist_id, s.kind, s.opened_at,
                          s.opened_event_id, s.first_reaction_state, s.resolution_state,
                          s.clocks), as_of=as_of, at=at, settled=True, **filters)
    if targeted is not None:
        query = query.where(~_quiet(targeted))
    return conn.execute(query).all()


def quiet_groups(conn: Connection, *, as_of: datetime, at: datetime,
                 targeted: Collection[str], ids_limit: int | None,
                 **filters: Any) -> dict[tuple[UUID | None, str], tuple[int, list[str]]]:
    """Per (specialist, kind), the settled situations with no stopped clock, of a kind without
    an SLA target (`targeted` lists the others): how many, and the first `ids_limit` of their
    ids in text order (every id with None). Such a situation adds nothing to a report but its
    count and its id, so it is counted here and never measured."""
    s = situation_rows.c
    keys = (s.specialist_id, s.kind)

    def quiet(query: Any) -> Any:
        return _where(query, as_of=as_of, at=at, settled=True, **filters).where(
            _quiet(targeted))

    found: dict[tuple[UUID | None, str], tuple[int, list[str]]] = {
        (r.specialist_id, r.kind): (r.n, []) for r in conn.execute(
            quiet(select(*keys, func.count().label("n"))).group_by(*keys))}
    if ids_limit is None:
        rows = conn.execute(quiet(select(*keys, s.situation_id)))
    elif ids_limit > 0:
        ranked = quiet(select(*keys, s.situation_id, func.row_number().over(
            partition_by=keys, order_by=s.situation_id).label("rank"))).subquery()
        rows = conn.execute(select(ranked.c.specialist_id, ranked.c.kind,
                                   ranked.c.situation_id).where(ranked.c.rank <= ids_limit))
    else:
        rows = None
    for r in rows or ():
        found[(r.specialist_id, r.kind)][1].append(str(r.situation_id))
    for _n, ids in found.values():
        ids.sort()
    return found


def load_situations(conn: Connection, *, as_of: datetime, at: datetime | None = None,
                    ids: Sequence[UUID] | None = None, kind: str | None = None,
                    specialist: UUID | None = None, opened_from: datetime | None = None,
                    opened_before: datetime | None = None,
                    after: tuple[datetime, UUID] | None = None,
                    limit: int | None = None, settled: bool | None = None) -> list[SituationFacts]:
    """Situations known at `as_of` (opened by `at`), in (opened_at, id) order, with their clock
    events recorded by `as_of`; `settled` False keeps only those with an event that does not
    count at `at` or is not known at `as_of` (True: only the others)."""
    s = situation_rows.c
    query = _where(select(s.situation_id, s.client_id, s.kind, s.trigger, s.trigger_event_id,
                          s.specialist_id, s.opened_at, s.recorded_at),
                   as_of=as_of, at=at, ids=ids, kind=kind, specialist=specialist,
                   opened_from=opened_from, opened_before=opened_before, settled=settled)
    if after is not None:
        query = query.where(or_(s.opened_at > after[0],
                                and_(s.opened_at == after[0], s.situation_id > after[1])))
    query = query.order_by(s.opened_at, s.situation_id)
    if limit is not None:
        query = query.limit(limit)
    rows = conn.execute(query).all()
    events: dict[UUID, list[ClockEvent]] = {}
    for start in range(0, len(rows), 500):
        chunk = [r.situation_id for r in rows[start:start + 500]]
        for e in conn.execute(select(clock_rows).where(clock_rows.c.situation_id.in_(chunk),
                                                       clock_rows.c.recorded_at <= as_of)
                              .order_by(clock_rows.c.position)):
            events.setdefault(e.situation_id, []).append(_clock_event(e))
    return [SituationFacts(r.situation_id, r.client_id, r.kind, r.trigger, r.trigger_event_id,
                           r.specialist_id, r.opened_at, r.recorded_at,
                           tuple(events.get(r.situation_id, ())))
            for r in rows]
