"""Situation commands: open by hand, acknowledge, pause, resume, resolve, reopen.

Automatic openings (complaint, dissatisfied survey, emergency contact) call `open_for()` from the
command that triggers them, so trigger and situation are saved in one atomic write.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from commands.base import Command, NoteText, Outcome, Text, UnitOfWork, handles
from domain.base import CrmAggregate, event_id_of
from domain.client import Client
from domain.situation import Situation
from domain.values import Meta, SituationKind


def open_for(uow: UnitOfWork, client: Client, meta: Meta, *, kind: SituationKind,
             trigger: CrmAggregate, description: str, stages: list[str] | None = None
             ) -> Situation:
    """Open the situation a trigger event calls for; it names the trigger's event id."""
    event = trigger.pending_events[-1]
    situation = Situation.open(
        id=uow.new_id(), client_id=client.id, meta=meta, kind=kind,
        trigger=type(event).__name__,
        trigger_event_id=event_id_of(event.originator_id, event.originator_version),
        description=description, specialist_id=client.specialist_id, stages=stages)
    return uow.add(situation)


class OpenSituation(Command):
    NAME = "open_situation"
    id: UUID | None = None
    client_id: UUID
    kind: SituationKind
    description: Text
    stages: Annotated[list[Annotated[str, Field(max_length=100)]], Field(max_length=50)] = []


class AcknowledgeSituation(Command):
    NAME = "acknowledge_situation"
    situation_id: UUID
    note: NoteText | None = None


class PauseSituation(Command):
    NAME = "pause_situation"
    situation_id: UUID
    reason: NoteText | None = None


class ResumeSituation(Command):
    NAME = "resume_situation"
    situation_id: UUID


class ResolveSituation(Command):
    NAME = "resolve_situation"
    situation_id: UUID
    resolution: Text


class ReopenSituation(Command):
    NAME = "reopen_situation"
    situation_id: UUID
    reason: NoteText | None = None


@handles(OpenSituation)
def open_situation(cmd: OpenSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    situation_id = uow.claim(Situation, cmd.id, kind="situation")
    situation = Situation.open(
        id=situation_id, client_id=client.id, meta=meta, kind=cmd.kind, trigger="manual",
        trigger_event_id=None, description=cmd.description, specialist_id=client.specialist_id,
        stages=cmd.stages)
    return Outcome(uow.add(situation))


def _situation(uow: UnitOfWork, situation_id: UUID) -> Situation:
    return uow.target(Situation, situation_id, kind="situation")


@handles(AcknowledgeSituation)
def acknowledge_situation(cmd: AcknowledgeSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    situation = _situation(uow, cmd.situation_id)
    situation.acknowledge(meta, cmd.note)
    return Outcome(situation)


@handles(PauseSituation)
def pause_situation(cmd: PauseSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    situation = _situation(uow, cmd.situation_id)
    situation.pause(meta, cmd.reason)
    return Outcome(situation)


@handles(ResumeSituation)
def resume_situation(cmd: ResumeSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    situation = _situation(uow, cmd.situation_id)
    situation.resume(meta)
    return Outcome(situation)


@handles(ResolveSituation)
def resolve_situation(cmd: ResolveSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    situation = _situation(uow, cmd.situation_id)
    situation.resolve(meta, cmd.resolution)
    return Outcome(situation)


@handles(ReopenSituation)
def reopen_situation(cmd: ReopenSituation, uow: UnitOfWork, meta: Meta) -> Outcome:
    situation = _situation(uow, cmd.situation_id)
    situation.reopen(meta, cmd.reason)
    return Outcome(situation)
