"""Reaction-time queries: a situation's figures, the situations list, evidence and the report.

Every figure is computed at query time from the facts in projections.situations: `as_of` limits
the facts to those recorded by then, `at` is the moment the clocks are read, and `basis` picks
the calendar and SLA target versions: `as_measured` (those in force, by recorded time, when the
clock stopped; for a clock still running, those known at `as_of`) or `current` (those known at
`as_of`, for every clock).
"""

from __future__ import annotations

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
    STOPPED,
    Figure,
    Target,
    Timeline,
    figure,
    figure_evidence,
    nearest_rank,
    timeline,
)
from projections.situations import (
    CalendarVersion,
    Reference,
    SituationFacts,
    TargetVersion,
    load_reference,
    load_situations,
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
        version = reference.target(facts.kind, when)
        calendar = None
        # The target's calendar, else the one named "default", else the built-in default.
        for calendar_id in (None if version is None else version.calendar_id,
                            policy.default_calendar_id):
            if calendar is None and calendar_id is not None:
                calendar = reference.calendar(calendar_id, when)
        target = None if version is None else Target(
            version.first_reaction_seconds if name == FIRST_REACTION
            else version.resolution_seconds, version.business_hours, version.warn_ratio)
        figures[name] = figure(clock, policy.default_calendar if calendar is None
                               else reference.parsed(calendar), target, detail=detail)
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
                    kind: str | None = None, specialist: UUID | None = None) -> dict[str, Any]:
    """Per specialist and kind: count, median, p90 and breach rate of both clocks, each figure
    naming the situation and events it came from. Ids only: no personal data."""
    measured = measure_all(conn, policy, at=at, as_of=as_of, basis=basis, detail=False,
                           kind=kind, specialist=specialist, opened_from=opened_from,
                           opened_before=opened_before)
    groups: dict[tuple[str, str], list[Measured]] = {}
    for m in measured:
        groups.setdefault((str(m.facts.specialist_id or ""), m.facts.kind), []).append(m)
    return {
        "at": at, "as_of": as_of, "calendar": basis, "from": opened_from, "to": opened_before,
        "kind": kind, "specialist_id": specialist, "percentile_method": PERCENTILE_METHOD,
        "groups": [{"specialist_id": items[0].facts.specialist_id, "kind": key[1],
                    **_stats(items)} for key, items in sorted(groups.items())],
        "totals": _stats(measured),
    }


def _stats(items: Sequence[Measured]) -> dict[str, Any]:
    return {"count": len(items),
            "situation_ids": sorted(str(m.facts.situation_id) for m in items),
            **{name: _clock_stats(items, name) for name in CLOCKS}}


def _clock_stats(items: Sequence[Measured], name: str) -> dict[str, Any]:
    figs = [(m, m.figures[name]) for m in items]
    stopped = [(m, f) for m, f in figs if f.clock.state == STOPPED]

    def pick(percent: int, attr: str) -> dict[str, Any] | None:
        found = nearest_rank(stopped, percent,
                             key=lambda mf: (getattr(mf[1], attr), str(mf[0].facts.situation_id)))
        if found is None:
            return None
        m, f = found
        assert f.clock.stop is not None
        return {"seconds": getattr(f, attr), "situation_id": m.facts.situation_id,
                "start_event_id": f.clock.start.event.event_id,
                "stop_event_id": f.clock.stop.event.event_id}

    with_target = [(m, f) for m, f in figs if f.target is not None]
    decided = [(m, f) for m, f in with_target if f.breached or f.clock.state == STOPPED]
    breached = sorted(str(m.facts.situation_id) for m, f in decided if f.breached)
    return {
        "stopped": len(stopped), "not_stopped": len(figs) - len(stopped),
        "wall_seconds": {"median": pick(50, "wall_seconds"), "p90": pick(90, "wall_seconds")},
        "business_seconds": {"median": pick(50, "business_seconds"),
                             "p90": pick(90, "business_seconds")},
        "with_target": len(with_target), "decided": len(decided), "breached": len(breached),
        "breach_rate": round(len(breached) / len(decided), 4) if decided else None,
        "breached_situation_ids": breached,
    }
