"""The benchmark history: the demo history of `crm demo` (the `demo` package), sized for the bench.

`History(events, clients, seed=...)` asks the generator for the shortest history, in whole months,
in which about `clients` clients bring about `events` events (`demo.history.size_for`: fewer
clients when even one month of them holds more), ending on `END`. So every figure is measured on
the real mix: car-service visits with surveys and the situations unhappy answers open, remote
clients with contact persons, planned and emergency contacts, agreements, invoices, acts and
payments, and the reference data (specialists, calendar, SLA targets, survey template, payment
plans). The same seed and sizes give the same history; it is written through the command layer by
the demo's loader (`demo.load.Loader`: steps grouped by actor into atomic writes, the ids the
server chooses swapped in).

`heavy_client` is the as-of card benchmark's client: one client with many contacts.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from uuid import UUID

from commands.activity import LogContact
from commands.application import CrmApplication
from commands.base import Command
from commands.clients import EraseClient, RegisterClient
from demo.history import Size, generate, size_for
from demo.load import Loader, LoadStats
from demo.world import DemoStep
from domain.months import add_months
from domain.values import Channel, Direction
from domain.values import ContactPurpose as P

END = date(2026, 7, 1)  # the history's (exclusive) end: its last month is June 2026
START = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)  # the bench's business window: START .. END
SPAN = datetime(END.year, END.month, END.day, tzinfo=UTC) - START
TOPICS = ("Invoice question", "Contract renewal", "Usage review", "New module demo",
          "Support follow-up", "Price list", "Onboarding call", "Quarterly review")
WORDS = ("the client asked about the last invoice and the terms of the annual plan",
         "we agreed to send the updated price list and to call back next week",
         "complains that the report export is slow and wants a workaround",
         "new accountant joined, needs access and a short training session")


class History:
    """About `events` events over about `clients` clients; `expected` is the estimate (the store
    counts the exact figure), `size` what the generator was asked for."""

    def __init__(self, events: int, clients: int, *, seed: int = 7) -> None:
        self.size: Size = size_for(events, clients)
        self.seed = seed
        self.start = add_months(END, -self.size.months)
        self.expected = self.size.events
        self._registered: dict[UUID, datetime] = {}  # when, in registration order
        self._erased: set[UUID] = set()
        self._counter = 0

    @property
    def clients(self) -> int:
        return self.size.clients

    @property
    def months(self) -> int:
        return self.size.months

    def steps(self) -> Iterator[DemoStep]:
        """The demo generator's steps; the clients they register are remembered on the way."""
        for step in generate(seed=self.seed, clients=self.size.clients, months=self.size.months,
                             start=self.start):
            for command in step.commands:
                if isinstance(command, RegisterClient) and command.id is not None:
                    self._registered[command.id] = command.occurred_at or step.at
                elif isinstance(command, EraseClient):
                    self._erased.add(command.client_id)
            yield step

    def write(self, app: CrmApplication, batch: int,
              on_write: Callable[[datetime, LoadStats], None] | None = None) -> LoadStats:
        """Write the history through the command layer, at most `batch` steps per write."""
        return Loader(app, batch=batch, on_write=on_write).load(self.steps())

    def client_ids(self, before: datetime | None = None) -> list[UUID]:
        """The clients registered (before `before`, when given) and not erased, among the steps
        generated so far."""
        return [c for c, at in self._registered.items()
                if c not in self._erased and (before is None or at < before)]

    def registered(self) -> dict[UUID, datetime]:
        """When each client was registered (erased ones included), among the steps so far."""
        return dict(self._registered)

    def new_id(self, kind: str) -> UUID:
        """A fresh deterministic id for something added beside the history (tests' extras)."""
        self._counter += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, f"crm-bench:{self.seed}:{kind}:{self._counter}")


def heavy_client(client_id: UUID, events: int, *, seed: int = 7) -> Iterator[Command]:
    """`events` contacts logged for one client (the as-of card benchmark's client)."""
    rng = random.Random(seed)
    for n in range(events):
        yield LogContact(client_id=client_id, channel=Channel.PHONE, direction=Direction.OUTBOUND,
                         purpose=P.REGULAR, topic=TOPICS[n % len(TOPICS)],
                         summary=rng.choice(WORDS),
                         occurred_at=START + SPAN * (n / max(events, 1)))


def batches(commands: Iterator[Command], size: int) -> Iterator[list[Command]]:
    batch: list[Command] = []
    for command in commands:
        batch.append(command)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["END", "SPAN", "START", "History", "batches", "heavy_client"]
