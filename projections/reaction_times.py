"""Reaction-time queries: a situation's figures, the situations list, evidence and the report.

Every figure is computed at query time from the facts in projections.situations: `as_of` limits
the facts to those recorded by then, `at` is the moment the clocks are read, and `basis` picks
the calendar and SLA target versions: `as_measured` (those in force, by recorded time, when the
clock stopped; for a clock still running, those known at `as_of`) or `current` (those known at
`as_of`, for every clock).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from domain.business_calendar import BusinessCalendar
from domain.reaction import (
    CLOCKS,
    FIRST_REACTION,
    RESOLUTION,
    STOPPED,
    Figure,
    Target,
    Timeline,
    figure,
    figure_evidence,
    lean_figures,
    timeline,
)
from projections.situations import (
    CalendarVersion,
    Reference,
    SituationFacts,
    TargetVersion,
    load_reference,
    load_situations,
    quiet_groups,
    settled_rows,
)

AS_MEASURED, CURRENT = "as_measured", "current"
BASES = (AS_MEASURED, CURRENT)
PERCENTILE_METHOD = ("nearest-rank: the value at rank ceil(p/100 x n) of the stopped clocks "
                     "sorted ascending (ties by situation id); always an observed figure")


@dataclass(frozen=True)
class ReactionPolicy:
    """What applies where nothing is defined: the built-in calendar (Monday-Friday 09:00-18:00
    in CRM_TIMEZONE) and the id of the calendar named "default"."""

    default_calendar: BusinessCalendar
    default_calendar_id: UUID


@dataclass(frozen=True)
class Rules:
    """The versions one figure was measured under, and the recorded moment that chose them."""

    calendar: CalendarVersion | None  # None: the built-in default calendar
    target: TargetVersion | None
    in_force_at: datetime


@dataclass(frozen=True)
class Measured:
    facts: SituationFacts
    timeline: Timeline
    figures: dict[str, Figure]
    rules: dict[str, Rules]

    @property
    def breached(self) -> bool:
        return any(f.breached for f in self.figures.values())


def measure(facts: SituationFacts, reference: Reference, policy: ReactionPolicy, *,
            at: datetime, as_of: datetime, basis: str = AS_MEASURED,
            detail: bool = True) -> Measured | None:
    """Both clocks of a situation at `at`; None if it was not open yet at that moment.
    Without `detail` the figures carry no segments and no deadlines (aggregates need neither)."""
    found = timeline(facts.events, at)
    if found is None:
        return None
    figures: dict[str, Figure] = {}
    rules: dict[str, Rules] = {}
    for name in CLOCKS:
        clock = found.clock(name)
        when = (clock.stop.event.recorded_at
                if basis == AS_MEASURED and clock.stop is not None else as_of)
        version, calendar = _versions(reference, policy, facts.kind, when)
        figures[name] = figure(clock, policy.default_calendar if calendar is None
                               else reference.parsed(calendar), _target(version, name),
                               detail=detail)
        rules[name] = Rules(calendar, version, when)
    return Measured(facts, found, figures, rules)


def measure_all(conn: Connection, policy: ReactionPolicy, *, at: datetime, as_of: datetime,
                basis: str = AS_MEASURED, detail: bool = True,
                **filters: Any) -> list[Measured]:
    reference = load_reference(conn, as_of)
    measured = (measure(f, reference, policy, at=at, as_of=as_of, basis=basis, detail=detail)
                for f in load_situations(conn, as_of=as_of, at=at, **filters))
    return [m for m in measured if m is not None]


def summary(m: Measured) -> dict[str, Any]:
    """A list item: the situation and, per clock, its figures and SLA state (ids only)."""
    f = m.facts
    clocks = {}
    for name, fig in m.figures.items():
        stop = fig.clock.stop
        clocks[name] = {
            "state": fig.clock.state, "status": fig.status,
            "stopped_at": None if stop is None else stop.at,
            "stop_event_id": None if stop is None else stop.event.event_id,
            "wall_seconds": fig.wall_seconds, "business_seconds": fig.business_seconds,
            "target_seconds": None if fig.target is None else fig.target.seconds,
            "deadline": fig.deadline}
    return {"situation_id": f.situation_id, "client_id": f.client_id, "kind": f.kind,
            "trigger": f.trigger, "trigger_event_id": f.trigger_event_id,
            "specialist_id": f.specialist_id, "status": m.timeline.status,
            "opened_at": f.opened_at, "recorded_at": f.recorded_at, "breached": m.breached,
            **clocks}


def list_situations(conn: Connection, policy: ReactionPolicy, *, at: datetime,
                    as_of: datetime, basis: str = AS_MEASURED, status: str | None = None,
                    breached: bool | None = None, kind: str | None = None,
                    specialist: UUID | None = None, after: tuple[datetime, UUID] | None = None,
                    limit: int = 50) -> tuple[list[Measured], tuple[datetime, UUID] | None]:
    """A page of situations in (opened_at, id) order; status and breach are read at `at`, so
    they filter after measuring, reading the facts in batches until the page is full."""
    reference = load_reference(conn, as_of)
    if breached and not any(reference.targets.get(k) for k in (
            reference.targets if kind is None else (kind,))):
        return [], None  # a breach needs an SLA target: none is known for these kinds
    found: list[Measured] = []
    cursor = after
    while len(found) <= limit:
        batch = load_situations(conn, as_of=as_of, at=at, kind=kind, specialist=specialist,
                                after=cursor, limit=200)
        for facts in batch:
            cursor = (facts.opened_at, facts.situation_id)
            # Filter on the lean figures (same status and breach), then detail the kept ones.
            m = measure(facts, reference, policy, at=at, as_of=as_of, basis=basis,
                        detail=False)
            if m is None or (status is not None and m.timeline.status != status) or (
                    breached is not None and m.breached != breached):
                continue
            m = measure(facts, reference, policy, at=at, as_of=as_of, basis=basis)
            assert m is not None
            found.append(m)
            if len(found) > limit:
                break
        if len(batch) < 200:
            break
    more = len(found) > limit
    found = found[:limit]
    last = found[-1].facts if found else None
    return found, (last.opened_at, last.situation_id) if more and last else None


def breached_situations(conn: Connection, policy: ReactionPolicy, *, at: datetime,
                        as_of: datetime, specialist: UUID | None = None,
                        limit: int = 100) -> tuple[int, list[Measured], tuple[datetime, UUID] |
                                                   None]:
    """Situations with a clock past its SLA target at `at` (as_measured, as list_situations
    with breached=True): how many, the first `limit` in (opened_at, id) order, measured in
    full, and the key after which the list continues (None: no more). Only situations of a
    kind with an SLA target known at `as_of` can be breached; of those, the settled ones are
    judged from their stored clock summaries (and the memo of stopped clocks' figures), the
    others from their events, as the reaction-times report does."""
    reference = load_reference(conn, as_of)
    targeted = {k for k, versions in reference.targets.items() if versions}
    if not targeted:
        return 0, [], None
    found: list[tuple[datetime, UUID]] = []
    for kind in sorted(targeted):
        for facts in load_situations(conn, as_of=as_of, at=at, settled=False, kind=kind,
                                     specialist=specialist):
            m = measure(facts, reference, policy, at=at, as_of=as_of, detail=False)
            if m is not None and m.breached:
                found.append((facts.opened_at, facts.situation_id))
        found += [(i.opened_at, i.situation_id) for i in _settled_items(
            conn, reference, policy, at=at, as_of=as_of, basis=AS_MEASURED, targeted=targeted,
            kind=kind, specialist=specialist) if i.breached]
    found.sort()
    first = [situation_id for _opened, situation_id in found[:limit]]
    measured = [measure(f, reference, policy, at=at, as_of=as_of)
                for f in load_situations(conn, as_of=as_of, ids=first)]
    page = [m for m in measured if m is not None]
    return len(found), page, found[limit - 1] if len(found) > limit else None


def evidence(conn: Connection, policy: ReactionPolicy, situation_id: UUID, *, at: datetime,
             as_of: datetime, basis: str = AS_MEASURED) -> dict[str, Any] | None:
    """The events that start, stop and pause each clock, the calendar and target versions
    applied, and the arithmetic: enough to recompute every figure without this service."""
    facts = load_situations(conn, as_of=as_of, ids=[situation_id])
    if not facts:
        return None
    m = measure(facts[0], load_reference(conn, as_of), policy, at=at, as_of=as_of, basis=basis)
    if m is None:
        return None
    effects: dict[UUID, list[str]] = {}
    for name, fig in m.figures.items():
        clock = fig.clock
        effects.setdefault(clock.start.event.event_id, []).append(f"starts {name}")
        if clock.stop is not None:
            effects.setdefault(clock.stop.event.event_id, []).append(f"stops {name}")
        for s in clock.stoppages:
            effects.setdefault(s.start.event.event_id, []).append(f"halts {name} ({s.reason})")
            if s.end is not None:
                effects.setdefault(s.end.event.event_id, []).append(f"resumes {name}")
    events = [{"event_id": k.event.event_id, "type": k.event.type,
               "stream_id": k.event.stream_id, "version": k.event.version,
               "position": k.event.position, "occurred_at": k.event.occurred_at,
               "recorded_at": k.event.recorded_at, "counted_at": k.at,
               "effects": effects.get(k.event.event_id, ["none (not the earliest reaction)"])}
              for k in m.timeline.marks]
    clocks = {name: {**figure_evidence(fig), **_rules(
        m.rules[name], policy, by_stop=basis == AS_MEASURED and fig.clock.stop is not None)}
        for name, fig in m.figures.items()}
    f = m.facts
    return {"situation_id": f.situation_id, "client_id": f.client_id, "kind": f.kind,
            "trigger": f.trigger, "trigger_event_id": f.trigger_event_id,
            "specialist_id": f.specialist_id, "status": m.timeline.status, "at": at,
            "as_of": as_of, "calendar_basis": basis, "events": events, "clocks": clocks}


def _rules(rules: Rules, policy: ReactionPolicy, *, by_stop: bool) -> dict[str, Any]:
    cal = rules.calendar
    calendar = ({"source": "built-in default", "definition": policy.default_calendar.to_dict()}
                if cal is None else
                {"source": "calendar event", "calendar_id": cal.calendar_id, "name": cal.name,
                 "version": cal.version, "event_id": cal.event_id,
                 "recorded_at": cal.recorded_at, "definition": cal.definition})
    t = rules.target
    target = None if t is None else {
        "target_id": t.target_id, "version": t.version, "event_id": t.event_id,
        "recorded_at": t.recorded_at, "first_reaction_seconds": t.first_reaction_seconds,
        "resolution_seconds": t.resolution_seconds, "business_hours": t.business_hours,
        "warn_ratio": str(t.warn_ratio)}
    return {"rules_in_force_at": rules.in_force_at,
            "rules_chosen_by": "recorded_at of the stop event" if by_stop else "as_of",
            "calendar": calendar, "sla_target": target}


def reaction_report(conn: Connection, policy: ReactionPolicy, *, at: datetime,
                    as_of: datetime, basis: str = AS_MEASURED,
                    opened_from: datetime | None = None, opened_before: datetime | None = None,
                    kind: str | None = None, specialist: UUID | None = None,
                    ids_limit: int | None = None, stored: bool = True) -> dict[str, Any]:
    """Per specialist and kind: count, median, p90 and breach rate of both clocks, each figure
    naming the situation and events it came from. Ids only: no personal data.

    `ids_limit` bounds each list of situation ids (the first ones in text order; None: every
    id); the counts stay exact, and `ids_truncated` tells whether a list was cut. With
    `stored`, the situations whose every event counts at `at` and is known at `as_of` are
    measured from the clock summaries the projection keeps (and those of them with no stopped
    clock and no SLA target only counted), the others from their events: the same report."""
    filters: dict[str, Any] = {"kind": kind, "specialist": specialist,
                               "opened_from": opened_from, "opened_before": opened_before}
    reference = load_reference(conn, as_of)
    items: list[_Item] = []
    unsettled = load_situations(conn, as_of=as_of, at=at, settled=False if stored else None,
                                **filters)
    for facts in unsettled:
        m = measure(facts, reference, policy, at=at, as_of=as_of, basis=basis, detail=False)
        if m is not None:
            items.append(_item(m))
    quiet: dict[tuple[UUID | None, str], tuple[int, list[str]]] = {}
    if stored:
        targeted = {k for k, versions in reference.targets.items() if versions}
        items.extend(_settled_items(conn, reference, policy, at=at, as_of=as_of, basis=basis,
                                    targeted=targeted, **filters))
        quiet = quiet_groups(conn, as_of=as_of, at=at, targeted=targeted, ids_limit=ids_limit,
                             **filters)
    groups: dict[tuple[str, str], tuple[UUID | None, list[_Item]]] = {
        (str(sp or ""), k): (sp, []) for sp, k in quiet}
    for item in items:
        groups.setdefault((str(item.specialist_id or ""), item.kind),
                          (item.specialist_id, []))[1].append(item)
    cut = [False]
    listed = []
    for key, (sp, group) in sorted(groups.items()):
        count, ids = quiet.get((sp, key[1]), (0, []))
        listed.append({"specialist_id": sp, "kind": key[1],
                       **_stats(group, count, ids, ids_limit, cut)})
    every_quiet = [i for _n, ids in quiet.values() for i in ids]
    return {
        "at": at, "as_of": as_of, "calendar": basis, "from": opened_from, "to": opened_before,
        "kind": kind, "specialist_id": specialist, "percentile_method": PERCENTILE_METHOD,
        "groups": listed,
        "totals": _stats(items, sum(n for n, _ids in quiet.values()), every_quiet, ids_limit,
                         cut),
        "ids_truncated": cut[0],
    }


@dataclass(frozen=True)
class _Clock:
    """One clock as the report counts it."""

    state: str
    wall_seconds: int
    business_seconds: int
    has_target: bool
    breached: bool
    start_event_id: UUID
    stop_event_id: UUID | None


@dataclass(frozen=True)
class _Item:
    situation_id: UUID
    key: str  # the id as text: the order of ids in lists and of percentile ties
    specialist_id: UUID | None
    kind: str
    clocks: dict[str, _Clock]
    opened_at: datetime

    @property
    def breached(self) -> bool:
        return any(c.breached for c in self.clocks.values())


def _item(m: Measured) -> _Item:
    clocks = {}
    for name, f in m.figures.items():
        stop = f.clock.stop
        clocks[name] = _Clock(f.clock.state, f.wall_seconds, f.business_seconds,
                              f.target is not None, f.breached, f.clock.start.event.event_id,
                              None if stop is None else stop.event.event_id)
    return _Item(m.facts.situation_id, str(m.facts.situation_id), m.facts.specialist_id,
                 m.facts.kind, clocks, m.facts.opened_at)


class _Rules:
    """A calendar and a target as one memo key part: equal when both are equal, its hash
    computed once (a BusinessCalendar's is recomputed on every lookup otherwise)."""

    __slots__ = ("_hash", "calendar", "target")

    def __init__(self, calendar: BusinessCalendar, target: Target | None) -> None:
        self.calendar, self.target = calendar, target
        self._hash = hash((calendar, target))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _Rules) and self._hash == other._hash
                and self.calendar == other.calendar and self.target == other.target)


