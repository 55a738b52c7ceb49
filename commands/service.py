"""Service-station commands: work orders, surveys and their ticks, complaints and wishes."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from commands.base import (
    Command,
    NoteText,
    Outcome,
    ShortText,
    Text,
    UnitOfWork,
    handles,
)
from commands.fields import Amount, Currency
from commands.situations import open_for
from domain.errors import InvalidTransitionError, InvalidValueError
from domain.service import Complaint, Wish, WorkOrder
from domain.survey import Survey, SurveyTemplate
from domain.values import Channel, Meta, Money, SituationKind, SurveyOutcome

Name = Annotated[str, Field(min_length=1, max_length=100)]


class OpenWorkOrder(Command):
    NAME = "open_work_order"
    id: UUID | None = None
    client_id: UUID
    asset: ShortText
    services: Annotated[list[Name], Field(max_length=100)] = []
    stages: Annotated[list[Name], Field(max_length=30)] = []
    mechanic: ShortText | None = None


class CloseWorkOrder(Command):
    NAME = "close_work_order"
    work_order_id: UUID
    amount: Amount
    currency: Currency


class StartSurvey(Command):
    NAME = "start_survey"
    id: UUID | None = None
    work_order_id: UUID
    template_id: UUID
    template_version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Pin a template version; default the latest.")
    interviewer: ShortText


class SetTick(Command):
    NAME = "set_tick"
    survey_id: UUID
    question_id: Annotated[str, Field(min_length=1, max_length=100)]
    ticked: bool


class CompleteSurvey(Command):
    """`completed` keeps the ticks as they are ("all satisfied" = no untick); any unticked
    question opens one situation naming the stages."""

    NAME = "complete_survey"
    survey_id: UUID
    outcome: SurveyOutcome
    comment: NoteText | None = None


class RegisterComplaint(Command):
    NAME = "register_complaint"
    id: UUID | None = None
    client_id: UUID
    text: Text
    work_order_id: UUID | None = None
    stage: Name | None = None
    channel: Channel | None = None


class RegisterWish(Command):
    NAME = "register_wish"
    id: UUID | None = None
    client_id: UUID
    text: Text
    work_order_id: UUID | None = None
    stage: Name | None = None


def _work_order_of(uow: UnitOfWork, work_order_id: UUID | None, client_id: UUID,
                   stage: str | None) -> None:
    if work_order_id is None:
        return
    order = uow.get(WorkOrder, work_order_id, kind="work order", field="work_order_id")
    if order.client_id != client_id:
        raise InvalidValueError("the work order belongs to another client", field="work_order_id")
    if stage is not None and order.stages and stage not in order.stages:
        raise InvalidValueError("not a stage of this work order", field="stage")


@handles(OpenWorkOrder)
def open_work_order(cmd: OpenWorkOrder, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    return Outcome(uow.add(WorkOrder.open(
        id=uow.claim(WorkOrder, cmd.id, kind="work order"), client_id=client.id, meta=meta,
        asset=cmd.asset, services=cmd.services, stages=cmd.stages, mechanic=cmd.mechanic)))


@handles(CloseWorkOrder)
def close_work_order(cmd: CloseWorkOrder, uow: UnitOfWork, meta: Meta) -> Outcome:
    order = uow.target(WorkOrder, cmd.work_order_id, kind="work order")
    order.close(meta, Money.parse(cmd.amount, cmd.currency, positive=False))
    return Outcome(order)


@handles(StartSurvey)
def start_survey(cmd: StartSurvey, uow: UnitOfWork, meta: Meta) -> Outcome:
    order = uow.get(WorkOrder, cmd.work_order_id, kind="work order", field="work_order_id")
    assert order.client_id is not None
    client = uow.live_client(order.client_id, field="work_order_id")
    if not order.closed:
        raise InvalidTransitionError("the work order is not closed yet", field="work_order_id")
    template = uow.get(SurveyTemplate, cmd.template_id, kind="survey template",
                       field="template_id")
    if cmd.template_version is not None and cmd.template_version != template.version:
        if cmd.template_version > template.version:
            raise InvalidValueError("no such template version", field="template_version")
        template = uow.version_of(SurveyTemplate, template.id, cmd.template_version)
    return Outcome(uow.add(Survey.start(
        id=uow.claim(Survey, cmd.id, kind="survey"), client_id=client.id, meta=meta,
        work_order_id=order.id, template=template, interviewer=cmd.interviewer)))


@handles(SetTick)
def set_tick(cmd: SetTick, uow: UnitOfWork, meta: Meta) -> Outcome:
    survey = uow.target(Survey, cmd.survey_id, kind="survey")
    survey.set_tick(meta, cmd.question_id, cmd.ticked)
    return Outcome(survey)


@handles(CompleteSurvey)
def complete_survey(cmd: CompleteSurvey, uow: UnitOfWork, meta: Meta) -> Outcome:
    survey = uow.target(Survey, cmd.survey_id, kind="survey")
    survey.complete(meta, cmd.outcome, cmd.comment)
    outcome = Outcome(survey)
    stages = survey.unticked_stages() if cmd.outcome == SurveyOutcome.COMPLETED else []
    if stages:
        assert survey.client_id is not None
        client = uow.live_client(survey.client_id, field=None)
        outcome.links["situation_id"] = open_for(
            uow, client, meta, kind=SituationKind.SURVEY_DISSATISFACTION, trigger=survey,
            description="dissatisfied with: " + ", ".join(stages), stages=stages)
    return outcome


@handles(RegisterComplaint)
def register_complaint(cmd: RegisterComplaint, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    _work_order_of(uow, cmd.work_order_id, client.id, cmd.stage)
    complaint = uow.add(Complaint.register(
        id=uow.claim(Complaint, cmd.id, kind="complaint"), client_id=client.id, meta=meta,
        text=cmd.text, work_order_id=cmd.work_order_id, stage=cmd.stage,
        channel=str(cmd.channel) if cmd.channel else None))
    situation = open_for(uow, client, meta, kind=SituationKind.COMPLAINT, trigger=complaint,
                         description=cmd.text, stages=[cmd.stage] if cmd.stage else [])
    return Outcome(complaint, links={"situation_id": situation})


@handles(RegisterWish)
def register_wish(cmd: RegisterWish, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    _work_order_of(uow, cmd.work_order_id, client.id, cmd.stage)
    return Outcome(uow.add(Wish.register(
        id=uow.claim(Wish, cmd.id, kind="wish"), client_id=client.id, meta=meta, text=cmd.text,
        work_order_id=cmd.work_order_id, stage=cmd.stage)))
