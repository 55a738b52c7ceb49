"""Shared pieces of the demo history: the step type, the world every story sees, story plumbing."""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from commands.application import Actor
from commands.base import Command
from commands.situations import (
    AcknowledgeSituation,
    PauseSituation,
    ReopenSituation,
    ResolveSituation,
    ResumeSituation,
)
from demo.words import RESOLUTIONS
from domain.business_calendar import BusinessCalendar, add_business_seconds
from domain.months import add_months

HOUR = 3600
CURRENCY = "GBP"


@dataclass(frozen=True)
class Alias:
    """A stand-in for an id the server chooses (a situation opened automatically, a new survey
    template): the loader swaps in the real id once the creating step is written."""

    index: int  # the command of the step that creates it
    link: str | None  # its name among the command's links; None: the command's own target
    id: UUID


@dataclass(frozen=True)
class DemoStep:
    """Commands one actor issues together at one business moment."""

    at: datetime
    actor: Actor
    commands: tuple[Command, ...]
    key: UUID | None  # the client concerned; None: reference data, written on its own
    aliases: tuple[Alias, ...] = ()


@dataclass(frozen=True)
class Staff:
    id: UUID
    name: str
    user: str
    team: str  # "accounts" (remote service) or "care" (car service)

    @property
    def actor(self) -> Actor:
        return Actor(self.user, "operator")


