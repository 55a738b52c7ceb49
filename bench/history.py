"""The benchmark history: a seeded, deterministic stream of commands through the command layer.

The same seed and sizes give the same commands (ids are uuid5 of the seed and a counter, times
lie on a fixed 18-month business calendar in the past), so every run and both backends write
the same history. The mix follows a remote-service CRM: clients registered over time, contacts
logged and planned, invoices and payments, agreements, interests and contact persons, complaints
(each opens a situation in the same write), manual situations acknowledged and resolved, and a
few emergency contacts (which open situations too) and work orders.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from commands.activity import FulfilAgreement, LogContact, MakeAgreement, PlanContact
from commands.base import Command
from commands.clients import AddContactPerson, NoteInterest, RegisterClient
from commands.money import IssueInvoice, ReceivePayment
from commands.reference import RegisterSpecialist
from commands.service import CloseWorkOrder, OpenWorkOrder, RegisterComplaint
from commands.situations import AcknowledgeSituation, OpenSituation, ResolveSituation
from domain.values import Channel, ClientForm, ClientKind, ContactRole, Direction, SituationKind
from domain.values import ContactPurpose as P

START = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
SPAN = timedelta(days=540)
SPECIALISTS = 8
TOPICS = ("Invoice question", "Contract renewal", "Usage review", "New module demo",
          "Support follow-up", "Price list", "Onboarding call", "Quarterly review")
WORDS = ("the client asked about the last invoice and the terms of the annual plan",
         "we agreed to send the updated price list and to call back next week",
         "complains that the report export is slow and wants a workaround",
         "new accountant joined, needs access and a short training session")

# (command kind, weight, events it writes); kinds needing an earlier entity fall back to a contact.
MIX: tuple[tuple[str, int, int], ...] = (
    ("contact", 34, 1), ("plan", 12, 1), ("invoice", 10, 1), ("payment", 8, 1),
    ("agreement", 5, 1), ("fulfil", 3, 1), ("interest", 3, 1), ("person", 3, 1),
    ("complaint", 4, 2), ("situation", 4, 1), ("ack", 3, 1), ("resolve", 3, 1),
    ("emergency", 2, 2), ("work_order", 3, 1), ("close_order", 3, 1),
)


@dataclass
class _Client:
    id: UUID
    specialist: UUID
    invoices: list[tuple[UUID, str]] = field(default_factory=list)  # unpaid (id, amount)
    agreements: list[UUID] = field(default_factory=list)
    situations: list[tuple[UUID, bool]] = field(default_factory=list)  # (id, acknowledged)
    orders: list[UUID] = field(default_factory=list)


class History:
    """`events` events over `clients` clients, as commands; `expected` counts events written."""

    def __init__(self, events: int, clients: int, *, seed: int = 7) -> None:
        self.target = events
        self.clients = max(1, min(clients, events))
        self.seed = seed
        self.expected = 0
        self._rng = random.Random(seed)
        self._counter = 0
        self._known: list[_Client] = []
        self._specialists: list[UUID] = []
        self._kinds = [k for k, _w, _e in MIX]
        self._weights = [w for _k, w, _e in MIX]

    def new_id(self, kind: str) -> UUID:
        self._counter += 1
        return uuid.uuid5(uuid.NAMESPACE_URL, f"crm-bench:{self.seed}:{kind}:{self._counter}")

    def client_ids(self) -> list[UUID]:
        return [c.id for c in self._known]

    def commands(self) -> Iterator[Command]:
        """Commands until about `events` events are written (the store counts the exact figure)."""
        for n in range(SPECIALISTS):
            sid = self.new_id("specialist")
            self._specialists.append(sid)
            self.expected += 1
            yield RegisterSpecialist(id=sid, name=f"Specialist {n + 1}", occurred_at=START)
        while self.expected < self.target:
            at = START + SPAN * min(self.expected / self.target, 1.0)
            remaining_clients = self.clients - len(self._known)
            remaining_events = max(self.target - self.expected, 1)
            # Clients arrive spread over the first half of the history or so.
            registering = remaining_clients > 0 and (
                not self._known or self._rng.random() < remaining_clients / remaining_events * 2)
            if registering:
                yield self._register(at)
                continue
            yield self._activity(self._pick(), at)

    def _pick(self) -> _Client:
        # A mild skew: a third of the activity goes to the first tenth of the clients.
        if self._rng.random() < 0.33:
            return self._known[self._rng.randrange(max(1, len(self._known) // 10))]
        return self._rng.choice(self._known)

    def _register(self, at: datetime) -> Command:
        n = len(self._known) + 1
        client = _Client(self.new_id("client"), self._rng.choice(self._specialists))
        self._known.append(client)
        self.expected += 1
        organisation = n % 3 == 0
        return RegisterClient(
            id=client.id, kind=ClientKind.CUSTOMER if n % 7 else ClientKind.PROSPECT,
            form=ClientForm.ORGANISATION if organisation else ClientForm.PERSON,
            name=f"{'Firm' if organisation else 'Client'} {n:07d}", tax_id=f"DE{n:09d}",
            phones=[f"+49 30 {n:07d}"], emails=[f"client{n}@example.com"],
            address=f"{n} Main Street, Berlin", tags=["bench", TOPICS[n % len(TOPICS)][:12]],
            specialist_id=client.specialist, occurred_at=at)

    def _activity(self, c: _Client, at: datetime) -> Command:
        kind = self._rng.choices(self._kinds, self._weights)[0]
        command = self._make(kind, c, at)
        if command is None:
            kind, command = "contact", self._make("contact", c, at)
        assert command is not None
        self.expected += dict((k, e) for k, _w, e in MIX)[kind]
        return command

    def _make(self, kind: str, c: _Client, at: datetime) -> Command | None:
        r = self._rng
        text = r.choice(WORDS)
        if kind == "contact":
            return LogContact(client_id=c.id,
                              channel=r.choice((Channel.PHONE, Channel.EMAIL, Channel.MEETING)),
                              direction=r.choice((Direction.INBOUND, Direction.OUTBOUND)),
                              purpose=r.choice((P.REGULAR, P.NEEDS_DISCOVERY, P.LOW_USAGE, None)),
                              topic=r.choice(TOPICS), summary=text, occurred_at=at)
        if kind == "plan":
            return PlanContact(client_id=c.id, purpose=r.choice((P.REGULAR, P.CONTRACT_RENEWAL)),
                               due_at=at + timedelta(days=r.randint(1, 40)), note=text,
                               occurred_at=at)
        if kind == "invoice":
            iid, amount = self.new_id("invoice"), f"{r.randint(50, 5000)}.00"
            c.invoices.append((iid, amount))
            return IssueInvoice(id=iid, client_id=c.id, number=f"INV-{self._counter:08d}",
                                amount=amount, currency="EUR",
                                due_at=at + timedelta(days=14), occurred_at=at)
        if kind == "payment":
            if not c.invoices:
                return None
            iid, amount = c.invoices.pop(0)
            return ReceivePayment(client_id=c.id, amount=amount, currency="EUR",
                                  reference=f"bank {self._counter}", invoice_id=iid,
                                  occurred_at=at)
        if kind == "agreement":
            aid = self.new_id("agreement")
            c.agreements.append(aid)
            return MakeAgreement(id=aid, client_id=c.id, text=text,
                                 due_at=at + timedelta(days=10), occurred_at=at)
        if kind == "fulfil":
            return FulfilAgreement(agreement_id=c.agreements.pop(0), occurred_at=at) \
                if c.agreements else None
        if kind == "interest":
            return NoteInterest(client_id=c.id, text=text, occurred_at=at)
        if kind == "person":
            return AddContactPerson(client_id=c.id, name=f"Person {self._counter}",
                                    role=r.choice((ContactRole.CONTACT,
                                                   ContactRole.DECISION_MAKER, ContactRole.USER)),
                                    phones=[f"+49 40 {self._counter:07d}"], occurred_at=at)
        if kind == "complaint":
            return RegisterComplaint(client_id=c.id, text=text, channel=Channel.PHONE,
                                     occurred_at=at)
        if kind == "situation":
            sid = self.new_id("situation")
            c.situations.append((sid, False))
            return OpenSituation(id=sid, client_id=c.id,
                                 kind=r.choice((SituationKind.PAYMENT_DELAY, SituationKind.OTHER)),
                                 description=text, occurred_at=at)
        if kind == "ack":
            for i, (sid, acked) in enumerate(c.situations):
                if not acked:
                    c.situations[i] = (sid, True)
                    return AcknowledgeSituation(situation_id=sid, occurred_at=at)
            return None
        if kind == "resolve":
            for i, (sid, acked) in enumerate(c.situations):
                if acked:
                    del c.situations[i]
                    return ResolveSituation(situation_id=sid, resolution="done", occurred_at=at)
            return None
        if kind == "emergency":
            return LogContact(client_id=c.id, channel=Channel.PHONE, direction=Direction.INBOUND,
                              purpose=r.choice((P.CHURN_THREAT, P.COMPETITOR_THREAT)),
                              topic="Wants to cancel", summary=text, occurred_at=at)
        if kind == "work_order":
            oid = self.new_id("order")
            c.orders.append(oid)
            return OpenWorkOrder(id=oid, client_id=c.id, asset=f"car {self._counter}",
                                 services=["oil change"], stages=["reception", "repair"],
                                 occurred_at=at)
        if kind == "close_order":
            return CloseWorkOrder(work_order_id=c.orders.pop(0), amount="180.00",
                                  currency="EUR", occurred_at=at) if c.orders else None
        raise ValueError(kind)


def heavy_client(client_id: UUID, events: int, *, seed: int = 7) -> Iterator[Command]:
    """`events` contacts logged for one client (the as-of card benchmark's client)."""
    rng = random.Random(seed)
    for n in range(events):
        yield LogContact(client_id=client_id, channel=Channel.PHONE, direction=Direction.OUTBOUND,
                         purpose=P.REGULAR, topic=TOPICS[n % len(TOPICS)],
                         summary=rng.choice(WORDS),
                         occurred_at=START + SPAN * (n / max(events, 1)))


def batches(commands: Iterator[Command], size: int) -> Iterator[list[Command]]:
    batch: list[Command] = []
    for command in commands:
        batch.append(command)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
