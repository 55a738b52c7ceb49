"""Demo history, car service: people with cars, visits, surveys 3-4 days later, complaints."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from commands.activity import CancelPlannedContact, LogContact, PlanContact
from commands.application import Actor
from commands.base import Command
from commands.clients import EraseClient, NoteInterest, RegisterClient, UpdateClient
from commands.money import ReceivePayment
from commands.service import (
    CloseWorkOrder,
    CompleteSurvey,
    OpenWorkOrder,
    RegisterComplaint,
    RegisterWish,
    SetTick,
    StartSurvey,
)
from demo import words
from demo.world import CURRENCY, Alias, Staff, Story, minutes
from domain.values import (
    Channel,
    ClientForm,
    ClientKind,
    ContactPurpose,
    Direction,
    SituationKind,
    SurveyOutcome,
)

ADVISORS = (Actor("desk.jonas", "operator"), Actor("desk.kate", "operator"),
            Actor("desk.amir", "operator"))
INTERVIEWERS = (("survey.mia", "Mia Lawson"), ("survey.liam", "Liam Carter"))
ADMIN = Actor("ops.admin", "admin")
# (share of clients, months between visits, chance of coming back once more after a long gap)
LOYALTY = {"regular": (3, 6), "occasional": (6, 11), "one_off": (13, 17)}


class CarStory(Story):
    """A person (or a member of staff) who brings one or two cars to the workshop."""

    def setup(self, registered: datetime, care: Staff) -> None:
        rng = self.rng
        self.registered = registered
        self.care = care
        self.staff_member = self.trait("staff", 0.03)
        self.first, self.last = words.name(rng)
        self.cars = [f"{rng.choice(words.CARS)} {words.plate(rng)}"
                     for _ in range(2 if rng.random() < 0.15 else 1)]
        self.loyalty = rng.choices(("regular", "occasional", "one_off"), (35, 40, 25))[0]
        if self.force:
            self.loyalty = "regular"
        self.next_visit: datetime | None = registered
        self.visits = 0
        self.phone = words.mobile(rng)

    def happens(self, name: str, p: float, visit: int) -> bool:
        """Random at each visit; a showcase client's forced happening comes at its first."""
        return self.rng.random() < p or (name in self.force and visit == 1)

    def month(self, m: int, lo: datetime, hi: datetime) -> None:
        while self.next_visit is not None and lo <= self.next_visit < hi:
            at = self.next_visit
            self.next_visit = None
            if self.visits == 0:
                self.register(at)
            self.visit(at)

    # -- the first visit registers the client ---------------------------------------------------

    def register(self, at: datetime) -> None:
        rng, w = self.rng, self.world
        addr, _code = words.address(rng)
        email = f"{self.first}.{self.last}{rng.randint(1, 99)}@{rng.choice(words.MAIL_DOMAINS)}"
        self.email = email.lower() if rng.random() < 0.75 else None
        self.emit(at, rng.choice(ADVISORS), RegisterClient(
            occurred_at=at, id=self.client_id,
            kind=ClientKind.EMPLOYEE if self.staff_member else ClientKind.CUSTOMER,
            form=ClientForm.PERSON, name=f"{self.first} {self.last}", phones=[self.phone],
            emails=[self.email] if self.email else [], address=addr if rng.random() < 0.8 else None,
            tags=["car-service", "staff"] if self.staff_member else ["car-service"],
            specialist_id=self.care.id))
        span = (w.end - at).total_seconds()
        if self.trait("new_phone", 0.10):
            when = self.moment(w.day_of(at + timedelta(seconds=rng.uniform(0.2, 0.9) * span)))
            phone = words.mobile(rng)
            if phone != self.phone:
                self.emit(when, rng.choice(ADVISORS), UpdateClient(
                    occurred_at=when, client_id=self.client_id, phones=[phone]))
        if self.trait("interest", 0.05):
            when = self.moment(w.day_of(at + timedelta(seconds=rng.uniform(0.1, 0.8) * span)))
            self.emit(when, rng.choice(ADVISORS), NoteInterest(
                occurred_at=when, client_id=self.client_id,
                text=rng.choice(words.INTERESTS_PERSON)))

    # -- a visit: open, close and pay, survey a few days later ----------------------------------

    def visit(self, at: datetime) -> None:
        rng, w = self.rng, self.world
        self.visits += 1
        n = self.visits
        order = w.id("work-order", self.index, n)
        picked = rng.sample(words.SERVICES, rng.choice((1, 1, 2, 2, 3)))
        desk = rng.choice(ADVISORS)
        self.emit(minutes(at, 5), desk, OpenWorkOrder(
            occurred_at=minutes(at, 5), id=order, client_id=self.client_id,
            asset=rng.choice(self.cars), services=[s[0] for s in picked],
            stages=list(words.STAGES), mechanic=rng.choice(words.MECHANICS)))
        day = w.day_of(at)
        for _ in range(max(s[3] for s in picked) + (1 if rng.random() < 0.1 else 0)):
            day = w.next_workday(day + timedelta(days=1))
        closed = w.local(day, rng.randint(14, 18), rng.randrange(0, 60, 5))
        amount = sum((Decimal(rng.randint(s[1] * 100, s[2] * 100)) / 100 for s in picked),
                     Decimal(0)).quantize(Decimal("0.01"))
        if self.staff_member:
            amount = (amount * Decimal("0.8")).quantize(Decimal("0.01"))
        close: list[Command] = [CloseWorkOrder(occurred_at=closed, work_order_id=order,
                                               amount=str(amount), currency=CURRENCY)]
        paid_later = rng.random() < 0.1
        if not paid_later:
            close.append(ReceivePayment(
                occurred_at=minutes(closed, 4), id=w.id("payment", self.index, n),
                client_id=self.client_id, amount=str(amount), currency=CURRENCY,
                reference=f"Card payment, work order {self.index}-{n}"))
        if self.happens("mot_reminder", 0.25, n):
            close.append(self.reminder(minutes(closed, 6), n))
        self.emit(closed, desk, *close)
        if paid_later:
            when = w.local(w.next_workday(day + timedelta(days=rng.randint(2, 12))), 11)
            self.emit(when, Actor("billing.lena", "operator"), ReceivePayment(
                occurred_at=when, id=w.id("payment", self.index, n), client_id=self.client_id,
                amount=str(amount), currency=CURRENCY,
                reference=f"Bank transfer, work order {self.index}-{n}"))
        if self.happens("delivery_complaint", 0.02, n):
            self.complaint(minutes(closed, 20), order, "delivery", Channel.VISIT, desk)
        self.survey(order, day, n)
        self.schedule_next(at)

    def reminder(self, at: datetime, n: int) -> Command:
        """Book the MOT reminder call for next year; the call itself is scheduled too."""
        rng, w = self.rng, self.world
        planned = w.id("reminder", self.index, n)
        due = w.local(w.next_workday(w.day_of(at) + timedelta(days=330)), 10)
        call = w.local(w.day_of(due), rng.randint(10, 16), rng.randrange(0, 60, 5))
        if rng.random() < 0.85:
            self.emit(call, Actor(self.care.user, "operator"), LogContact(
                occurred_at=call, id=w.id("contact", self.index, "mot", n),
                client_id=self.client_id, channel=Channel.PHONE, direction=Direction.OUTBOUND,
                purpose=ContactPurpose.REGULAR, topic="MOT reminder", planned_contact_id=planned))
        else:
            self.emit(call, Actor(self.care.user, "operator"), CancelPlannedContact(
                occurred_at=call, planned_contact_id=planned, reason="Car sold."))
        return PlanContact(occurred_at=at, id=planned, client_id=self.client_id,
                           purpose=ContactPurpose.REGULAR, due_at=due, note="MOT due next month")

    def complaint(self, at: datetime, order: UUID, stage: str, channel: Channel,
                  actor: Actor) -> None:
        w = self.world
        complaint = w.id("complaint", self.index, order)
        alias = w.id("alias", "complaint", complaint)
        self.emit(at, actor, RegisterComplaint(
            occurred_at=at, id=complaint, client_id=self.client_id, text=words.COMPLAINTS[stage],
            work_order_id=order, stage=stage, channel=channel),
            aliases=(Alias(0, "situation_id", alias),))
        self.handle_situation(alias, at, "complaint", self.care)

    def survey(self, order: UUID, closed_day: date, n: int, attempt: int = 1) -> None:
        rng, w = self.rng, self.world
        if attempt == 1:
            late = rng.random()
            if late < 0.03 and not self.force:
                return  # never surveyed: overdue in the survey register
            days = rng.choice((3, 4)) if late < 0.88 else rng.randint(5, 8)
            day = w.next_workday(closed_day + timedelta(days=days))
        else:
            day = w.next_workday(closed_day + timedelta(days=1))
        at = w.local(day, rng.randint(10, 17), rng.randrange(0, 60, 5))
        user, interviewer = rng.choice(INTERVIEWERS)
        survey = w.id("survey", self.index, n, attempt)
        cmds: list[Command] = [StartSurvey(occurred_at=at, id=survey, work_order_id=order,
                                           template_id=w.template, interviewer=interviewer)]
        roll = rng.random()
        if self.force and n == 1:
            roll = 0.0 if "unreachable" in self.force and attempt == 1 else 1.0
        if roll < 0.12:
            cmds.append(CompleteSurvey(occurred_at=minutes(at, 2), survey_id=survey,
                                       outcome=SurveyOutcome.UNREACHABLE))
            self.emit(at, Actor(user, "operator"), *cmds)
            if attempt == 1 and rng.random() < 0.5:
                self.survey(order, day, n, attempt + 1)
            return
        if roll < 0.16:
            cmds.append(CompleteSurvey(occurred_at=minutes(at, 2), survey_id=survey,
                                       outcome=SurveyOutcome.REFUSED,
                                       comment="Did not want to take part."))
            self.emit(at, Actor(user, "operator"), *cmds)
            return
        questions = list(words.QUESTIONS) + ([words.QUESTION_V2] if at >= w.review_at else [])
        ticks = {q[0]: True for q in questions}
        t = minutes(at, 3)
        if self.happens("correction", 0.03, n):
            fixed = rng.choice(questions)[0]
            cmds += [SetTick(occurred_at=t, survey_id=survey, question_id=fixed, ticked=False),
                     SetTick(occurred_at=minutes(t, 1), survey_id=survey, question_id=fixed,
                             ticked=True)]
            t = minutes(t, 2)
        if self.happens("unhappy", 0.15, n):
            k = rng.choices((1, 2, 3), (70, 25, 5))[0]
            for q in rng.choices(questions, [q[3] for q in questions], k=k):
                if ticks[q[0]]:
                    ticks[q[0]] = False
                    cmds.append(SetTick(occurred_at=t, survey_id=survey, question_id=q[0],
                                        ticked=False))
                    t = minutes(t, 1)
        unhappy = [q[1] for q in questions if not ticks[q[0]]]
        comment = (words.UNTICK_COMMENTS[unhappy[0]] if unhappy
                   else rng.choice(words.SURVEY_COMMENTS) if rng.random() < 0.3 else None)
        cmds.append(CompleteSurvey(occurred_at=t, survey_id=survey,
                                   outcome=SurveyOutcome.COMPLETED, comment=comment))
        aliases: list[Alias] = []
        kinds: list[str] = []
        if unhappy:
            aliases.append(Alias(len(cmds) - 1, "situation_id", w.id("alias", "survey", survey)))
            kinds.append(SituationKind.SURVEY_DISSATISFACTION)
        if unhappy and self.trait("survey_complaint", 0.2):
            complaint = w.id("complaint", self.index, survey)
            cmds.append(RegisterComplaint(
                occurred_at=minutes(t, 1), id=complaint, client_id=self.client_id,
                text=words.COMPLAINTS[unhappy[0]], work_order_id=order, stage=unhappy[0],
                channel=Channel.PHONE))
            aliases.append(Alias(len(cmds) - 1, "situation_id",
                                 w.id("alias", "complaint", complaint)))
            kinds.append(SituationKind.COMPLAINT)
        if self.trait("wish", 0.07):
            stage = rng.choice(words.STAGES)
            cmds.append(RegisterWish(occurred_at=minutes(t, 2), id=w.id("wish", survey),
                                     client_id=self.client_id, text=words.WISHES[stage],
                                     work_order_id=order, stage=stage))
        if not self.emit(at, Actor(user, "operator"), *cmds, aliases=tuple(aliases)):
            return
        for alias, kind in zip(aliases, kinds, strict=True):
            react = None
            if rng.random() < 0.4:
                react = LogContact(
                    id=w.id("contact", "callback", alias.id), client_id=self.client_id,
                    channel=Channel.PHONE, direction=Direction.OUTBOUND,
                    topic="Call back about the survey", situation_id=alias.id,
                    summary="Apologised and offered a free check.")
            self.handle_situation(alias.id, t, kind, self.care, react)
        if self.happens("erase", 0.003, n):
            gone = at + timedelta(days=rng.randint(10, 30))
            if self.emit(gone, ADMIN, EraseClient(occurred_at=gone, client_id=self.client_id,
                                                  reason="The client asked to be forgotten.")):
                self.erase_after(gone)
                self.next_visit = None

    def schedule_next(self, at: datetime) -> None:
        rng, w = self.rng, self.world
        if self.erased_at is not None:
            return
        low, high = LOYALTY[self.loyalty]
        if self.loyalty == "one_off" and (self.visits > 1 or rng.random() < 0.5):
            return
        gap = rng.randint(low * 30, high * 30)
        day = w.next_workday(w.day_of(at) + timedelta(days=gap))
        self.next_visit = w.local(day, rng.randint(8, 10), rng.randrange(0, 60, 5))
