"""Money commands: invoices, acts sent and returned, payments received."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from pydantic import Field

from commands.base import Command, Outcome, UnitOfWork, handles
from commands.fields import Amount, Currency, Instant
from domain.money import Invoice, Payment
from domain.values import Meta, Money


class IssueInvoice(Command):
    NAME = "issue_invoice"
    id: UUID | None = None
    client_id: UUID
    number: Annotated[str, Field(min_length=1, max_length=60)]
    amount: Amount
    currency: Currency
    due_at: Instant


class SendAct(Command):
    NAME = "send_act"
    invoice_id: UUID


class ReturnAct(Command):
    NAME = "return_act"
    invoice_id: UUID


class ReceivePayment(Command):
    NAME = "receive_payment"
    id: UUID | None = None
    client_id: UUID
    amount: Amount
    currency: Currency
    reference: Annotated[str, Field(max_length=200)] | None = None
    invoice_id: UUID | None = None


@handles(IssueInvoice)
def issue_invoice(cmd: IssueInvoice, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    return Outcome(uow.add(Invoice.issue(
        id=uow.claim(Invoice, cmd.id, kind="invoice"), client_id=client.id, meta=meta,
        number=cmd.number, amount=Money.parse(cmd.amount, cmd.currency), due_at=cmd.due_at)))


@handles(SendAct)
def send_act(cmd: SendAct, uow: UnitOfWork, meta: Meta) -> Outcome:
    invoice = uow.target(Invoice, cmd.invoice_id, kind="invoice")
    invoice.send_act(meta)
    return Outcome(invoice)


@handles(ReturnAct)
def return_act(cmd: ReturnAct, uow: UnitOfWork, meta: Meta) -> Outcome:
    invoice = uow.target(Invoice, cmd.invoice_id, kind="invoice")
    invoice.return_act(meta)
    return Outcome(invoice)


@handles(ReceivePayment)
def receive_payment(cmd: ReceivePayment, uow: UnitOfWork, meta: Meta) -> Outcome:
    client = uow.live_client(cmd.client_id)
    money = Money.parse(cmd.amount, cmd.currency)
    if cmd.invoice_id is not None:
        uow.get(Invoice, cmd.invoice_id, kind="invoice", field="invoice_id").accept_payment(
            client.id, money)
    return Outcome(uow.add(Payment.receive(
        id=uow.claim(Payment, cmd.id, kind="payment"), client_id=client.id, meta=meta,
        amount=money, reference=cmd.reference, invoice_id=cmd.invoice_id)))
