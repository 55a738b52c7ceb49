"""Activity commands: log and plan contacts, make and keep agreements, assign and rate work."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from commands.base import Command, NoteText, Outcome, ShortText, Text, UnitOfWork, handles
from commands.fields import Instant
from commands.situations import open_for
from domain.activity import Contact, PlannedContact
from domain.agreement import Agreement, Work
from domain.errors import InvalidValueError
from domain.situation import Situation
from domain.values import Channel, ContactPurpose, Direction, Meta, SituationKind


class LogContact(Command):
    """A contact that happened. An emergency purpose opens a situation; naming a situation
    records a reaction to it; naming a planned contact completes it."""

    NAME = "log_contact"
    id: UUID | None = None
    client_id: UUID
    channel: Channel
    direction: Direction
    purpose: ContactPurpose | None = None
    topic: ShortText
    summary: Annotated[str, Field(max_length=4000)] | None = None
    contact_person_id: UUID | None = None
    specialist_id: UUID | None = None
    situation_id: UUID | None = None
    planned_contact_id: UUID | None = None


class PlanContact(Command):
    NAME = "plan_contact"
    id: UUID | None = None
    client_id: UUID
    purpose: ContactPurpose
    due_at: Instant
    specialist_id: UUID | None = None
    note: NoteText | None = None


class CancelPlannedContact(Command):
    NAME = "cancel_planned_contact"
    planned_contact_id: UUID
    reason: NoteText | None = None


class MakeAgreement(Command):
    NAME = "make_agreement"
    id: UUID | None = None
    client_id: UUID
    text: Text
    due_at: Instant
    contact_id: UUID | None = None


class FulfilAgreement(Command):
    NAME = "fulfil_agreement"
    agreement_id: UUID
    note: NoteText | None = None


class BreakAgreement(Command):
    NAME = "break_agreement"
    agreement_id: UUID
    reason: NoteText | None = None


class AssignWork(Command):
    NAME = "assign_work"
    id: UUID | None = None
    client_id: UUID
    text: Text
    due_at: Instant | None = None
    assignee: ShortText


class CompleteWork(Command):
    NAME = "complete_work"
    work_id: UUID
    note: NoteText | None = None


class GiveFeedback(Command):
    NAME = "give_feedback"
    work_id: UUID
    rating: Annotated[int, Field(ge=1, le=5)]
    text: NoteText | None = None


@handles(LogContact)
def log_contact(cmd: LogContact, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    if cmd.contact_person_id is not None:
        client.require_person(cmd.contact_person_id, field="contact_person_id")
    if cmd.situation_id is not None:
        uow.get(Situation, cmd.situation_id, kind="situation",
                field="situation_id").accept_contact(client.id)
    planned = None
    if cmd.planned_contact_id is not None:
        planned = uow.get(PlannedContact, cmd.planned_contact_id, kind="planned contact",
                          field="planned_contact_id")
        if planned.client_id != client.id:
            raise InvalidValueError("the planned contact belongs to another client",
                                    field="planned_contact_id")
    contact = uow.add(Contact.log(
        id=uow.claim(Contact, cmd.id, kind="contact"), client_id=client.id, meta=meta,
        channel=cmd.channel, direction=cmd.direction, purpose=cmd.purpose, topic=cmd.topic,
        summary=cmd.summary, contact_person_id=cmd.contact_person_id,
        specialist_id=cmd.specialist_id or client.specialist_id, situation_id=cmd.situation_id,
        planned_contact_id=cmd.planned_contact_id))
    outcome = Outcome(contact)
    if planned is not None:
        planned.complete(meta, contact.id)
        outcome.links["planned_contact_id"] = planned
    if cmd.purpose is not None and cmd.purpose.is_emergency:
        outcome.links["situation_id"] = open_for(
            uow, client, meta, kind=SituationKind(str(cmd.purpose)), trigger=contact,
            description=f"{cmd.purpose.value.replace('_', ' ')}: {cmd.topic}")
    return outcome


@handles(PlanContact)
def plan_contact(cmd: PlanContact, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    return Outcome(uow.add(PlannedContact.plan(
        id=uow.claim(PlannedContact, cmd.id, kind="planned contact"), client_id=client.id,
        meta=meta,
        purpose=cmd.purpose, due_at=cmd.due_at,
        specialist_id=cmd.specialist_id or client.specialist_id, note=cmd.note)))


@handles(CancelPlannedContact)
def cancel_planned_contact(cmd: CancelPlannedContact, uow: UnitOfWork, meta: Meta) -> Outcome:
    planned = uow.target(PlannedContact, cmd.planned_contact_id, kind="planned contact")
    planned.cancel(meta, cmd.reason)
    return Outcome(planned)


@handles(MakeAgreement)
def make_agreement(cmd: MakeAgreement, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    if cmd.contact_id is not None:
        contact = uow.get(Contact, cmd.contact_id, kind="contact", field="contact_id")
        if contact.client_id != client.id:
            raise InvalidValueError("the contact belongs to another client", field="contact_id")
    return Outcome(uow.add(Agreement.make(
        id=uow.claim(Agreement, cmd.id, kind="agreement"), client_id=client.id, meta=meta,
        text=cmd.text, due_at=cmd.due_at, contact_id=cmd.contact_id)))


@handles(FulfilAgreement)
def fulfil_agreement(cmd: FulfilAgreement, uow: UnitOfWork, meta: Meta) -> Outcome:
    agreement = uow.target(Agreement, cmd.agreement_id, kind="agreement")
    agreement.fulfil(meta, cmd.note)
    return Outcome(agreement)


@handles(BreakAgreement)
def break_agreement(cmd: BreakAgreement, uow: UnitOfWork, meta: Meta) -> Outcome:
    agreement = uow.target(Agreement, cmd.agreement_id, kind="agreement")
    agreement.break_(meta, cmd.reason)
    return Outcome(agreement)


@handles(AssignWork)
def assign_work(cmd: AssignWork, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    return Outcome(uow.add(Work.assign(
        id=uow.claim(Work, cmd.id, kind="work"), client_id=client.id, meta=meta, text=cmd.text,
        due_at=cmd.due_at, assignee=cmd.assignee)))


@handles(CompleteWork)
def complete_work(cmd: CompleteWork, uow: UnitOfWork, meta: Meta) -> Outcome:
    work = uow.target(Work, cmd.work_id, kind="work")
    work.complete(meta, cmd.note)
    return Outcome(work)


@handles(GiveFeedback)
def give_feedback(cmd: GiveFeedback, uow: UnitOfWork, meta: Meta) -> Outcome:
    work = uow.target(Work, cmd.work_id, kind="work")
    work.receive_feedback(meta, cmd.rating, cmd.text)
    return Outcome(work)


