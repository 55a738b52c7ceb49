"""Factories for remote-service histories: specialists, clients, plans, invoices, payments.

Writes go through the command layer (`container.app.execute`) with explicit business times;
the record time is the container's clock, which tests move with a ManualClock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from commands import activity as act
from commands import clients as cl
from commands import money as mo
from commands import reference as ref
from commands.application import Actor, Receipt
from commands.base import Command
from infra.bootstrap import Container
from projections.base import Projection


def t(text: str) -> datetime:
    """A UTC instant from 'YYYY-MM-DD HH:MM' (or a date alone: midnight)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class World:
    def __init__(self, container: Container) -> None:
        self.container = container
        self.actor = Actor("tester", "operator")

    def run(self, *commands: Command) -> Receipt:
        return self.container.app.execute(list(commands), self.actor)

    def new(self, command: Command) -> UUID:
        return self.run(command).results[0].id

    def sync(self) -> None:
        """Wait (bounded) until the projections have applied every stored event."""
        assert self.container.follower.wait_for(self.container.store_position(), 20)

    @contextmanager
    def conn(self) -> Iterator[Connection]:
        self.sync()
        with self.container.engine.connect() as conn:
            yield conn

    # -- factories ----------------------------------------------------------------------------

    def specialist(self, name: str, at: str = "2027-12-01") -> UUID:
        return self.new(ref.RegisterSpecialist(name=name, occurred_at=t(at)))

    def plan(self, specialist: UUID, month: str, amount: str, at: str = "2027-12-01") -> None:
        self.run(ref.SetPaymentPlan(specialist_id=specialist, month=month, amount=amount,
                                    currency="EUR", occurred_at=t(at)))

    def client(self, name: str, *, at: str = "2028-01-01", specialist: UUID | None = None,
               form: str = "organisation", **profile: Any) -> UUID:
        return self.new(cl.RegisterClient(kind=profile.pop("kind", "customer"), form=form,
                                          name=name, specialist_id=specialist,
                                          occurred_at=t(at), **profile))

    def reassign(self, client: UUID, specialist: UUID, at: str) -> None:
        self.run(cl.UpdateClient(client_id=client, specialist_id=specialist, occurred_at=t(at)))

    def invoice(self, client: UUID, number: str, amount: str, *, issued: str, due: str) -> UUID:
        return self.new(mo.IssueInvoice(client_id=client, number=number, amount=amount,
                                        currency="EUR", due_at=t(due), occurred_at=t(issued)))

    def pay(self, client: UUID, amount: str, at: str, invoice: UUID | None = None) -> UUID:
        return self.new(mo.ReceivePayment(client_id=client, amount=amount, currency="EUR",
                                          invoice_id=invoice, occurred_at=t(at)))

    def act_sent(self, invoice: UUID, at: str) -> None:
        self.run(mo.SendAct(invoice_id=invoice, occurred_at=t(at)))

    def act_returned(self, invoice: UUID, at: str) -> None:
        self.run(mo.ReturnAct(invoice_id=invoice, occurred_at=t(at)))

    def contact(self, client: UUID, topic: str, at: str, **fields: Any) -> UUID:
        return self.new(act.LogContact(client_id=client, channel=fields.pop("channel", "phone"),
                                       direction=fields.pop("direction", "outbound"),
                                       topic=topic, occurred_at=t(at), **fields))

    def planned(self, client: UUID, purpose: str, due: str, at: str, **fields: Any) -> UUID:
        return self.new(act.PlanContact(client_id=client, purpose=purpose, due_at=t(due),
                                        occurred_at=t(at), **fields))

    def agreement(self, client: UUID, text: str, due: str, at: str) -> UUID:
        return self.new(act.MakeAgreement(client_id=client, text=text, due_at=t(due),
                                          occurred_at=t(at)))

    def work(self, client: UUID, text: str, at: str) -> UUID:
        return self.new(act.AssignWork(client_id=client, text=text, assignee="Team A",
                                       occurred_at=t(at)))


def snapshot(conn: Connection, projection: Projection) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the projection's tables, ordered by primary key."""
    out = {}
    for table in projection.tables:
        rows = conn.execute(select(table).order_by(*table.primary_key.columns))
        out[table.name] = [tuple(r) for r in rows]
    return out
