"""The demo history for `crm demo`: a deterministic, realistic command sequence (DESIGN.md §1).

Two businesses share the CRM: a car service in York (people with cars, work orders, surveys
3-4 days after a visit, complaints and wishes) and a remote bookkeeping service (organisations
with contact persons, account managers with monthly payment plans, planned and emergency
contacts, agreements, work and feedback, monthly invoices with acts, payments). Each client's
life is a story with its own random stream seeded from the one seed; the stories are merged in
business-time order. No clock, no global state: the same arguments give the same commands.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from commands.application import Actor
from commands.base import Command
from commands.reference import (
    DefineSurveyTemplate,
    Question,
    RegisterSpecialist,
    SetCalendar,
    SetPaymentPlan,
    SetSlaTarget,
)
from demo import words
from demo.cars import CarStory
from demo.remote import OrgStory
from demo.world import CURRENCY, Alias, DemoStep, Staff, Story, World
from domain.business_calendar import BusinessCalendar, WorkingHours
from domain.months import add_months
from domain.values import SituationKind

__all__ = ["EVENT_TYPES", "Alias", "DemoStep", "Size", "generate", "size_for", "until_today"]

DEMO_NS = UUID("3c5e8d0a-7b14-4f2e-9a6d-1e2f3b4c5d6e")
ZONE = "Europe/London"
CENT = Decimal("0.01")
ADMIN = Actor("ops.admin", "admin")
ACCOUNTS = (("Sarah Whitfield", "s.whitfield"), ("Imran Qureshi", "i.qureshi"),
            ("Megan Doyle", "m.doyle"), ("Tobias Reed", "t.reed"), ("Hannah Price", "h.price"),
            ("Callum Fraser", "c.fraser"))
CARE = (("Rachel Dunn", "r.dunn"), ("Owen Blake", "o.blake"))
LEAVER = 3  # Tobias Reed leaves a little after the middle of the history
# situation kind: (first reaction, resolution) in business hours
SLA_HOURS = {"complaint": (4, 27), "survey_dissatisfaction": (8, 45), "churn_threat": (2, 18),
             "competitor_threat": (4, 27), "payment_delay": (9, 90), "acts_not_returned": (9, 90),
             "low_usage": (18, 135), "other": (9, 45)}
FEES = (150, 220, 290, 350, 450, 600, 800, 1200, 1800, 2400)
# The first clients of each business are showcases: each has some rare happenings forced, so
# even a small demo (the tests load 60 clients over 3 months) holds every event type.
CAR_SHOWCASE = ({"unhappy", "pause", "reopen", "survey_complaint", "wish", "mot_reminder"},
                {"correction", "delivery_complaint", "new_phone", "interest"}, {"erase"},
                {"unreachable", "staff"})
ORG_SHOWCASE = ({"agreement", "agreement_broken", "work", "emergency", "partial", "person_update",
                 "person_leaves", "interest", "moved", "fill_in", "reassign"},
                {"cancel_plan", "low_usage", "agreement", "work", "emergency"}, {"convert"})

# Every event type a demo of a few dozen clients over three months or more produces (with
# December 1st inside the history, when next year's bank holidays are added to the calendar).
EVENT_TYPES = frozenset({
    "SpecialistRegistered", "PaymentPlanSet", "CalendarDefined", "CalendarChanged",
    "SlaTargetDefined", "SlaTargetChanged", "SurveyTemplateDefined", "SurveyTemplateRevised",
    "ClientRegistered", "ClientProfileUpdated", "ClientReassigned", "ClientInterestNoted",
    "ContactPersonAdded", "ContactPersonUpdated", "ContactPersonRemoved", "ClientErased",
    "ContactLogged", "ContactPlanned", "PlannedContactCompleted", "PlannedContactCancelled",
    "AgreementMade", "AgreementFulfilled", "AgreementBroken", "WorkAssigned", "WorkCompleted",
    "FeedbackReceived", "WorkOrderOpened", "WorkOrderClosed", "SurveyStarted", "SurveyTickSet",
    "SurveyCompleted", "ComplaintRegistered", "WishRegistered", "SituationOpened",
    "SituationAcknowledged", "SituationPaused", "SituationResumed", "SituationResolved",
    "SituationReopened", "InvoiceIssued", "ActSent", "ActReturned", "PaymentReceived",
})


# Events a client brings to a history of `m` months: about FIXED + PER_MONTH * m (measured on
# seeds 7, 300 to 10,000 clients: 7.8 at one month, 10.5 at two, 48-50 at eighteen).
FIXED = 5.4
PER_MONTH = 2.45
MAX_MONTHS = 36


@dataclass(frozen=True)
class Size:
    """A demo history sized for about `events` events (what `crm bench` writes)."""

    clients: int
    months: int
    events: int  # the estimate; the store counts the exact figure

    @property
    def per_client(self) -> float:
        return FIXED + PER_MONTH * self.months


def size_for(events: int, clients: int) -> Size:
    """The shortest history, in whole months, in which `clients` clients bring about `events`
    events. One month of a client brings ~8 events: when even that is too many, fewer clients
    (a month of them); past `MAX_MONTHS`, more clients."""
    if events < 1 or clients < 1:
        raise ValueError("events and clients must be at least 1")
    ideal = (events / clients - FIXED) / PER_MONTH
    months = min(MAX_MONTHS, max(1, round(ideal)))
    per_client = FIXED + PER_MONTH * months
    if not 0.5 <= ideal < MAX_MONTHS + 0.5:
        clients = max(1, round(events / per_client))
    return Size(clients, months, round(clients * per_client))


def generate(seed: int = 7, clients: int = 2000, months: int = 18,
             start: date = date(2025, 5, 1), until: datetime | None = None
             ) -> Iterator[DemoStep]:
    """The history's steps in business-time order; `start + months` is its (exclusive) end,
    or `until` when given (an instant after the start and not after `start + months`: the
    history stops there, e.g. now, with the month it falls in planned)."""
    if clients < 1 or months < 1:
        raise ValueError("clients and months must be at least 1")
    rng = random.Random(seed)
    world = _world(seed, start, months, until)
    stories = _stories(world, rng, clients)
    # Reference data is planned before any story runs: plans use the clients' initial state.
    streams: list[Iterator[DemoStep]] = [iter(_reference(world, stories))]
    streams += [s.steps() for s in stories]
    # Ties keep stream order (reference data first), so the merge is deterministic too.
    return heapq.merge(*streams, key=lambda step: step.at)


def until_today(now: datetime, months: int, last_day: date | None = None) -> tuple[date, datetime]:
    """(start, until) of a history of `months` calendar months whose last one holds
    `last_day` (default: today in the demo's zone): from the first of the first month to the
    end of `last_day`, or to `now` when that day is today. ValueError for a day after today."""
    zone = ZoneInfo(ZONE)
    today = now.astimezone(zone).date()
    day = last_day or today
    if day > today:
        raise ValueError(f"{day} is after today ({today})")
    start = add_months(day.replace(day=1), 1 - months)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=zone)
    return start, min(now, end.astimezone(UTC))


def _world(seed: int, start: date, months: int, until: datetime | None = None) -> World:
    zone = ZoneInfo(ZONE)
    ns = uuid5(DEMO_NS, f"seed:{seed}")
    first = datetime.combine(start, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end_day = add_months(start, months)
    holidays = [d for y in range(start.year, end_day.year + 2) for d in words.bank_holidays(y)]
    calendar = BusinessCalendar(ZONE, WorkingHours.standard(), frozenset(holidays))
    people = [(n, u, "accounts") for n, u in ACCOUNTS] + [(n, u, "care") for n, u in CARE]
    staff = tuple(Staff(uuid5(ns, f"specialist:{k}"), name, user, team)
                  for k, (name, user, team) in enumerate(people))
    world = World(ns=ns, start=first, end=first, months=months, zone=zone, calendar=calendar,
                  staff=staff, template=uuid5(ns, "alias:template"), review_at=first,
                  leaver=LEAVER, leave_at=first)
    end = world.local(end_day, 0)
    if until is not None:
        if not first < until <= end:
            raise ValueError(f"until must lie after {first} and not after {end}")
        end = until
    mid = world.day_of(world.month_start(months // 2)) + timedelta(days=14)
    leave = world.month_start(max(1, months * 55 // 100))
    return World(ns=ns, start=first, end=end, months=months, zone=zone, calendar=calendar,
                 staff=staff, template=world.template,
                 review_at=world.local(world.next_workday(mid), 7, 30),
                 leaver=LEAVER, leave_at=world.local(world.next_workday(world.day_of(leave)), 8),
                 starts=tuple(world.month_start(m) for m in range(months + 2)))


def _stories(world: World, rng: random.Random, clients: int) -> list[Story]:
    accounts = [s for s in world.staff if s.team == "accounts"]
    care = [s for s in world.staff if s.team == "care"]
    remote = round(clients * 0.42)
    days = max(1, (world.end - world.start).days - 8)
    stories: list[Story] = []
    for i in range(clients):
        car = i < clients - remote
        local = i if car else i - (clients - remote)
        showcase = CAR_SHOWCASE if car else ORG_SHOWCASE
        force = frozenset(showcase[local]) if local < len(showcase) else frozenset()
        if force:
            offset = local + 1
        elif rng.random() < 0.35:
            offset = rng.randrange(min(30, days))  # the existing base, entered in the first month
        else:
            offset = rng.randrange(days)
        day = world.next_workday(world.day_of(world.start) + timedelta(days=offset))
        at = world.local(day, rng.randint(8, 10) if car else rng.randint(9, 15),
                         rng.randrange(0, 60, 5))
        story_rng = random.Random(rng.getrandbits(64))
        client_id = world.id("client", i)
        if car:
            cars = CarStory(world, i, client_id, story_rng, force)
            cars.setup(at, rng.choice(care))
            stories.append(cars)
            continue
        kind = rng.choices(("customer", "prospect", "partner", "supplier"), (80, 12, 4, 4))[0]
        if force:
            kind = "prospect" if "convert" in force else "customer"
        spec = None if kind == "supplier" else rng.choice(accounts)
        successor = rng.choice([s for s in accounts if s is not accounts[LEAVER]])
        if spec is accounts[LEAVER] and at >= world.leave_at:
            spec = successor  # nobody is given to a specialist who has left
        org = OrgStory(world, i, client_id, story_rng, force)
        fee = Decimal(rng.choices(FEES, (10, 14, 14, 14, 12, 10, 9, 7, 5, 3))[0]).quantize(CENT)
        org.setup(at, kind, spec, fee, successor, tuple(accounts))
        stories.append(org)
    return stories


def _reference(world: World, stories: list[Story]) -> list[DemoStep]:
    """Specialists, calendar, SLA targets, the survey template, monthly plans, later changes."""
    w = world
    day0 = w.day_of(w.start)
    steps = [
        _step(w.local(day0, 7), *(RegisterSpecialist(
            occurred_at=w.local(day0, 7), id=s.id, name=s.name, user_id=s.user,
            email=f"{s.user}@northgate-group.example.co.uk") for s in w.staff)),
        _step(w.local(day0, 7, 5), _calendar(w.local(day0, 7, 5), day0.year)),
        _step(w.local(day0, 7, 10), *(SetSlaTarget(
            occurred_at=w.local(day0, 7, 10), situation_kind=SituationKind(kind),
            first_reaction_seconds=a * 3600,
            resolution_seconds=b * 3600) for kind, (a, b) in SLA_HOURS.items())),
        DemoStep(w.local(day0, 7, 15), ADMIN, (_template(w.local(day0, 7, 15), None),), None,
                 (Alias(0, None, w.template),)),
        _step(w.review_at, _template(w.review_at, w.template), SetSlaTarget(
            occurred_at=w.review_at, situation_kind=SituationKind.COMPLAINT,
            first_reaction_seconds=2 * 3600,
            resolution_seconds=27 * 3600)),
    ]
    for year in range(day0.year, w.day_of(w.end).year + 1):
        at = w.local(date(year, 12, 1), 7)
        if w.start < at < w.end:
            steps.append(_step(at, _calendar(at, year, year + 1)))
    for m in range(w.months):
        at = w.month_start(m) + timedelta(hours=7, minutes=20)
        steps.append(_step(at, *_plans(w, stories, m, at)))
    # A history stopped early (`until`) leaves out what lies after its end.
    return sorted((s for s in steps if s.at < w.end), key=lambda s: s.at)


def _step(at: datetime, *commands: Command) -> DemoStep:
    return DemoStep(at, ADMIN, tuple(commands), None)


def _calendar(at: datetime, *years: int) -> SetCalendar:
    return SetCalendar(
        occurred_at=at, calendar="default", timezone=ZONE,
        hours={d: [("09:00", "18:00")] for d in ("mon", "tue", "wed", "thu", "fri")},
        holidays=[d for y in years for d in words.bank_holidays(y)])


def _template(at: datetime, template_id: UUID | None) -> DefineSurveyTemplate:
    questions = list(words.QUESTIONS) + ([words.QUESTION_V2] if template_id else [])
    return DefineSurveyTemplate(
        occurred_at=at, template_id=template_id, name="Car service follow-up call",
        questions=[Question(id=q, stage=stage, text=text) for q, stage, text, _w in questions])


def _plans(w: World, stories: list[Story], m: int, at: datetime) -> list[Command]:
    """Each specialist's collection target: what their clients should pay that month."""
    month = f"{w.day_of(w.month_start(m)):%Y-%m}"
    due: dict[UUID, Decimal] = {s.id: Decimal(0) for s in w.staff}
    for story in stories:
        if isinstance(story, OrgStory) and story.kind == "customer" and story.spec is not None:
            if story.registered < w.month_start(m):
                leaving = story.spec == w.staff[w.leaver] and w.leave_at < at
                owner = story.successor if leaving and story.successor else story.spec
                due[owner.id] += story.fee
        elif isinstance(story, CarStory) and story.registered < w.month_start(m + 1):
            due[story.care.id] += Decimal(35)
    plans: list[Command] = []
    for k, s in enumerate(w.staff):
        if k == w.leaver and w.leave_at < at:
            continue
        amount = max(Decimal(500), (due[s.id] * Decimal("0.95") / 50).to_integral_value() * 50)
        amount = amount.quantize(CENT)
        plans.append(SetPaymentPlan(occurred_at=at, specialist_id=s.id, month=month,
                                    amount=str(amount), currency=CURRENCY))
    return plans
