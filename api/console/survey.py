"""The survey form: its questions (GET /v1/survey-templates' answer), and saving the answers.

Saving runs the same commands as
`POST /v1/surveys`, `/ticks`, `/complete` and `POST /v1/complaints`, as one atomic write with an
idempotency key made from the form's own id (a double submit records nothing twice).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from commands.application import Actor, Receipt
from commands.base import Command
from commands.service import CompleteSurvey, RegisterComplaint, SetTick, StartSurvey
from domain.service import WorkOrder
from domain.values import Channel, SurveyOutcome

_FORM_IDS = uuid.UUID("6f0b7c36-3d55-4c43-9a52-2b6f8d1c0e11")  # namespace of survey ids


@dataclass(frozen=True)
class Template:
    id: UUID
    version: int
    name: str
    questions: tuple[dict[str, Any], ...]  # {"id", "stage", "text"} in the template's order


def templates(listed: dict[str, Any]) -> list[Template]:
    """Every template at its newest version, from GET /v1/survey-templates' answer."""
    out = [_version(item, item["versions"][-1]) for item in listed["items"] if item["versions"]]
    return sorted(out, key=lambda t: (t.name, str(t.id)))


def template(listed: dict[str, Any], template_id: UUID, version: int) -> Template:
    """One version of a template (the one the form showed). LookupError if there is none."""
    for item in listed["items"]:
        if item["template_id"] == str(template_id):
            for found in item["versions"]:
                if found["version"] == version:
                    return _version(item, found)
    raise LookupError(f"no survey template {template_id} v{version}")


def _version(item: dict[str, Any], version: dict[str, Any]) -> Template:
    return Template(UUID(item["template_id"]), int(version["version"]), str(version["name"]),
                    tuple({"id": q["id"], "stage": q["stage"], "text": q["text"]}
                          for q in version["questions"]))


def survey_id(form_id: str) -> UUID:
    """The survey's id, fixed by the form: the same form sent twice names the same survey."""
    return uuid.uuid5(_FORM_IDS, form_id)


@dataclass(frozen=True)
class Answers:
    """What the operator entered."""

    form_id: str
    work_order_id: UUID
    client_id: UUID
    template: Template
    interviewer: str
    outcome: SurveyOutcome
    comment: str | None
    unticked: dict[str, str]  # question id -> the complaint text given for it


def commands(answers: Answers, stages: list[str]) -> list[Command]:
    """The write: start (every question ticked), untick, complete, one complaint per untick
    (on the question's stage when the work order has it, or has no stages named)."""
    survey = survey_id(answers.form_id)
    out: list[Command] = [StartSurvey(
        id=survey, work_order_id=answers.work_order_id, template_id=answers.template.id,
        template_version=answers.template.version, interviewer=answers.interviewer)]
    if answers.outcome != SurveyOutcome.COMPLETED:
        return [*out, CompleteSurvey(survey_id=survey, outcome=answers.outcome,
                                     comment=answers.comment)]
    questions = {q["id"]: q for q in answers.template.questions}
    out += [SetTick(survey_id=survey, question_id=qid, ticked=False)
            for qid in answers.unticked]
    out.append(CompleteSurvey(survey_id=survey, outcome=answers.outcome,
                              comment=answers.comment))
    for qid, text in answers.unticked.items():
        stage = questions[qid]["stage"]
        out.append(RegisterComplaint(
            client_id=answers.client_id, text=text, work_order_id=answers.work_order_id,
            stage=stage if not stages or stage in stages else None, channel=Channel.PHONE))
    return out


def save(app: Any, answers: Answers, user_id: str, role: str) -> Receipt:
    try:  # the stages the work order names (StartSurvey refuses an id that is no work order)
        order = app.repository.get(answers.work_order_id)
        stages = list(order.stages) if isinstance(order, WorkOrder) else []
    except AggregateNotFoundError:
        stages = []
    receipt: Receipt = app.execute(
        commands(answers, stages), Actor(user_id, role),
        idempotency_key=f"console-survey-{answers.form_id}")
    return receipt
