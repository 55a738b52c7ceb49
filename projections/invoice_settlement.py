"""When each invoice was paid in full, kept as payments arrive (issue 16.1 for the debts).

For an invoice, `settled_at` is the business instant its payments (in the order they occurred)
first reach its amount, and `settled_known_at` the latest record time of the payments that
occurred by then. An invoice with `settled_at <= at` and `settled_known_at <= as_of` is paid
in full at `at` as known at `as_of` (every payment that settles it is counted), so the reads of
outstanding invoices look only at the others (`open_candidates`): the invoices open now, and
those settled after the moment asked about or known to be settled only later. Their balances
are then computed exactly from the payment facts (projections.payments). Acts the same way:
those returned by `at` as known at `as_of` are not looked at (`acts_candidates`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, Select, Table, Uuid, select, union

from domain.money import Invoice, Payment
from projections.base import UtcDateTime, metadata
from projections.facts import units
from projections.fold import FoldProjection, Need, Rows

settle_invoices = Table(
    "settle_invoices", metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("amount_units", BigInteger, nullable=False),
    Column("settled_at", UtcDateTime, index=True),
    Column("settled_known_at", UtcDateTime, index=True),
)

# Each act sent: when it came back (NULL: not yet) and when that was recorded.
settle_acts = Table(
    "settle_acts", metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("returned_at", UtcDateTime, index=True),
    Column("returned_recorded_at", UtcDateTime, index=True),
)

settle_payments = Table(
    "settle_payments", metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("invoice_id", Uuid, nullable=False, index=True),
    Column("amount_units", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


class InvoiceSettlement(FoldProjection):
    """Each invoice's settlement instant and when it was known, from the payments naming it."""

    name = "invoice_settlement"
    tables = (settle_invoices, settle_payments, settle_acts)

    def needs(self, event: Any) -> Iterator[Need]:
        if isinstance(event, Invoice.InvoiceIssued):
            yield Need(settle_payments, "invoice_id", event.originator_id)
        elif isinstance(event, Payment.PaymentReceived) and event.invoice_id is not None:
            yield Need(settle_invoices, "invoice_id", event.invoice_id)
            yield Need(settle_payments, "invoice_id", event.invoice_id)
        elif isinstance(event, (Invoice.ActSent, Invoice.ActReturned)):
            yield Need(settle_acts, "invoice_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if isinstance(event, Invoice.InvoiceIssued):
            rows.put(settle_invoices, {"invoice_id": event.originator_id,
                                       "amount_units": units(event.amount),
                                       "settled_at": None, "settled_known_at": None})
            self._settle(rows, event.originator_id)
        elif isinstance(event, Payment.PaymentReceived) and event.invoice_id is not None:
            rows.put(settle_payments, {
                "payment_id": event.originator_id, "invoice_id": event.invoice_id,
                "amount_units": units(event.amount), "occurred_at": event.occurred_at,
                "recorded_at": event.timestamp})
            self._settle(rows, event.invoice_id)
        elif isinstance(event, Invoice.ActSent):
            rows.insert_missing(settle_acts, {"invoice_id": event.originator_id,
                                              "returned_at": None,
                                              "returned_recorded_at": None})
        elif isinstance(event, Invoice.ActReturned):
            rows.update(settle_acts, event.originator_id, returned_at=event.occurred_at,
                        returned_recorded_at=event.timestamp)

    @staticmethod
    def _settle(rows: Rows, invoice_id: Any) -> None:
        invoice = rows.get(settle_invoices, invoice_id)
        if invoice is None:  # a payment naming an invoice not issued (yet)
            return
        paid = sorted(rows.where(settle_payments, "invoice_id", invoice_id),
                      key=lambda p: (p["occurred_at"], str(p["payment_id"])))
        total, settled_at = 0, None
        for payment in paid:
            total += payment["amount_units"]
            if total >= invoice["amount_units"]:
                settled_at = payment["occurred_at"]
                break
        known = (None if settled_at is None else
                 max(p["recorded_at"] for p in paid if p["occurred_at"] <= settled_at))
        if (settled_at, known) != (invoice["settled_at"], invoice["settled_known_at"]):
            rows.update(settle_invoices, invoice_id, settled_at=settled_at,
                        settled_known_at=known)


def open_candidates(at: datetime, as_of: datetime | None) -> Select[Any]:
    """Ids of the invoices that may be outstanding at `at` as known at `as_of`: a union of
    three index ranges (open now; settled after `at`; settlement known after `as_of`)."""
    t = settle_invoices.c
    parts = [select(t.invoice_id).where(t.settled_at.is_(None)),
             select(t.invoice_id).where(t.settled_at > at)]
    if as_of is not None:
        parts.append(select(t.invoice_id).where(t.settled_known_at > as_of))
    return select(union(*parts).subquery().c.invoice_id)


def acts_candidates(at: datetime, as_of: datetime | None) -> Select[Any]:
    """Ids of the invoices whose act may be out at `at` as known at `as_of`: not returned
    now, returned after `at`, or its return recorded after `as_of`."""
    t = settle_acts.c
    parts = [select(t.invoice_id).where(t.returned_at.is_(None)),
             select(t.invoice_id).where(t.returned_at > at)]
    if as_of is not None:
        parts.append(select(t.invoice_id).where(t.returned_recorded_at > as_of))
    return select(union(*parts).subquery().c.invoice_id)