# The figures of stopped clocks, by everything they are computed from (opening, state, stop,
# pauses, calendar and target): a pure function's results, so a hit is the figure `measure`
# gives. Filled as reports read them; a stopped clock is measured once per rule version per
# process, and later reports only look it up (issue 16.1). Bounded: cleared when full.
_STOPPED_FIGURES: dict[tuple[Any, ...], tuple[int, int, str]] = {}
_STOPPED_FIGURES_MAX = 500_000


def _settled_items(conn: Connection, reference: Reference, policy: ReactionPolicy, *,
                   at: datetime, as_of: datetime, basis: str, targeted: set[str],
                   **filters: Any) -> list[_Item]:
    """The situations every event of which counts at `at` and is known at `as_of`, but for the
    quiet ones (see quiet_groups), measured from their stored clock summaries with the rules
    `measure` picks and the same arithmetic. A clock not stopped and without a target gets no
    figures: the report uses neither."""
    items = []
    # The rules of each (kind, clock, versions in force): one _Rules (its hash computed once)
    # per rule version in a report, however many moments pick it.
    rules: dict[tuple[Any, ...], _Rules] = {}

    def pick(kind: str, name: str, when: datetime) -> _Rules:
        version, calendar_version = _versions(reference, policy, kind, when)
        key = (kind, name, id(version), id(calendar_version))  # held by `reference` meanwhile
        found = rules.get(key)
        if found is None:
            calendar = (policy.default_calendar if calendar_version is None
                        else reference.parsed(calendar_version))
            found = rules[key] = _Rules(calendar, _target(version, name))
        return found

    for r in settled_rows(conn, as_of=as_of, at=at, targeted=targeted, **filters):
        clocks = {}
        for name, state in ((FIRST_REACTION, r.first_reaction_state),
                            (RESOLUTION, r.resolution_state)):
            if state != STOPPED and r.kind not in targeted:
                clocks[name] = _Clock(state, 0, 0, False, False, r.opened_event_id, None)
                continue
            summary = r.clocks[name]
            stop = summary["stop"]
            when = (datetime.fromisoformat(stop[2])
                    if basis == AS_MEASURED and stop is not None else as_of)
            chosen = pick(r.kind, name, when)
            calendar, target = chosen.calendar, chosen.target
            # A stopped clock's figures depend on its summary and rules alone, not on `at`.
            key = (r.opened_at, state, tuple(stop), tuple(map(tuple, summary["pauses"])),
                   chosen) if state == STOPPED and stop is not None else None
            found = None if key is None else _STOPPED_FIGURES.get(key)
            if found is None:
                stopped_at = None if stop is None else datetime.fromisoformat(stop[1])
                pauses = [(datetime.fromisoformat(a),
                           None if b is None else datetime.fromisoformat(b))
                          for a, b in summary["pauses"]]
                found = lean_figures(r.opened_at, at if stopped_at is None else stopped_at,
                                     pauses, state, calendar, target)
                if key is not None:
                    if len(_STOPPED_FIGURES) >= _STOPPED_FIGURES_MAX:
                        _STOPPED_FIGURES.clear()
                    _STOPPED_FIGURES[key] = found
            wall, business, status = found
            clocks[name] = _Clock(state, wall, business, target is not None,
                                  status == "breached", r.opened_event_id,
                                  None if stop is None else UUID(stop[0]))
        items.append(_Item(r.situation_id, str(r.situation_id), r.specialist_id, r.kind,
                           clocks, r.opened_at))
    return items


