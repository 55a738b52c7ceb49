"""Invoices with the acts sent and returned with them, and payments received."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING
from uuid import UUID

from domain.base import CrmAggregate, sealed_since
from domain.errors import InvalidValueError
from domain.values import Meta, Money


class Invoice(CrmAggregate):
    """An invoice and the act (signed acceptance document) sent with it and returned."""

    STARTED_AS = "was issued"

    class InvoiceIssued(CrmAggregate.Created):
        number: str
        amount: Decimal
        currency: str
        due_at: datetime

        def apply(self, agg: Invoice) -> None:
            agg.client_id = self.client_id
            agg.currency = self.currency
            agg.act = "none"

    class ActSent(CrmAggregate.Event):
        def apply(self, agg: Invoice) -> None:
            agg.act = "sent"

    class ActReturned(CrmAggregate.Event):
        def apply(self, agg: Invoice) -> None:
            agg.act = "returned"

    if TYPE_CHECKING:
        currency: str
        act: str

    @classmethod
    def issue(cls, *, id: UUID, client_id: UUID, meta: Meta, number: str,
              amount: Money, due_at: datetime) -> Invoice:
        if not number.strip():
            raise InvalidValueError("must not be blank", field="number")
        if due_at < meta.occurred_at:
            raise InvalidValueError("due before it was issued", field="due_at")
        return cls._start(cls.InvoiceIssued, id=id, client_id=client_id, meta=meta,
                          number=number, amount=amount.amount, currency=amount.currency,
                          due_at=due_at)

    def send_act(self, meta: Meta) -> None:
        self._require(self.act == "none", f"the act was already {self.act}")
        self._emit(self.ActSent, meta)

    def return_act(self, meta: Meta) -> None:
        self._require(self.act == "sent", "the act was not sent" if self.act == "none"
                      else "the act was already returned")
        self._emit(self.ActReturned, meta)

    def accept_payment(self, client_id: UUID, money: Money) -> None:
        if client_id != self.client_id:
            raise InvalidValueError("the invoice belongs to another client", field="invoice_id")
        if money.currency != self.currency:
            raise InvalidValueError(f"the invoice is in {self.currency}", field="currency")


class Payment(CrmAggregate):
    """Money received from a client, optionally against an invoice."""

    class PaymentReceived(CrmAggregate.Created):
        amount: Decimal
        currency: str
        reference: str | None
        invoice_id: UUID | None
        # The payer's bank reference is free text (it often carries the payer's name).
        # v2 (issue 15.4): the reference is sealed with the client's key; v1 rows hold it in
        # clear and read as they are (domain.base.sealed_since, docs/decisions.md).
        PERSONAL = ("reference",)
        class_version = 2
        upcast_v1_v2 = staticmethod(sealed_since)

        def apply(self, agg: Payment) -> None:
            agg.client_id = self.client_id

    @classmethod
    def receive(cls, *, id: UUID, client_id: UUID, meta: Meta, amount: Money,
                reference: str | None, invoice_id: UUID | None) -> Payment:
        return cls._start(cls.PaymentReceived, id=id, client_id=client_id, meta=meta,
                          amount=amount.amount, currency=amount.currency, reference=reference,
                          invoice_id=invoice_id)
