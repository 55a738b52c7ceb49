"""Reaction-time arithmetic: a situation's two clocks, their figures, deadlines and evidence.

Clock rules (docs/reaction-times.md):

* Both clocks start at `SituationOpened`.
* The first-reaction clock stops at the earliest `SituationAcknowledged` or `ContactLogged` naming
  the situation, by business time. It is measured once: a reopen does not restart it.
* The resolution clock stops at the `SituationResolved` that leaves the situation resolved; a
  reopen resumes it, so it measures the open time from the opening to the final resolution.
* Neither clock runs while the situation is paused (paused -> resumed) or resolved (resolved ->
  reopened): those are the stoppages, excluded from wall-clock and business figures alike.
* A situation's own events count in stream order; one back-dated before the event preceding it
  counts at that event's time (`counted_at`), so no interval is ever inverted. A reaction dated
  before the opening counts at the opening (0 s).
* Figures are whole seconds, floored. A target of T seconds is met while the figure is <= T;
  it is breached once the figure exceeds T; a warning is due from ceil(T x warn_ratio) seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

from domain.business_calendar import BusinessCalendar, wall_seconds_excluding
from domain.business_index import (
    add_business_seconds,
    business_seconds,
    business_seconds_excluding,
)

OPENED, ACKNOWLEDGED, CONTACT = "SituationOpened", "SituationAcknowledged", "ContactLogged"
PAUSED, RESUMED = "SituationPaused", "SituationResumed"
RESOLVED, REOPENED = "SituationResolved", "SituationReopened"
CLOCK_EVENT_TYPES = (OPENED, ACKNOWLEDGED, CONTACT, PAUSED, RESUMED, RESOLVED, REOPENED)
FIRST_REACTION, RESOLUTION = "first_reaction", "resolution"
CLOCKS = (FIRST_REACTION, RESOLUTION)
STOPPED, RUNNING, HALTED = "stopped", "running", "halted"

_STATUS_AFTER = {PAUSED: "paused", RESUMED: "open", RESOLVED: "resolved", REOPENED: "open"}
T = TypeVar("T")


@dataclass(frozen=True)
class ClockEvent:
    """An event that starts, stops or pauses a clock, with both of its times."""

    event_id: UUID
    type: str
    occurred_at: datetime
    recorded_at: datetime
    position: int
    stream_id: UUID
    version: int


@dataclass(frozen=True)
class Mark:
    """An event as the clocks count it: at `at` (its occurred_at, unless back-dated)."""

    event: ClockEvent
    at: datetime


@dataclass(frozen=True)
class Stoppage:
    """A span in which no clock runs: the situation was paused, or resolved."""

    reason: str
    start: Mark
    end: Mark | None  # None: still paused or resolved at the measured moment


@dataclass(frozen=True)
class Clock:
    """When one clock started, whether and when it stopped, and what it excludes."""

    name: str
    start: Mark
    stop: Mark | None
    end: datetime  # the stop, or the measured moment while the clock has not stopped
    stoppages: tuple[Stoppage, ...]
    state: str  # stopped | running | halted (paused, or resolved before any reaction)

    def pauses(self) -> list[tuple[datetime, datetime | None]]:
        return [(s.start.at, None if s.end is None else s.end.at) for s in self.stoppages]

    def spans(self, *, open_tail: bool = False) -> list[tuple[datetime, datetime | None]]:
        """The running spans in [start, end); with `open_tail`, the span running at `end` (if
        any) runs on without end: what a deadline is computed along, for a running clock and,
        as if it had kept running, for a stopped one."""
        raw: list[tuple[datetime, datetime | None]] = []
        cursor: datetime | None = self.start.at
        for lower, upper in sorted(self.pauses(), key=lambda p: p[0]):
            if cursor is None:
                break
            if lower > cursor:
                raw.append((cursor, lower))
            cursor = None if upper is None else max(cursor, upper)
        if cursor is not None:
            raw.append((cursor, None))
        if open_tail:
            return [(lower, upper) for lower, upper in raw if lower <= self.end]
        clipped: list[tuple[datetime, datetime | None]] = []
        for lower, upper in raw:
            upper = self.end if upper is None else min(upper, self.end)
            if lower < upper:
                clipped.append((lower, upper))
        return clipped


@dataclass(frozen=True)
class Timeline:
    """A situation's clocks at a moment, from its events alone (no calendar yet)."""

    at: datetime
    status: str  # open | paused | resolved
    opened: Mark
    marks: tuple[Mark, ...]  # every counted event, the ignored later reactions included
    first_reaction: Clock
    resolution: Clock

    def clock(self, name: str) -> Clock:
        return self.first_reaction if name == FIRST_REACTION else self.resolution