def _versions(reference: Reference, policy: ReactionPolicy, kind: str,
              when: datetime) -> tuple[Any, Any]:
    """The SLA target version and the calendar version in force for a `kind` situation at
    `when`: the target's calendar, else the one named "default" (None: the built-in one)."""
    version = reference.target(kind, when)
    calendar = None
    for calendar_id in (None if version is None else version.calendar_id,
                        policy.default_calendar_id):
        if calendar is None and calendar_id is not None:
            calendar = reference.calendar(calendar_id, when)
    return version, calendar


def _target(version: Any, name: str) -> Target | None:
    """Clock `name`'s target from an SLA target version (None: no target)."""
    return None if version is None else Target(
        version.first_reaction_seconds if name == FIRST_REACTION
        else version.resolution_seconds, version.business_hours, version.warn_ratio)


def _stats(items: Sequence[_Item], quiet: int, quiet_ids: list[str], ids_limit: int | None,
           cut: list[bool]) -> dict[str, Any]:
    """A group's figures: `items` measured, and `quiet` more situations that have no stopped
    clock and no target (counted only; `quiet_ids` holds at least the first `ids_limit` ids)."""
    count = len(items) + quiet
    return {"count": count,
            "situation_ids": _ids([*(i.key for i in items), *quiet_ids], count, ids_limit, cut),
            **{name: _clock_stats(items, quiet, name, ids_limit, cut) for name in CLOCKS}}


