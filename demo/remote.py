"""Demo history, remote service: organisations, contact persons, planned and emergency contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from uuid import UUID

from commands.activity import (
    AssignWork,
    BreakAgreement,
    CancelPlannedContact,
    CompleteWork,
    FulfilAgreement,
    GiveFeedback,
    LogContact,
    MakeAgreement,
    PlanContact,
)
from commands.application import Actor
from commands.base import Command
from commands.clients import (
    AddContactPerson,
    RegisterClient,
    UpdateClient,
)
from demo import words
from demo.billing import invoice
from demo.happenings import happenings
from demo.world import Staff, Story, minutes
from domain.months import add_months
from domain.values import (
    Channel,
    ClientForm,
    ClientKind,
    ContactPurpose,
    ContactRole,
    Direction,
)

ADMIN = Actor("ops.admin", "admin")
PURCHASING = Actor("purchasing.raj", "operator")
P = ContactPurpose


@dataclass(frozen=True)
class Plan:
    id: UUID
    purpose: ContactPurpose
    due: datetime
    created: datetime


class OrgStory(Story):
    """An organisation: a customer of the remote bookkeeping service, a prospect, a partner or a
    supplier of the workshop."""

    def setup(self, registered: datetime, kind: str, spec: Staff | None, fee: Decimal,
              successor: Staff | None, team: tuple[Staff, ...]) -> None:
        rng = self.rng
        self.registered, self.kind, self.spec, self.fee = registered, kind, spec, fee
        self.successor, self.team = successor, team
        self.active = False
        self.billing_from: int | None = None
        self.churn_at: datetime | None = None
        self.plan: Plan | None = None
        self.renewal_at: datetime | None = None
        self.cadence = 1 if rng.random() < 0.6 else 2
        self.payer = rng.choices(("punctual", "late", "chaotic"), (70, 20, 10))[0]
        self.act_discipline = "good" if rng.random() < 0.75 else "sloppy"
        self.people: dict[str, list[UUID]] = {}

    @property
    def actor(self) -> Actor:
        return self.spec.actor if self.spec is not None else PURCHASING

    def person(self, *roles: str) -> UUID | None:
        for role in roles:
            if self.people.get(role):
                return self.people[role][0]
        return None

    def month(self, m: int, lo: datetime, hi: datetime) -> None:
        if not self.active and lo <= self.registered < hi:
            self.register(m, self.registered)
        if not self.active:
            return
        w = self.world
        if (self.spec is not None and self.spec == w.staff[w.leaver] and lo <= w.leave_at < hi
                and self.registered < w.leave_at):
            assert self.successor is not None
            self.reassign(w.leave_at, self.successor)
        gone = self.churn_at is not None and self.churn_at < lo
        if self.billing_from is not None and m >= self.billing_from and not gone:
            invoice(self, m, lo)
        while self.plan is not None and self.plan.due - timedelta(days=3) < hi:
            self.resolve_plan(lo)
        if lo > self.registered and not gone:
            happenings(self, m, lo, hi)

    # -- registration and profile ---------------------------------------------------------------

    def register(self, m: int, at: datetime) -> None:
        rng, w = self.rng, self.world
        self.active = True
        place, (trade, sector) = rng.choice(words.PLACES), rng.choice(words.TRADES)
        name = {"partner": rng.choice(words.PARTNER_NAMES),
                "supplier": rng.choice(words.SUPPLIER_NAMES)}.get(
            self.kind, f"{place} {trade} {rng.choice(words.SUFFIXES)}")
        domain = f"{words.slug(name)}.example.co.uk"
        addr, code = words.address(rng)
        self.tags = [sector, "remote-service"] if self.kind in ("customer", "prospect") else [
            self.kind]
        # Some are entered incomplete (card completeness shows it); some are filled in later.
        complete = "fill_in" not in self.force and (rng.random() < 0.75 or bool(self.force))
        self.address = addr if complete or rng.random() < 0.6 else None
        cmds: list[Command] = [RegisterClient(
            occurred_at=at, id=self.client_id, kind=ClientKind(self.kind),
            form=ClientForm.ORGANISATION, name=name,
            tax_id=f"GB{rng.randrange(10**8, 10**9)}" if complete else None,
            phones=[words.landline(rng, code)], emails=[f"info@{domain}"] if complete else [],
            address=self.address, tags=self.tags,
            specialist_id=self.spec.id if self.spec else None)]
        roles = ["decision_maker", "contact"] if rng.random() < 0.9 else ["decision_maker"]
        roles += ["influencer"] * (rng.random() < 0.3) + ["user"] * rng.choice((0, 1, 1, 2))
        if "person_leaves" in self.force and "user" not in roles:
            roles.append("user")
        for k, role in enumerate(roles):
            first, last = words.name(rng)
            person = w.id("person", self.index, k)
            self.people.setdefault(role, []).append(person)
            cmds.append(AddContactPerson(
                occurred_at=minutes(at, k + 1), client_id=self.client_id, id=person,
                name=f"{first} {last}", role=ContactRole(role), phones=[words.mobile(rng)],
                emails=[f"{first}.{last}@{domain}".lower()],
                notes="Prefers e-mail before 10 am." if rng.random() < 0.1 else None))
        if self.kind in ("customer", "prospect"):
            due = self.moment(w.day_of(at) + timedelta(days=rng.randint(3, 10)))
            cmds.append(self.new_plan(minutes(at, 10), P.FIRST_MEETING, due))
        self.emit(at, self.actor, *cmds)
        if self.kind == "customer":
            self.billing_from = m + 1
            if at > w.start + timedelta(days=45):
                renewal = add_months(w.day_of(at), 12)
            else:  # the existing base renews in some month of the history
                renewal = w.day_of(w.month_start(rng.randint(2, max(2, w.months - 1))))
                renewal += timedelta(days=rng.randint(0, 25))
            self.renewal_at = w.local(w.next_workday(renewal), 12)
        if not complete and self.chance("fill_in", 0.5):
            when = self.moment(w.day_of(at) + timedelta(days=rng.randint(10, 80)))
            self.emit(when, self.actor, UpdateClient(
                occurred_at=when, client_id=self.client_id,
                tax_id=f"GB{rng.randrange(10**8, 10**9)}", emails=[f"accounts@{domain}"]))

    def new_plan(self, at: datetime, purpose: ContactPurpose, due: datetime) -> Command:
        plan = Plan(self.world.id("plan", self.index, at.isoformat()), purpose, due, at)
        self.plan = plan
        return PlanContact(occurred_at=at, id=plan.id, client_id=self.client_id,
                           purpose=purpose, due_at=due)

    def reassign(self, at: datetime, to: Staff) -> None:
        self.spec = to
        self.emit(at, ADMIN, UpdateClient(occurred_at=at, client_id=self.client_id,
                                          specialist_id=to.id))

    # -- planned contacts: done on time, late, cancelled, or missed -----------------------------

    def resolve_plan(self, lo: datetime) -> None:
        rng, w = self.rng, self.world
        plan, self.plan = self.plan, None
        assert plan is not None
        floor = max(lo, plan.created + timedelta(hours=1))
        if self.churn_at is not None and plan.due >= self.churn_at:
            at = max(floor, self.churn_at + timedelta(days=1))
            self.emit(at, self.actor, CancelPlannedContact(
                occurred_at=at, planned_contact_id=plan.id, reason="The client left."))
            return
        roll = 0.92 if self.chance("cancel_plan", 0) else rng.random()
        due_day = w.day_of(plan.due)
        if roll < 0.80:
            self.contact(plan, self.moment(due_day - timedelta(days=rng.randint(0, 2)), floor))
        elif roll < 0.89:
            self.contact(plan, self.moment(due_day + timedelta(days=rng.randint(1, 10)), floor))
        elif roll < 0.95:
            at = self.moment(due_day - timedelta(days=rng.randint(0, 3)), floor)
            again = self.moment(due_day + timedelta(days=rng.randint(14, 21)))
            self.emit(at, self.actor, CancelPlannedContact(
                occurred_at=at, planned_contact_id=plan.id,
                reason=rng.choice(words.CANCEL_REASONS)),
                self.new_plan(minutes(at, 2), plan.purpose, again))
        else:  # missed: stays overdue; noticed weeks later and planned anew
            at = self.moment(due_day + timedelta(days=rng.randint(10, 20)), floor)
            self.emit(at, self.actor, self.new_plan(
                at, plan.purpose, self.moment(w.day_of(at) + timedelta(days=7))))

    def contact(self, plan: Plan, at: datetime) -> None:
        rng, w = self.rng, self.world
        contact = w.id("contact", self.index, plan.id)
        meeting = plan.purpose in (P.FIRST_MEETING, P.CONTRACT_RENEWAL)
        channel = Channel.MEETING if meeting else rng.choices(
            (Channel.PHONE, Channel.MEETING, Channel.EMAIL, Channel.CHAT), (55, 25, 10, 10))[0]
        topic = {P.FIRST_MEETING: "First meeting with the director",
                 P.CONTRACT_RENEWAL: "Contract renewal for next year",
                 P.NEEDS_DISCOVERY: "What the business needs from us",
                 P.COMPETITOR_SWITCH: "Switching from their current bookkeeper"}.get(
            plan.purpose, rng.choice(words.REGULAR_TOPICS))
        cmds: list[Command] = [LogContact(
            occurred_at=at, id=contact, client_id=self.client_id, channel=channel,
            direction=Direction.OUTBOUND, purpose=plan.purpose, topic=topic,
            summary="Went through the open points; next steps agreed." if rng.random() < 0.6
            else None, contact_person_id=self.person(
                "decision_maker" if meeting else "contact", "decision_maker"),
            planned_contact_id=plan.id)]
        if plan.purpose == P.CONTRACT_RENEWAL and self.renewal_at is not None:
            self.renewal_at = w.local(w.next_workday(add_months(w.day_of(self.renewal_at), 12)), 12)
        if self.chance("agreement", 0.35) or plan.purpose == P.CONTRACT_RENEWAL:
            text = ("Sign the renewal contract for next year" if plan.purpose == P.CONTRACT_RENEWAL
                    else rng.choice(words.AGREEMENTS))
            cmds.append(self.agreement(minutes(at, 2), contact, text))
        if self.chance("work", 0.2) and self.kind == "customer":
            cmds.append(self.work(minutes(at, 3)))
        next_purpose: ContactPurpose | None = P.REGULAR
        if self.kind == "prospect":
            if plan.purpose == P.FIRST_MEETING:
                next_purpose = P.NEEDS_DISCOVERY if rng.random() < 0.7 else P.COMPETITOR_SWITCH
            elif rng.random() < 0.55 or "convert" in self.force:
                self.kind, self.billing_from = "customer", self.month_index(at) + 1
                self.tags = [*self.tags, "converted"]
                cmds.append(UpdateClient(occurred_at=minutes(at, 4), client_id=self.client_id,
                                         kind=ClientKind.CUSTOMER, tags=self.tags))
            else:
                next_purpose = None  # the prospect went quiet
        if next_purpose is not None:
            months = 1 if self.kind == "prospect" else self.cadence
            due = self.moment(add_months(w.day_of(at), months))
            if (self.renewal_at is not None and self.kind == "customer"
                    and due >= self.renewal_at - timedelta(days=30)):
                next_purpose = P.CONTRACT_RENEWAL
                due = max(self.renewal_at - timedelta(days=21), at + timedelta(days=7))
            cmds.append(self.new_plan(minutes(at, 5), next_purpose, due))
        self.emit(at, self.actor, *cmds)

    def month_index(self, at: datetime) -> int:
        m = 0
        while self.world.month_start(m + 1) <= at:
            m += 1
        return m

    def agreement(self, at: datetime, contact: UUID, text: str) -> Command:
        rng, w = self.rng, self.world
        agreement = w.id("agreement", self.index, contact)
        due = at + timedelta(days=rng.randint(5, 20))
        roll = 0.85 if self.chance("agreement_broken", 0) else rng.random()
        if roll < 0.78:
            days = rng.randint(1, max(1, (due - at).days))
            when = self.moment(w.day_of(at) + timedelta(days=days), at + timedelta(hours=1))
            self.emit(when, self.actor, FulfilAgreement(occurred_at=when, agreement_id=agreement))
        elif roll < 0.90:
            when = self.moment(w.day_of(due) + timedelta(days=rng.randint(1, 5)))
            self.emit(when, self.actor, BreakAgreement(
                occurred_at=when, agreement_id=agreement, reason="Not done by the date agreed."))
        return MakeAgreement(occurred_at=at, id=agreement, client_id=self.client_id, text=text,
                             due_at=due, contact_id=contact)

    def work(self, at: datetime) -> Command:
        rng, w = self.rng, self.world
        work = w.id("work", self.index, at.isoformat())
        assert self.spec is not None
        if rng.random() < 0.9 or "work" in self.force:
            done = self.moment(w.day_of(at) + timedelta(days=rng.randint(1, 15)))
            self.emit(done, self.actor, CompleteWork(occurred_at=done, work_id=work))
            if rng.random() < 0.65 or "work" in self.force:
                rated = self.moment(w.day_of(done) + timedelta(days=rng.randint(1, 7)))
                rating = rng.choices((5, 4, 3, 2, 1), (45, 35, 12, 5, 3))[0]
                self.emit(rated, self.actor, GiveFeedback(
                    occurred_at=rated, work_id=work, rating=rating, text=words.FEEDBACK[rating]))
        return AssignWork(occurred_at=at, id=work, client_id=self.client_id,
                          text=rng.choice(words.WORKS), assignee=self.spec.name,
                          due_at=at + timedelta(days=rng.randint(5, 15)))
