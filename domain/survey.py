"""Satisfaction surveys: versioned templates of questions by service stage, and the surveys run."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from uuid import UUID

from domain.base import CrmAggregate
from domain.errors import InvalidValueError
from domain.values import Meta, SurveyOutcome


class SurveyTemplate(CrmAggregate):
    """Questions grouped by service stage. Each revision is a new version; surveys pin one."""

    class SurveyTemplateDefined(CrmAggregate.Created):
        name: str
        questions: list[dict[str, Any]]

        def apply(self, agg: SurveyTemplate) -> None:
            agg.client_id = None
            agg.name = self.name
            agg.questions = list(self.questions)

    class SurveyTemplateRevised(CrmAggregate.Event):
        name: str
        questions: list[dict[str, Any]]

        def apply(self, agg: SurveyTemplate) -> None:
            agg.name = self.name
            agg.questions = list(self.questions)

    if TYPE_CHECKING:
        name: str
        questions: list[dict[str, Any]]

    @staticmethod
    def _check(questions: list[dict[str, Any]]) -> None:
        if not questions:
            raise InvalidValueError("at least one question", field="questions")
        ids = [q["id"] for q in questions]
        if len(set(ids)) != len(ids):
            raise InvalidValueError("question ids must be distinct", field="questions")

    @classmethod
    def define(cls, *, id: UUID, meta: Meta, name: str,
               questions: list[dict[str, Any]]) -> SurveyTemplate:
        cls._check(questions)
        return cls._start(cls.SurveyTemplateDefined, id=id, client_id=None, meta=meta,
                          name=name, questions=questions)

    def revise(self, meta: Meta, name: str, questions: list[dict[str, Any]]) -> None:
        self._check(questions)
        self._emit(self.SurveyTemplateRevised, meta, name=name, questions=questions)


class Survey(CrmAggregate):
    """A survey call after a work order: every question starts ticked (satisfied)."""

    class SurveyStarted(CrmAggregate.Created):
        work_order_id: UUID
        template_id: UUID
        template_version: int
        interviewer: str
        questions: list[dict[str, Any]]

        def apply(self, agg: Survey) -> None:
            agg.client_id = self.client_id
            agg.work_order_id = self.work_order_id
            agg.stage_of = {q["id"]: q["stage"] for q in self.questions}
            agg.ticks = {q["id"]: True for q in self.questions}
            agg.status = "in_progress"

    class SurveyTickSet(CrmAggregate.Event):
        question_id: str
        ticked: bool

        def apply(self, agg: Survey) -> None:
            agg.ticks[self.question_id] = self.ticked

    class SurveyCompleted(CrmAggregate.Event):
        outcome: str
        comment: str | None
        final_ticks: dict[str, bool]
        PERSONAL = ("comment",)

        def apply(self, agg: Survey) -> None:
            agg.status = self.outcome

    if TYPE_CHECKING:
        work_order_id: UUID
        stage_of: dict[str, str]
        ticks: dict[str, bool]
        status: str

    @classmethod
    def start(cls, *, id: UUID, client_id: UUID, meta: Meta, work_order_id: UUID,
              template: SurveyTemplate, interviewer: str) -> Survey:
        return cls._start(cls.SurveyStarted, id=id, client_id=client_id, meta=meta,
                          work_order_id=work_order_id, template_id=template.id,
                          template_version=template.version, interviewer=interviewer,
                          questions=list(template.questions))

    def set_tick(self, meta: Meta, question_id: str, ticked: bool) -> None:
        if question_id not in self.ticks:
            raise InvalidValueError("not a question of this survey's template",
                                    field="question_id")
        self._require(self.status == "in_progress", f"the survey is already {self.status}")
        self._emit(self.SurveyTickSet, meta, question_id=question_id, ticked=ticked)

    def complete(self, meta: Meta, outcome: SurveyOutcome, comment: str | None) -> None:
        self._require(self.status == "in_progress", f"the survey is already {self.status}")
        final = dict(self.ticks) if outcome == SurveyOutcome.COMPLETED else {}
        self._emit(self.SurveyCompleted, meta, outcome=str(outcome), comment=comment,
                   final_ticks=final)

    def unticked_stages(self) -> list[str]:
        """Stages with a complaint, in template order (what the survey's situation names)."""
        stages: list[str] = []
        for qid, ticked in self.ticks.items():
            stage = self.stage_of[qid]
            if not ticked and stage not in stages:
                stages.append(stage)
        return stages
