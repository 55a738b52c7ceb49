"""Demo history, remote-service billing: monthly invoices and acts, payments, chasing debtors."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from commands.activity import BreakAgreement, FulfilAgreement, LogContact, MakeAgreement
from commands.application import Actor
from commands.base import Command
from commands.money import IssueInvoice, ReceivePayment, ReturnAct, SendAct
from commands.situations import OpenSituation
from demo.world import CURRENCY, minutes
from domain.values import Channel, ContactPurpose, Direction, SituationKind

if TYPE_CHECKING:
    from demo.remote import OrgStory

BILLING = Actor("billing.lena", "operator")
CENT = Decimal("0.01")


def invoice(story: OrgStory, m: int, lo: datetime) -> None:
    """The month's invoice with its act; then how the act comes back and the money comes in."""
    rng, w = story.rng, story.world
    at = w.local(w.next_workday(w.day_of(lo)), 9, rng.randrange(0, 50, 5))
    number = f"LL-{w.day_of(lo):%Y%m}-{story.index:04d}"
    invoice_id = w.id("invoice", story.index, m)
    extra = Decimal(rng.choice((45, 90, 135, 180))) if rng.random() < 0.1 else Decimal(0)
    extra = extra.quantize(CENT)  # billed hours beyond the package
    amount = story.fee + extra
    due = at + timedelta(days=14)
    cmds: list[Command] = [IssueInvoice(occurred_at=at, id=invoice_id, client_id=story.client_id,
                                        number=number, amount=str(amount), currency=CURRENCY,
                                        due_at=due)]
    sent = minutes(at, 1) if rng.random() < 0.85 else story.moment(
        w.day_of(at) + timedelta(days=rng.randint(1, 5)))
    if sent == minutes(at, 1):
        cmds.append(SendAct(occurred_at=sent, invoice_id=invoice_id))
    if not story.emit(at, BILLING, *cmds):
        return
    if len(cmds) == 1:
        story.emit(sent, BILLING, SendAct(occurred_at=sent, invoice_id=invoice_id))
    _act_returned(story, m, invoice_id, sent)
    _payments(story, m, invoice_id, number, amount, at, due)


def _act_returned(story: OrgStory, m: int, invoice_id: UUID, sent: datetime) -> None:
    rng, w = story.rng, story.world
    roll = rng.random()
    returned: datetime | None = None
    if (story.act_discipline == "good" and roll < 0.95) or roll < 0.15:
        returned = story.moment(w.day_of(sent) + timedelta(days=rng.randint(3, 12)))
    elif story.act_discipline == "sloppy" and roll < 0.75:
        returned = story.moment(w.day_of(sent) + timedelta(days=rng.randint(15, 45)))
    chase = story.moment(w.day_of(sent) + timedelta(days=rng.randint(20, 24)))
    if returned is None or returned > chase + timedelta(hours=1):
        cmds: list[Command] = [LogContact(
            occurred_at=chase, id=w.id("contact", story.index, "acts", m),
            client_id=story.client_id, channel=Channel.PHONE, direction=Direction.OUTBOUND,
            purpose=ContactPurpose.ACTS_NOT_RETURNED, topic="Signed act not returned yet",
            contact_person_id=story.person("contact", "decision_maker"))]
        situation = w.id("situation", story.index, "acts", m)
        if rng.random() < 0.2 and story.spec is not None:
            cmds.append(OpenSituation(
                occurred_at=minutes(chase, 3), id=situation, client_id=story.client_id,
                kind=SituationKind.ACTS_NOT_RETURNED,
                description="Acts for two months are still unsigned."))
        if story.emit(chase, story.actor, *cmds) and len(cmds) > 1:
            assert story.spec is not None
            story.handle_situation(situation, minutes(chase, 3), "acts_not_returned", story.spec)
    if returned is not None:
        story.emit(returned, BILLING, ReturnAct(occurred_at=returned, invoice_id=invoice_id))


def _payments(story: OrgStory, m: int, invoice_id: UUID, number: str, amount: Decimal,
              issued: datetime, due: datetime) -> None:
    rng, w = story.rng, story.world
    on_time = story.moment(w.day_of(issued) + timedelta(days=rng.randint(1, 13)))
    on_time = min(on_time, due - timedelta(hours=2))
    odds = {"punctual": (0.92, 0.97, 0.995), "late": (0.45, 0.85, 0.98),
            "chaotic": (0.25, 0.60, 0.90)}[story.payer]
    roll = 0.9 if story.chance("partial", 0) else rng.random()
    payments: list[tuple[datetime, Decimal]] = []
    if roll < odds[0]:
        payments = [(on_time, amount)]
    elif roll < odds[1]:
        payments = [(story.moment(w.day_of(due) + timedelta(days=rng.randint(2, 40))), amount)]
    elif roll < odds[2]:
        part = (amount * Decimal(rng.randint(40, 70)) / 100).quantize(CENT)
        later = story.moment(w.day_of(due) + timedelta(days=rng.randint(10, 40)))
        payments = [(on_time, part), (later, amount - part)]
    # else: never paid, a debtor every later report shows
    for k, (at, paid) in enumerate(payments):
        story.emit(at, BILLING, ReceivePayment(
            occurred_at=at, id=w.id("payment", story.index, m, k), client_id=story.client_id,
            amount=str(paid), currency=CURRENCY, reference=f"Bank transfer {number}",
            invoice_id=invoice_id))
    settled = payments[-1][0] if payments else None
    if settled is not None and settled < due + timedelta(days=3) and len(payments) == 1:
        return
    chase = story.moment(w.day_of(due) + timedelta(days=rng.randint(2, 5)))
    if settled is not None and settled <= chase:
        return
    contact = w.id("contact", story.index, "pay", m)
    cmds: list[Command] = [LogContact(
        occurred_at=chase, id=contact, client_id=story.client_id, channel=Channel.PHONE,
        direction=Direction.OUTBOUND, purpose=ContactPurpose.PAYMENT_DELAY,
        topic=f"Invoice {number} is overdue",
        contact_person_id=story.person("contact", "decision_maker"))]
    if rng.random() < 0.4:
        agreement = w.id("agreement", story.index, "pay", m)
        promise = chase + timedelta(days=rng.randint(5, 10))
        cmds.append(MakeAgreement(occurred_at=minutes(chase, 2), id=agreement,
                                  client_id=story.client_id, due_at=promise,
                                  text=f"Pay invoice {number} by {promise:%d %B}",
                                  contact_id=contact))
        if settled is not None and settled <= promise:
            kept = settled + timedelta(hours=1)
            story.emit(kept, story.actor, FulfilAgreement(occurred_at=kept, agreement_id=agreement,
                                                         note="Payment arrived."))
        else:
            broken = story.moment(w.day_of(promise) + timedelta(days=1))
            story.emit(broken, story.actor, BreakAgreement(
                occurred_at=broken, agreement_id=agreement,
                reason="No payment by the date promised."))
    situation = w.id("situation", story.index, "pay", m)
    if rng.random() < 0.2 and story.spec is not None:
        cmds.append(OpenSituation(occurred_at=minutes(chase, 3), id=situation,
                                  client_id=story.client_id, kind=SituationKind.PAYMENT_DELAY,
                                  description=f"Invoice {number} unpaid after the due date."))
    if story.emit(chase, story.actor, *cmds) and isinstance(cmds[-1], OpenSituation):
        assert story.spec is not None
        story.handle_situation(situation, minutes(chase, 3), "payment_delay", story.spec)
