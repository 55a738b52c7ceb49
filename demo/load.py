"""Writes demo steps through the command layer, many steps per atomic write.

Steps are read a window at a time. Each round takes the earliest waiting step of every client in
the window and writes them grouped by actor (`execute` takes one actor), so the steps of one
write concern different clients and never depend on each other; a client's later steps wait for
a later round, so its events keep the order of its story. Reference data is written on its own,
after everything before it. The ids the server chooses (situations opened automatically, a new
survey template) are announced by the steps as aliases and swapped for the real ids from the
receipts before later steps run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from commands.application import Actor, BatchItemError, CrmApplication
from commands.base import Command
from commands.errors import CommandError
from demo.world import DemoStep
from domain.errors import DomainError


@dataclass
class LoadStats:
    steps: int = 0
    commands: int = 0
    writes: int = 0
    first_position: int = 0
    last_position: int = 0
    reached: datetime | None = None  # the latest business moment written so far

    @property
    def events(self) -> int:
        return self.last_position - self.first_position


class DemoLoadError(Exception):
    """A step was refused (a bug in the generator); nothing of its write was saved."""

    def __init__(self, step: DemoStep, command: Command, error: Exception) -> None:
        super().__init__(f"{command.NAME} at {step.at.isoformat()} by {step.actor.user} "
                         f"(client {step.key}): {error}")
        self.step = step
        self.command = command
        self.error = error


class Loader:
    """`batch` caps the steps of one write (1 = one write per step); `window` is how many
    steps are looked at to fill a round (default 8 x batch)."""

    def __init__(self, app: CrmApplication, *, batch: int = 500, window: int | None = None,
                 on_write: Callable[[datetime, LoadStats], None] | None = None) -> None:
        self.app = app
        self.batch = max(1, batch)
        self.window = max(1, window if window is not None else 8 * self.batch)
        self.on_write = on_write
        self.stats = LoadStats()
        self._real: dict[UUID, UUID] = {}

    def load(self, steps: Iterable[DemoStep]) -> LoadStats:
        start = int(self.app.recorder.max_notification_id() or 0)
        self.stats = LoadStats(first_position=start, last_position=start)
        source = iter(steps)
        waiting: deque[DemoStep] = deque()
        more = True
        while True:
            while more and len(waiting) < self.window:
                step = next(source, None)
                if step is None:
                    more = False
                else:
                    waiting.append(step)
            if not waiting:
                return self.stats
            if waiting[0].key is None:
                self._write([waiting.popleft()])
                continue
            self._round(waiting)

    def _round(self, waiting: deque[DemoStep]) -> None:
        """Write the first waiting step of each client (up to the next reference step)."""
        chosen: list[DemoStep] = []
        later: deque[DemoStep] = deque()
        clients: set[UUID] = set()
        while waiting:
            step = waiting.popleft()
            if step.key is None:
                waiting.appendleft(step)
                break
            if step.key in clients:
                later.append(step)
            else:
                clients.add(step.key)
                chosen.append(step)
        waiting.extendleft(reversed(later))
        by_actor: dict[Actor, list[DemoStep]] = {}
        for step in chosen:
            by_actor.setdefault(step.actor, []).append(step)
        for group in by_actor.values():
            for at in range(0, len(group), self.batch):
                self._write(group[at:at + self.batch])

    def _write(self, group: list[DemoStep]) -> None:
        commands = [self._resolved(c) for step in group for c in step.commands]
        try:
            receipt = self.app.execute(commands, group[0].actor)
        except BatchItemError as failed:
            step, command = self._locate(group, failed.index)
            raise DemoLoadError(step, command, failed.error) from failed
        except (DomainError, CommandError) as error:
            raise DemoLoadError(group[0], commands[0], error) from error
        offset = 0
        for step in group:
            for alias in step.aliases:
                written = receipt.results[offset + alias.index]
                self._real[alias.id] = written.links[alias.link] if alias.link else written.id
            offset += len(step.commands)
        self.stats.steps += len(group)
        self.stats.commands += len(commands)
        self.stats.writes += 1
        self.stats.last_position = max(self.stats.last_position, receipt.position)
        latest = max(step.at for step in group)
        self.stats.reached = max(self.stats.reached or latest, latest)
        if self.on_write is not None:
            self.on_write(self.stats.reached, self.stats)

    def _resolved(self, command: Command) -> Command:
        swaps = {name: self._real[value] for name, value in vars(command).items()
                 if isinstance(value, UUID) and value in self._real}
        return command.model_copy(update=swaps) if swaps else command

    @staticmethod
    def _locate(group: list[DemoStep], index: int) -> tuple[DemoStep, Command]:
        for step in group:
            if index < len(step.commands):
                return step, step.commands[index]
            index -= len(step.commands)
        raise IndexError(index)
