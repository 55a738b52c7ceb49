"""Reaction-time test support: a desk that records situations through the command layer while a
manual clock plays the server's time (each write is recorded at the moment it happened, unless
told to enter it later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from commands import activity, clients, reference, service, situations
from commands.application import Actor
from commands.base import Command
from infra.bootstrap import Container, build
from infra.clock import ManualClock
from infra.settings import Settings

BERLIN = ZoneInfo("Europe/Berlin")
OPERATOR = Actor("operator-user", "operator")
ADMIN = Actor("admin-user", "admin")
WEEKDAYS = {d: [("09:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri")}


def berlin(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=BERLIN)


@contextmanager
def berlin_container(settings: Settings, start: datetime) -> Iterator[tuple[Container,
                                                                            ManualClock]]:
    """A container whose CRM_TIMEZONE is Europe/Berlin, on a manual clock."""
    clock = ManualClock(start)
    built = build(settings.model_copy(update={"timezone": "Europe/Berlin"}), clock=clock)
    try:
        yield built, clock
    finally:
        built.close()


class Desk:
    def __init__(self, container: Container, clock: ManualClock) -> None:
        self.container = container
        self.clock = clock

    def run(self, command: Command, actor: Actor = OPERATOR,
            entered_after: timedelta = timedelta()) -> tuple[UUID, dict[str, UUID]]:
        """Record `command` at its occurred_at (+ a data-entry delay) on the manual clock."""
        if command.occurred_at is not None:
            self.clock.set(command.occurred_at + entered_after)
        written = self.container.app.execute([command], actor).results[0]
        return written.id, written.links

    def specialist(self, name: str) -> UUID:
        return self.run(reference.RegisterSpecialist(name=name), ADMIN)[0]

    def client(self, specialist_id: UUID | None = None) -> UUID:
        return self.run(clients.RegisterClient(kind="customer", form="person", name="Ann Lee",
                                               specialist_id=specialist_id))[0]

    def complaint(self, client_id: UUID, at: datetime, **kw: timedelta) -> UUID:
        _id, links = self.run(service.RegisterComplaint(client_id=client_id, text="Car scratched",
                                                        occurred_at=at), **kw)
        return links["situation_id"]

    def manual(self, client_id: UUID, kind: str, at: datetime) -> UUID:
        return self.run(situations.OpenSituation(client_id=client_id, kind=kind,
                                                 description="Late payment", occurred_at=at))[0]

    def contact(self, client_id: UUID, situation_id: UUID, at: datetime,
                **kw: timedelta) -> UUID:
        return self.run(activity.LogContact(
            client_id=client_id, channel="phone", direction="outbound", topic="Call back",
            situation_id=situation_id, occurred_at=at), **kw)[0]

    def acknowledge(self, situation_id: UUID, at: datetime) -> None:
        self.run(situations.AcknowledgeSituation(situation_id=situation_id, occurred_at=at))

    def pause(self, situation_id: UUID, at: datetime) -> None:
        self.run(situations.PauseSituation(situation_id=situation_id, occurred_at=at))

    def resume(self, situation_id: UUID, at: datetime) -> None:
        self.run(situations.ResumeSituation(situation_id=situation_id, occurred_at=at))

    def resolve(self, situation_id: UUID, at: datetime) -> None:
        self.run(situations.ResolveSituation(situation_id=situation_id, resolution="Repainted",
                                             occurred_at=at))

    def reopen(self, situation_id: UUID, at: datetime) -> None:
        self.run(situations.ReopenSituation(situation_id=situation_id, occurred_at=at))

    def calendar(self, at: datetime, holidays: list[date] | None = None,
                 name: str = "default") -> None:
        self.clock.set(at)
        self.run(reference.SetCalendar(calendar=name, timezone="Europe/Berlin", hours=WEEKDAYS,
                                       holidays=holidays or []), ADMIN)

    def sla(self, at: datetime, kind: str, first_reaction: int, resolution: int,
            business_hours: bool = True, warn_ratio: float = 0.8) -> None:
        self.clock.set(at)
        self.run(reference.SetSlaTarget(situation_kind=kind, first_reaction_seconds=first_reaction,
                                        resolution_seconds=resolution,
                                        business_hours=business_hours, warn_ratio=warn_ratio),
                 ADMIN)

    def settle(self) -> None:
        """Wait (bounded) until the read models hold every stored event."""
        assert self.container.follower.wait_for(self.container.store_position(), 10.0)