@dataclass(frozen=True)
class World:
    """What every story may know: time frame, calendar, specialists, the survey template."""

    ns: UUID
    start: datetime
    end: datetime
    months: int
    zone: ZoneInfo
    calendar: BusinessCalendar
    staff: tuple[Staff, ...]
    template: UUID  # an alias until the template is written
    review_at: datetime  # the mid-history review: template v2, tighter complaint target
    leaver: int  # index of the account manager who leaves
    leave_at: datetime
    starts: tuple[datetime, ...] = ()  # month starts, start..end (filled by `with_months`)

    def id(self, *parts: object) -> UUID:
        return uuid5(self.ns, ":".join(str(p) for p in parts))

    def local(self, day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=self.zone).astimezone(UTC)

    def month_start(self, m: int) -> datetime:
        if 0 <= m < len(self.starts):
            return self.starts[m]
        first = add_months(self.start.astimezone(self.zone).date(), m)
        return self.local(first, 0)

    def day_of(self, at: datetime) -> date:
        return at.astimezone(self.zone).date()

    def workday(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.calendar.holidays

    def next_workday(self, day: date) -> date:
        while not self.workday(day):
            day += timedelta(days=1)
        return day

    def after_business(self, at: datetime, seconds: int) -> datetime:
        return add_business_seconds(self.calendar, at, seconds)


def minutes(at: datetime, n: float) -> datetime:
    return at + timedelta(minutes=n)


class Story:
    """One client's life: `month()` schedules steps (possibly later ones); `steps()` yields them
    in time order, a month at a time, so only a little of the history is ever held."""

    def __init__(self, world: World, index: int, client_id: UUID, rng: random.Random,
                 force: frozenset[str]) -> None:
        self.world = world
        self.index = index
        self.client_id = client_id
        self.rng = rng
        self.force = force
        self.erased_at: datetime | None = None
        self._pending: list[tuple[datetime, int, DemoStep]] = []
        self._seq = 0
        self._floor = world.start
        self._fired: set[str] = set()

    def month(self, m: int, lo: datetime, hi: datetime) -> None:
        raise NotImplementedError

    def steps(self) -> Iterator[DemoStep]:
        for m in range(self.world.months):
            hi = self.world.month_start(m + 1)
            self._floor = self.world.month_start(m)
            self.month(m, self._floor, hi)
            while self._pending and self._pending[0][0] < hi:
                yield heapq.heappop(self._pending)[2]

    def trait(self, name: str, p: float) -> bool:
        """A random trait; the showcase clients have some forced, so small demos show them."""
        return self.rng.random() < p or name in self.force

    def chance(self, name: str, p: float) -> bool:
        """A random happening; a forced one happens the first time it is asked about."""
        hit = self.rng.random() < p
        if name in self.force and name not in self._fired:
            self._fired.add(name)
            return True
        return hit

    def emit(self, at: datetime, actor: Actor, *commands: Command,
             aliases: tuple[Alias, ...] = ()) -> bool:
        """Schedule a step; one at or after the end of history (or after erasure) is dropped."""
        if at < self._floor:
            # Steps before this month were yielded already: the merged history would go back.
            raise AssertionError(f"step at {at} scheduled while generating from {self._floor}")
        if at >= self.world.end or (self.erased_at is not None and at > self.erased_at):
            return False
        self._seq += 1
        step = DemoStep(at, actor, tuple(commands), self.client_id, aliases)
        heapq.heappush(self._pending, (at, self._seq, step))
        return True

    def moment(self, day: date, lo: datetime | None = None) -> datetime:
        """A business moment on the first workday from `day` (not before `lo`)."""
        at = self.world.local(self.world.next_workday(day), self.rng.randint(9, 16),
                              self.rng.randrange(0, 60, 5))
        return at if lo is None or at >= lo else lo + timedelta(minutes=self.rng.randint(5, 90))

    def erase_after(self, at: datetime) -> None:
        """Nothing may follow an erasure: drop what was scheduled after it."""
        self.erased_at = at
        self._pending = [p for p in self._pending if p[0] <= at]
        heapq.heapify(self._pending)

    def handle_situation(self, situation: UUID, opened: datetime, kind: str, handler: Staff,
                         react: Command | None = None) -> None:
        """React to and resolve a situation: mostly fast, some slow, a few breaching or left open.
        `react` (a contact naming it) replaces the acknowledgement when given."""
        rng, w = self.rng, self.world
        roll = rng.random()
        if roll < 0.03 and "pause" not in self.force:
            return  # never picked up: an open breach the reaction report must show
        delay = (rng.randint(5, 90) * 60 if roll < 0.68 else
                 rng.randint(2, 7) * HOUR if roll < 0.90 else rng.randint(10, 30) * HOUR)
        first = w.after_business(opened, delay)
        if react is not None:
            self.emit(first, handler.actor, react.model_copy(update={"occurred_at": first}))
        else:
            self.emit(first, handler.actor, AcknowledgeSituation(
                occurred_at=first, situation_id=situation,
                note=rng.choice((None, "Looking into it.", "Called the client back."))))
        at = first
        if self.trait("pause", 0.06):
            pause = w.after_business(at, rng.randint(1, 4) * HOUR)
            at = w.after_business(pause, rng.randint(9, 45) * HOUR)  # the client answers
            self.emit(pause, handler.actor, PauseSituation(
                occurred_at=pause, situation_id=situation,
                reason="Waiting for the client to send details."))
            self.emit(at, handler.actor, ResumeSituation(occurred_at=at, situation_id=situation))
        if rng.random() < 0.05 and "pause" not in self.force:
            return  # reacted to but still unresolved
        slow = rng.random() < 0.15
        done = w.after_business(at, rng.randint(12, 40) * HOUR if slow
                                else rng.randint(1, 10) * HOUR)
        resolution = RESOLUTIONS.get(kind, RESOLUTIONS["other"])
        self.emit(done, handler.actor, ResolveSituation(
            occurred_at=done, situation_id=situation, resolution=resolution))
        if self.trait("reopen", 0.03):
            again = w.after_business(done, rng.randint(3, 20) * HOUR)
            self.emit(again, handler.actor, ReopenSituation(
                occurred_at=again, situation_id=situation, reason="The problem came back."))
            fixed = w.after_business(again, rng.randint(2, 16) * HOUR)
            self.emit(fixed, handler.actor, ResolveSituation(
                occurred_at=fixed, situation_id=situation, resolution="Fixed for good this time."))