def timeline(events: Iterable[ClockEvent], at: datetime) -> Timeline | None:
    """The clocks at `at`; None when the situation was not yet opened at that moment."""
    at = _utc(at)
    events = list(events)
    own = sorted((e for e in events if e.type != CONTACT), key=lambda e: (e.version, e.position))
    if not own or own[0].type != OPENED:
        return None
    marks: list[Mark] = []
    for event in own:
        counted = _utc(event.occurred_at)
        if marks:
            counted = max(counted, marks[-1].at)
        if counted > at:
            break  # counted times rise with the stream, so the rest is later still
        marks.append(Mark(event, counted))
    if not marks:
        return None
    opened = marks[0]
    contacts = [Mark(e, max(_utc(e.occurred_at), opened.at)) for e in events if e.type == CONTACT]
    reactions = [m for m in marks if m.event.type == ACKNOWLEDGED]
    reactions += [m for m in contacts if m.at <= at]
    first = min(reactions, key=lambda m: (m.at, m.event.position), default=None)

    status = "open"
    stoppages: list[Stoppage] = []
    current: Stoppage | None = None
    last_resolve: Mark | None = None
    for mark in marks[1:]:
        kind = mark.event.type
        if kind in (RESUMED, REOPENED, RESOLVED) and current is not None:
            stoppages.append(Stoppage(current.reason, current.start, mark))
            current = None
        if kind in (PAUSED, RESOLVED):
            current = Stoppage("paused" if kind == PAUSED else "resolved", mark, None)
        if kind == RESOLVED:
            last_resolve = mark
        status = _STATUS_AFTER.get(kind, status)
    if current is not None:
        stoppages.append(current)

    def clock(name: str, stop: Mark | None) -> Clock:
        end = at if stop is None else stop.at
        kept = tuple(s for s in stoppages if s.start.at < end)
        state = STOPPED if stop is not None else RUNNING if status == "open" else HALTED
        return Clock(name, opened, stop, end, kept, state)

    every = sorted([*marks, *(m for m in contacts if m.at <= at)],
                   key=lambda m: (m.at, m.event.position))
    return Timeline(at, status, opened, tuple(every), clock(FIRST_REACTION, first),
                    clock(RESOLUTION, last_resolve if status == "resolved" else None))


@dataclass(frozen=True)
class Target:
    """An SLA target for one clock: seconds, on business hours or the wall clock."""

    seconds: int
    business_hours: bool
    warn_ratio: Decimal

    @property
    def warn_seconds(self) -> int:
        return math.ceil(Decimal(self.seconds) * self.warn_ratio)


@dataclass(frozen=True)
class Segment:
    start: datetime
    end: datetime
    wall_seconds: int
    business_seconds: int


@dataclass(frozen=True)
class Figure:
    """One clock measured under a calendar and (maybe) a target."""

    clock: Clock
    wall_seconds: int
    business_seconds: int
    segments: tuple[Segment, ...]
    target: Target | None
    # The last instant the target is met, and the first it is exceeded; for a stopped clock as if
    # it had kept running (the margin it stopped with); None for a halted clock short of them.
    deadline: datetime | None
    warn_at: datetime | None
    breach_at: datetime | None
    status: str  # no_target | ok | warning | met | breached

    @property
    def elapsed(self) -> int:
        business = self.target is None or self.target.business_hours
        return self.business_seconds if business else self.wall_seconds

    @property
    def breached(self) -> bool:
        return self.status == "breached"


