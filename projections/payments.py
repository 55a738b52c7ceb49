"""Money facts: invoices and their acts, payments, plans, and each client's specialist over time.

Every row is a fact carrying its business time and its recorded time (and the recorded time of
each later change), so `at` and `as_of` are WHERE clauses and sums are made at query time.
Amounts are kept twice: Numeric(18, 4) for reading, and as integer ten-thousandths
(`amount_units`) so SQL sums are exact on SQLite too (its SUM over NUMERIC is a float).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    Uuid,
    and_,
    bindparam,
    func,
    select,
)

from domain.client import Client
from domain.money import Invoice, Payment
from domain.reference import Specialist
from projections.base import UtcDateTime, metadata
from projections.facts import (
    client_params,
    from_units,
    happened,
    known,
    money,
    percent,
    units,
)
from projections.fold import FoldProjection, Need, Rows
from projections.personal import kept_or_legacy

Money = Numeric(18, 4)

# The client's specialist after each ClientRegistered / ClientReassigned (stream version).
client_assignments = Table(
    "pay_client_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("specialist_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

invoices = Table(
    "pay_invoices", metadata,
    Column("invoice_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("number", String(60), nullable=False),
    Column("amount", Money, nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("issued_at", UtcDateTime, nullable=False),
    Column("due_at", UtcDateTime, nullable=False, index=True),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("act_sent_at", UtcDateTime),
    Column("act_sent_recorded_at", UtcDateTime),
    Column("act_returned_at", UtcDateTime),
    Column("act_returned_recorded_at", UtcDateTime),
)

payments = Table(
    "pay_payments", metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("invoice_id", Uuid, index=True),
    Column("amount", Money, nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("reference", JSON),  # sealed; clear if stored before v2 (legacy)
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Index("ix_pay_payments_occurred", "occurred_at"),
)

# Every PaymentPlanSet is kept: the plan of a month is the latest one known as of `as_of`.
payment_plans = Table(
    "pay_plans", metadata,
    Column("specialist_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("month", String(7), nullable=False, index=True),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


class Payments(FoldProjection):
    """Invoices, acts, payments, plans and assignment history as facts with both times."""

    name = "payments"
    tables = (client_assignments, invoices, payments, payment_plans)
    keeps = (invoices,)  # read back by later events (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        # Only the acts change a row they do not write whole; every other event writes a row
        # keyed by its own identity.
        if type(event).__name__ in ("ActSent", "ActReturned"):
            yield Need(invoices, "invoice_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        handler = getattr(self, "_" + type(event).__name__, None)
        if handler is not None:
            handler(rows, event)

    def _assigned(self, rows: Rows, e: Any) -> None:
        rows.put(client_assignments, {
            "client_id": e.originator_id, "version": e.originator_version,
            "specialist_id": e.specialist_id, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp})

    def _ClientRegistered(self, rows: Rows, e: Client.ClientRegistered) -> None:
        self._assigned(rows, e)

    def _ClientReassigned(self, rows: Rows, e: Client.ClientReassigned) -> None:
        self._assigned(rows, e)

    def _InvoiceIssued(self, rows: Rows, e: Invoice.InvoiceIssued) -> None:
        # The invoice's first event: no row of it exists yet, so its acts start empty.
        rows.put(invoices, {
            "invoice_id": e.originator_id, "client_id": e.client_id, "number": e.number,
            "amount": e.amount, "amount_units": units(e.amount), "currency": e.currency,
            "issued_at": e.occurred_at, "due_at": e.due_at, "recorded_at": e.timestamp,
            "act_sent_at": None, "act_sent_recorded_at": None, "act_returned_at": None,
            "act_returned_recorded_at": None})

    def _ActSent(self, rows: Rows, e: Invoice.ActSent) -> None:
        rows.update(invoices, e.originator_id, act_sent_at=e.occurred_at,
                    act_sent_recorded_at=e.timestamp)

    def _ActReturned(self, rows: Rows, e: Invoice.ActReturned) -> None:
        rows.update(invoices, e.originator_id, act_returned_at=e.occurred_at,
                    act_returned_recorded_at=e.timestamp)

    def _PaymentReceived(self, rows: Rows, e: Payment.PaymentReceived) -> None:
        rows.put(payments, {
            "payment_id": e.originator_id, "client_id": e.client_id,
            "invoice_id": e.invoice_id, "amount": e.amount, "amount_units": units(e.amount),
            "currency": e.currency, "reference": kept_or_legacy(e, "reference"),
            "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp})

    def _PaymentPlanSet(self, rows: Rows, e: Specialist.PaymentPlanSet) -> None:
        rows.put(payment_plans, {
            "specialist_id": e.originator_id, "version": e.originator_version,
            "month": e.month, "amount": e.amount, "currency": e.currency,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp})


# -- assignment history ------------------------------------------------------------------------

@dataclass(frozen=True)
class Assignments:
    """Each client's (occurred_at, version, specialist) changes, in business-time order."""

    by_client: dict[UUID, list[tuple[datetime, int, UUID | None]]]

    def at(self, client_id: UUID, instant: datetime) -> UUID | None:
        """The specialist assigned at `instant`: the latest change that occurred by then (a
        payment dated before the registration counts for the registration's specialist)."""
        changes = self.by_client.get(client_id)
        if not changes:
            return None
        current = changes[0][2]
        for occurred_at, _version, specialist in changes:
            if occurred_at > instant:
                break
            current = specialist
        return current