def _ids(keys: list[str], total: int, limit: int | None, cut: list[bool]) -> list[str]:
    """The first `limit` of `total` ids in text order (`keys` holds at least those)."""
    if limit is None:
        return sorted(keys)
    if total > limit:
        cut[0] = True
    return heapq.nsmallest(limit, keys)


def _clock_stats(items: Sequence[_Item], quiet: int, name: str, ids_limit: int | None,
                 cut: list[bool]) -> dict[str, Any]:
    figs = [(i, i.clocks[name]) for i in items]
    stopped = [(i, c) for i, c in figs if c.state == STOPPED]

    def picks(attr: str) -> dict[str, Any]:
        # Nearest rank (domain.reaction.nearest_rank) of both percentiles from one sort.
        ordered = sorted([(getattr(c, attr), i.key, n) for n, (i, c) in enumerate(stopped)])
        out: dict[str, Any] = {}
        for label, percent in (("median", 50), ("p90", 90)):
            if not ordered:
                out[label] = None
                continue
            i, c = stopped[ordered[max(1, -(-percent * len(ordered) // 100)) - 1][2]]
            out[label] = {"seconds": getattr(c, attr), "situation_id": i.situation_id,
                          "start_event_id": c.start_event_id, "stop_event_id": c.stop_event_id}
        return out

    with_target = [(i, c) for i, c in figs if c.has_target]
    decided = [(i, c) for i, c in with_target if c.breached or c.state == STOPPED]
    breached = [i.key for i, c in decided if c.breached]
    return {
        "stopped": len(stopped), "not_stopped": len(figs) - len(stopped) + quiet,
        "wall_seconds": picks("wall_seconds"), "business_seconds": picks("business_seconds"),
        "with_target": len(with_target), "decided": len(decided), "breached": len(breached),
        "breach_rate": round(len(breached) / len(decided), 4) if decided else None,
        "breached_situation_ids": _ids(breached, len(breached), ids_limit, cut),
    }