def figure(clock: Clock, calendar: BusinessCalendar, target: Target | None, *,
           detail: bool = True) -> Figure:
    """The clock's figures and SLA status; without `detail`, no segments and no deadlines
    (None): what aggregates need, at a fraction of the cost."""
    wall, business, status = lean_figures(clock.start.at, clock.end, clock.pauses(),
                                          clock.state, calendar, target)
    segments = tuple(Segment(s, e, wall_seconds_excluding(s, e, []),
                             business_seconds(calendar, s, e))
                     for s, e in clock.spans() if e is not None) if detail else ()
    if target is None:
        return Figure(clock, wall, business, segments, None, None, None, None, status)

    def reach(seconds: int) -> datetime | None:
        return _reach(clock, calendar, target.business_hours, seconds)

    if not detail:
        return Figure(clock, wall, business, segments, target, None, None, None, status)
    return Figure(clock, wall, business, segments, target, reach(target.seconds),
                  reach(target.warn_seconds), reach(target.seconds + 1), status)


def lean_figures(start: datetime, end: datetime,
                 pauses: Sequence[tuple[datetime, datetime | None]], state: str,
                 calendar: BusinessCalendar, target: Target | None) -> tuple[int, int, str]:
    """Wall seconds, business seconds and SLA status of a clock running from `start` to `end`
    without `pauses`: what `figure` computes, from a clock's bare facts (stored summaries)."""
    wall = wall_seconds_excluding(start, end, list(pauses))
    business = business_seconds_excluding(calendar, start, end, list(pauses))
    if target is None:
        return wall, business, "no_target"
    elapsed = business if target.business_hours else wall
    if elapsed > target.seconds:
        status = "breached"
    elif state == STOPPED:
        status = "met"
    else:
        status = "warning" if elapsed >= target.warn_seconds else "ok"
    return wall, business, status


def _reach(clock: Clock, calendar: BusinessCalendar, business: bool,
           seconds: int) -> datetime | None:
    """The instant the clock's figure reaches `seconds`; None if it stopped or halted short."""
    if business and calendar.hours.is_empty:
        return None  # a calendar without working hours never reaches a business target
    remaining = seconds
    for start, end in clock.spans(open_tail=clock.state != HALTED):
        have = None if end is None else (business_seconds(calendar, start, end) if business
                                         else wall_seconds_excluding(start, end, []))
        if have is None or have >= remaining:
            if business:
                return add_business_seconds(calendar, start, remaining)
            return start + timedelta(seconds=remaining)
        remaining -= have
    return None


def nearest_rank(items: Sequence[T], percent: int, key: Any) -> T | None:
    """The nearest-rank percentile: the item at rank ceil(percent/100 x n) of `items` sorted by
    `key` (1-based). Always one of the items, so a figure can name where it came from."""
    if not items:
        return None
    ordered = sorted(items, key=key)
    rank = max(1, -(-percent * len(ordered) // 100))
    return ordered[rank - 1]


def figure_evidence(fig: Figure) -> dict[str, Any]:
    """The evidence of one figure: what starts, stops and pauses the clock, and the arithmetic."""
    clock = fig.clock

    def mark(m: Mark | None) -> dict[str, Any] | None:
        return None if m is None else {"event_id": m.event.event_id, "type": m.event.type,
                                       "counted_at": m.at}

    target = None
    if fig.target is not None:
        target = {"seconds": fig.target.seconds,
                  "basis": "business" if fig.target.business_hours else "wall",
                  "warn_ratio": str(fig.target.warn_ratio),
                  "warn_seconds": fig.target.warn_seconds, "deadline": fig.deadline,
                  "warn_at": fig.warn_at, "breach_at": fig.breach_at}
    walls = [s.wall_seconds for s in fig.segments]
    businesses = [s.business_seconds for s in fig.segments]
    return {
        "clock": clock.name, "state": clock.state, "start": mark(clock.start),
        "stop": mark(clock.stop), "end": clock.end,
        "excluded": [{"reason": s.reason, "from": mark(s.start), "to": mark(s.end)}
                     for s in clock.stoppages],
        "segments": [{"from": s.start, "to": s.end, "wall_seconds": s.wall_seconds,
                      "business_seconds": s.business_seconds} for s in fig.segments],
        "wall_seconds": fig.wall_seconds, "business_seconds": fig.business_seconds,
        "arithmetic": {"wall": _sum_text(walls, fig.wall_seconds),
                       "business": _sum_text(businesses, fig.business_seconds)},
        "target": target, "status": fig.status,
    }


def _sum_text(parts: list[int], total: int) -> str:
    return f"{' + '.join(map(str, parts)) or '0'} = {total}"


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a timezone-aware instant is required, got {value!r}")
    return value.astimezone(UTC)
