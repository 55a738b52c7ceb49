"""Reference-data commands: specialists and plans, survey templates, calendars, SLA targets."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, field_validator

from commands.base import Command, Outcome, ShortText, UnitOfWork, handles
from commands.fields import Amount, Currency, Day
from domain.business_calendar import BusinessCalendar
from domain.errors import InvalidValueError
from domain.reference import Calendar, SlaTarget, Specialist
from domain.survey import SurveyTemplate
from domain.values import Meta, Money, SituationKind

_NS = UUID("5b7e2c19-0f4d-4a8b-9d61-2e8c5a7f3b42")
HHMM = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$", examples=["09:00"])]
Key = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]


def calendar_id(name: str) -> UUID:
    return uuid5(_NS, f"calendar:{name}")


def sla_target_id(kind: str) -> UUID:
    return uuid5(_NS, f"sla:{kind}")


class RegisterSpecialist(Command):
    NAME = "register_specialist"
    id: UUID | None = None
    name: ShortText
    email: Annotated[str, Field(max_length=254)] | None = None
    user_id: Annotated[str, Field(max_length=100)] | None = None


class SetPaymentPlan(Command):
    NAME = "set_payment_plan"
    specialist_id: UUID
    month: Annotated[str, Field(pattern=r"^(19|2\d)\d\d-(0[1-9]|1[0-2])$", examples=["2026-11"],
                                description="YYYY-MM, years 1900 to 2999.")]
    amount: Amount
    currency: Currency


class Question(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Key
    text: Annotated[str, Field(min_length=1, max_length=500)]
    stage: Annotated[str, Field(min_length=1, max_length=100)]


class DefineSurveyTemplate(Command):
    """A new template; with `template_id` of an existing one, its next version."""

    NAME = "define_survey_template"
    template_id: UUID | None = None
    name: ShortText
    questions: Annotated[list[Question], Field(min_length=1, max_length=200)]


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SetCalendar(Command):
    NAME = "set_calendar"
    calendar: Key = Field(description="The calendar's name, e.g. 'default'.")
    timezone: Annotated[str, Field(min_length=1, max_length=64, examples=["Europe/Berlin"])]
    hours: dict[str, list[tuple[HHMM, HHMM]]] = Field(
        description="Working intervals per weekday (mon..sun), local time, end exclusive.",
        examples=[{"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]]}],
        json_schema_extra={"propertyNames": {"enum": list(WEEKDAYS)}})
    holidays: Annotated[list[Day], Field(max_length=1000)] = []

    @field_validator("hours")
    @classmethod
    def _weekdays(cls, value: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        unknown = set(value) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday {sorted(unknown)[0]!r}; use mon..sun")
        return value

    def as_calendar(self) -> BusinessCalendar:
        def minutes(hhmm: str) -> int:
            return int(hhmm[:2]) * 60 + int(hhmm[3:])

        try:
            return BusinessCalendar.from_dict({
                "timezone": self.timezone,
                "hours": {d: [[minutes(a), minutes(b)] for a, b in spans]
                          for d, spans in self.hours.items()},
                "holidays": [h.isoformat() for h in self.holidays],
            })
        except ValueError as error:
            field = "timezone" if "zone" in str(error) else "hours"
            raise InvalidValueError(str(error), field=field) from None


class SetSlaTarget(Command):
    NAME = "set_sla_target"
    situation_kind: SituationKind
    first_reaction_seconds: Annotated[int, Field(gt=0, le=366 * 86400)]
    resolution_seconds: Annotated[int, Field(gt=0, le=3 * 366 * 86400)]
    business_hours: bool = True
    warn_ratio: Annotated[float, Field(gt=0, lt=1)] = 0.8
    calendar: Key = "default"


@handles(RegisterSpecialist)
def register_specialist(cmd: RegisterSpecialist, uow: UnitOfWork, meta: Meta) -> Outcome:
    return Outcome(uow.add(Specialist.register(
        id=uow.claim(Specialist, cmd.id, kind="specialist"), meta=meta, name=cmd.name,
        email=cmd.email, user_id=cmd.user_id)))


@handles(SetPaymentPlan)
def set_payment_plan(cmd: SetPaymentPlan, uow: UnitOfWork, meta: Meta) -> Outcome:
    specialist = uow.target(Specialist, cmd.specialist_id, kind="specialist")
    specialist.set_plan(meta, cmd.month, Money.parse(cmd.amount, cmd.currency, positive=False))
    return Outcome(specialist)


@handles(DefineSurveyTemplate)
def define_survey_template(cmd: DefineSurveyTemplate, uow: UnitOfWork, meta: Meta) -> Outcome:
    questions = [q.model_dump(include={"id", "text", "stage"}) for q in cmd.questions]
    if cmd.template_id is not None:
        template = uow.target(SurveyTemplate, cmd.template_id, kind="survey template")
        template.revise(meta, cmd.name, questions)
        return Outcome(template)
    return Outcome(uow.add(SurveyTemplate.define(id=uow.new_id(), meta=meta, name=cmd.name,
                                                 questions=questions)))


def _upsert(uow: UnitOfWork, cls: type[Calendar] | type[SlaTarget], agg_id: UUID, meta: Meta,
            **state: object) -> Outcome:
    if uow.find(cls, agg_id) is None:
        return Outcome(uow.add(cls.define(id=agg_id, meta=meta, **state)))  # type: ignore[arg-type]
    existing = uow.target(cls, agg_id, kind=cls.__name__.lower())
    existing.change(meta, **state)  # type: ignore[arg-type]
    return Outcome(existing)


@handles(SetCalendar)
def set_calendar(cmd: SetCalendar, uow: UnitOfWork, meta: Meta) -> Outcome:
    calendar = cmd.as_calendar()
    return _upsert(uow, Calendar, calendar_id(cmd.calendar), meta,
                   calendar={"name": cmd.calendar, **calendar.to_dict()})


@handles(SetSlaTarget)
def set_sla_target(cmd: SetSlaTarget, uow: UnitOfWork, meta: Meta) -> Outcome:
    if cmd.resolution_seconds < cmd.first_reaction_seconds:
        raise InvalidValueError("must not be shorter than the first reaction target",
                                field="resolution_seconds")
    return _upsert(uow, SlaTarget, sla_target_id(str(cmd.situation_kind)), meta,
                   situation_kind=str(cmd.situation_kind),
                   first_reaction_seconds=cmd.first_reaction_seconds,
                   resolution_seconds=cmd.resolution_seconds, business_hours=cmd.business_hours,
                   warn_ratio=cmd.warn_ratio, calendar_id=calendar_id(cmd.calendar))