def assignments(conn: Connection, as_of: datetime | None,
                client_ids: Iterable[UUID] | None = None) -> Assignments:
    t = client_assignments
    ids = None if client_ids is None else list(client_ids)
    if ids is not None and len(ids) == 1:  # the card's case: a statement built once
        rows = conn.execute(_ONE_CLIENT_ASSIGNMENTS, client_params(ids[0], None, as_of))
    else:
        query = select(t).where(known(t.c.recorded_at, as_of))
        if ids is not None:
            query = query.where(t.c.client_id.in_(ids))
        rows = conn.execute(query)
    found: dict[UUID, list[tuple[datetime, int, UUID | None]]] = defaultdict(list)
    for row in rows:
        found[row.client_id].append((row.occurred_at, row.version, row.specialist_id))
    for changes in found.values():
        changes.sort(key=lambda c: (c[0], c[1]))
    return Assignments(dict(found))


# -- invoices, balances, regularity --------------------------------------------------------------

def payments_known(conn: Connection, at: datetime, as_of: datetime | None, *,
                   client_id: UUID | None = None, since: datetime | None = None,
                   invoice_ids: Iterable[UUID] | None = None) -> list[Any]:
    """Payments that occurred by `at` (and since `since`) and were known by `as_of`."""
    t = payments
    query = select(t).where(t.c.occurred_at <= at, known(t.c.recorded_at, as_of))
    if client_id is not None:
        query = query.where(t.c.client_id == client_id)
    if since is not None:
        query = query.where(t.c.occurred_at >= since)
    if invoice_ids is not None:
        query = query.where(t.c.invoice_id.in_(list(invoice_ids)))
    return list(conn.execute(query.order_by(t.c.occurred_at, t.c.payment_id)))


