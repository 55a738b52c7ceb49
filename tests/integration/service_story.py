"""Test factory: service-station histories written through the command layer, business-timed."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Engine, select

from commands.activity import LogContact
from commands.application import Actor
from commands.base import Command
from commands.clients import RegisterClient, UpdateClient
from commands.reference import DefineSurveyTemplate, RegisterSpecialist
from commands.service import (
    CloseWorkOrder,
    CompleteSurvey,
    OpenWorkOrder,
    RegisterComplaint,
    SetTick,
    StartSurvey,
)
from infra.bootstrap import Container, build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.segments import Segments
from projections.surveys import ServiceSurveys

OPERATOR = Actor("operator-user", "operator")
ADMIN = Actor("admin-user", "admin")
QUESTIONS = [
    {"id": "q1", "text": "Was booking easy?", "stage": "booking"},
    {"id": "q2", "text": "Were you welcomed?", "stage": "reception"},
    {"id": "q3", "text": "Was the fault fixed?", "stage": "repair"},
    {"id": "q4", "text": "Was the car clean?", "stage": "repair"},
]
MY_TABLES = (*ServiceSurveys.tables, *Segments.tables)


def t(text: str) -> datetime:
    """An instant from RFC 3339 text (tests write times as the API would receive them)."""
    return datetime.fromisoformat(text)


@contextmanager
def station_container(settings: Settings, now: str) -> Iterator[tuple[Container, ManualClock]]:
    """A container whose record time is a manual clock starting at `now`."""
    clock = ManualClock(t(now))
    built = build(settings, clock=clock)
    try:
        yield built, clock
    finally:
        built.close()


class Station:
    """Writes facts one command at a time (each is its own save, like an API call)."""

    def __init__(self, container: Container) -> None:
        self.container = container

    def run(self, command: Command, actor: Actor = OPERATOR) -> Any:
        return self.container.app.execute([command], actor).results[0]

    def specialist(self, name: str) -> UUID:
        return self.run(RegisterSpecialist(name=name), ADMIN).id  # type: ignore[no-any-return]

    def template(self, questions: list[dict[str, str]] | None = None,
                 template_id: UUID | None = None) -> UUID:
        return self.run(DefineSurveyTemplate(  # type: ignore[no-any-return]
            name="After-visit survey", template_id=template_id,
            questions=questions or QUESTIONS), ADMIN).id

    def client(self, at: str, specialist: UUID | None = None, name: str = "Ann Lee") -> UUID:
        return self.run(RegisterClient(  # type: ignore[no-any-return]
            kind="customer", form="person", name=name, specialist_id=specialist,
            occurred_at=t(at))).id

    def reassign(self, client: UUID, specialist: UUID, at: str) -> None:
        self.run(UpdateClient(client_id=client, specialist_id=specialist, occurred_at=t(at)))

    def open(self, client: UUID, at: str, asset: str = "B-AB 123") -> UUID:
        return self.run(OpenWorkOrder(  # type: ignore[no-any-return]
            client_id=client, asset=asset, stages=["booking", "reception", "repair"],
            occurred_at=t(at))).id

    def close(self, order: UUID, at: str, amount: str = "100.00", currency: str = "EUR") -> None:
        self.run(CloseWorkOrder(work_order_id=order, amount=amount, currency=currency,
                                occurred_at=t(at)))

    def visit(self, client: UUID, closed: str, amount: str = "100.00",
              currency: str = "EUR") -> UUID:
        """A work order opened and closed at the same business moment."""
        order = self.open(client, closed)
        self.close(order, closed, amount, currency)
        return order

    def start(self, order: UUID, template: UUID, at: str) -> UUID:
        return self.run(StartSurvey(  # type: ignore[no-any-return]
            work_order_id=order, template_id=template, interviewer="iv-1",
            occurred_at=t(at))).id

    def finish(self, survey: UUID, at: str, outcome: str = "completed",
               untick: tuple[str, ...] = ()) -> None:
        for question in untick:
            self.run(SetTick(survey_id=survey, question_id=question, ticked=False,
                             occurred_at=t(at)))
        self.run(CompleteSurvey(survey_id=survey, outcome=outcome, occurred_at=t(at)))

    def survey(self, order: UUID, template: UUID, at: str, outcome: str = "completed",
               untick: tuple[str, ...] = ()) -> UUID:
        survey = self.start(order, template, at)
        self.finish(survey, at, outcome, untick)
        return survey

    def complaint(self, client: UUID, at: str, stage: str | None = None,
                  order: UUID | None = None) -> None:
        self.run(RegisterComplaint(client_id=client, text="Rude at the desk", stage=stage,
                                   work_order_id=order, occurred_at=t(at)))

    def contact(self, client: UUID, at: str) -> None:
        self.run(LogContact(client_id=client, channel="phone", direction="outbound",
                            topic="Check-in call", occurred_at=t(at)))

    def settled(self) -> None:
        """Wait (bounded) until the projections have applied everything written so far."""
        target = self.container.store_position()
        assert self.container.follower.wait_for(target, 10), "projections did not catch up"


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the survey and segment tables, in key order."""
    with engine.connect() as conn:
        return {table.name: [tuple(row) for row in conn.execute(
                    select(table).order_by(*table.primary_key.columns))]
                for table in MY_TABLES}


def utc(text: str) -> str:
    """RFC 3339 text normalised to UTC as the API prints it."""
    return t(text).astimezone(UTC).isoformat()