def outstanding_invoices(conn: Connection, at: datetime, as_of: datetime | None, *,
                         client_id: UUID | None = None,
                         due_before: datetime | None = None,
                         among: Any = None) -> list[dict[str, Any]]:
    """Invoices not fully paid by `at`: amount minus the payments referencing them (one
    grouped query, exact in integer units). `among`: a select of the invoice ids to look at
    (projections.invoice_settlement.open_candidates), instead of every invoice."""
    i, p = invoices, payments
    paid = func.coalesce(func.sum(p.c.amount_units), 0)
    counted = and_(p.c.invoice_id == i.c.invoice_id, p.c.occurred_at <= at,
                   known(p.c.recorded_at, as_of))
    shown = (i.c.invoice_id, i.c.client_id, i.c.number, i.c.currency, i.c.amount,
             i.c.amount_units, i.c.due_at)
    query = (select(*shown, paid.label("paid")).select_from(i.outerjoin(p, counted))
             .where(i.c.issued_at <= at, known(i.c.recorded_at, as_of))
             .group_by(*shown).having(i.c.amount_units > paid))
    if client_id is not None:
        query = query.where(i.c.client_id == client_id)
    if due_before is not None:
        query = query.where(i.c.due_at < due_before)
    if among is not None:
        query = query.where(i.c.invoice_id.in_(among))
    out = []
    for row in conn.execute(query.order_by(i.c.due_at, i.c.invoice_id)):
        balance = from_units(row.amount_units - int(row.paid))
        out.append({"invoice_id": row.invoice_id, "client_id": row.client_id,
                    "number": row.number, "currency": row.currency,
                    "amount": money(row.amount), "outstanding": money(balance),
                    "outstanding_value": balance, "due_at": row.due_at,
                    "overdue": row.due_at < at})
    return out


def payment_regularity(conn: Connection, client_id: UUID, at: datetime,
                       as_of: datetime | None) -> dict[str, Any]:
    """Invoices due by `at`; on time when payments referencing the invoice, occurred on or
    before its due date, sum to at least its amount."""
    rows = conn.execute(_REGULARITY, client_params(client_id, at, as_of)).all()
    on_time = sum(1 for r in rows if int(r.paid) >= r.amount_units)
    return {"on_time": on_time, "due": len(rows), "percent": percent(on_time, len(rows))}


# The card's per-client statements are built once and bound (building them per call cost
# more than running them); parameters from facts.client_params.


_ONE_CLIENT_ASSIGNMENTS = select(client_assignments).where(
    client_assignments.c.client_id == bindparam("b_client"),
    client_assignments.c.recorded_at <= bindparam("b_as_of"))
_i, _pay = invoices, payments
_REGULARITY = (
    select(_i.c.invoice_id, _i.c.amount_units,
           func.coalesce(func.sum(_pay.c.amount_units), 0).label("paid"))
    .select_from(_i.outerjoin(_pay, and_(
        _pay.c.invoice_id == _i.c.invoice_id, _pay.c.occurred_at <= _i.c.due_at,
        _pay.c.recorded_at <= bindparam("b_as_of"))))
    .where(_i.c.client_id == bindparam("b_client"), _i.c.due_at <= bindparam("b_at"),
           _i.c.recorded_at <= bindparam("b_as_of"))
    .group_by(_i.c.invoice_id, _i.c.amount_units))


def acts_not_returned(conn: Connection, at: datetime, as_of: datetime | None, *,
                      client_id: UUID | None = None, among: Any = None) -> list[Any]:
    """Invoices whose act was sent by `at` and not returned by `at` (as known by `as_of`).
    `among`: a select of the invoice ids to look at (projections.invoice_settlement)."""
    t = invoices
    sent = happened(t.c.act_sent_at, t.c.act_sent_recorded_at, at, as_of)
    returned = happened(t.c.act_returned_at, t.c.act_returned_recorded_at, at, as_of)
    query = select(t).where(known(t.c.recorded_at, as_of), sent, ~returned)
    if client_id is not None:
        query = query.where(t.c.client_id == client_id)
    if among is not None:
        query = query.where(t.c.invoice_id.in_(among))
    return list(conn.execute(query.order_by(t.c.act_sent_at, t.c.invoice_id)))


def latest_plans(conn: Connection, month: str, as_of: datetime | None) -> dict[UUID, Any]:
    """The plan of each specialist for `month`: the latest set recorded by `as_of`."""
    t = payment_plans
    rows = conn.execute(select(t).where(t.c.month == month, known(t.c.recorded_at, as_of)))
    best: dict[UUID, Any] = {}
    for row in rows:
        current = best.get(row.specialist_id)
        if current is None or (row.recorded_at, row.version) > (current.recorded_at,
                                                                 current.version):
            best[row.specialist_id] = row
    return best
