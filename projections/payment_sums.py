"""Payments summed as they arrive (issue 16.1): per specialist, currency, UTC hour and hour of
recording, so the payments report reads sums for the hours it shows, not every payment.

- `psum_hours`: amount (integer ten-thousandths) and count of the payments that occurred in an
  hour and were recorded in another (or the same) hour, for the specialist they were
  attributed to when folded. An hour is whole in every zone with whole-hour offsets; the report
  reads single payments only where a local day or its window cuts an hour, and for the hour
  its `as_of` falls in.
- `psum_payments`: each payment with that first attribution and the current one, for those
  edges and for a later reassignment.
- `psum_moves`: a reassignment folded after payments it re-attributes (a change dated before
  them, or entered late) moves each such payment from one specialist to another, known from
  the reassignment's record time; the report applies the moves known at `as_of`.
- `psum_assignments`: the client's specialist after each registration or reassignment.

Exact under `at` and `as_of` as long as record times follow the store's order (the store
writes one save at a time); tests/integration/test_payment_sums.py compares it with the
computation from the payment facts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    func,
    or_,
    select,
)

from domain.client import Client
from domain.money import Payment
from projections.base import UtcDateTime, metadata
from projections.facts import from_units, known, units
from projections.fold import FoldProjection, Need, Rows
from projections.payments import Assignments
from projections.report_time import day_start

NOBODY = UUID(int=0)  # key of the payments of clients with no specialist (a key cannot be NULL)
HOUR = timedelta(hours=1)

sum_hours = Table(
    "psum_hours", metadata,
    Column("hour", UtcDateTime, primary_key=True),
    Column("recorded_hour", UtcDateTime, primary_key=True),
    Column("specialist_id", Uuid, primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("amount_units", BigInteger, nullable=False),
    Column("payments", Integer, nullable=False),
)

sum_payments = Table(
    "psum_payments", metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False, index=True),
    Column("first_specialist_id", Uuid, nullable=False),
    Column("specialist_id", Uuid, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False, index=True),
    Column("recorded_at", UtcDateTime, nullable=False, index=True),
)

sum_moves = Table(
    "psum_moves", metadata,
    Column("payment_id", Uuid, primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("from_specialist_id", Uuid, nullable=False),
    Column("to_specialist_id", Uuid, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("amount_units", BigInteger, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("known_at", UtcDateTime, nullable=False),
    Index("ix_psum_moves_occurred", "occurred_at"),
)

sum_assignments = Table(
    "psum_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("specialist_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
)


def hour_of(instant: datetime) -> datetime:
    """The UTC hour `instant` falls in."""
    return instant.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


class PaymentSums(FoldProjection):
    """Payments per specialist, currency and hour, kept as they arrive."""

    name = "payment_sums"
    tables = (sum_hours, sum_payments, sum_moves, sum_assignments)
    keeps = (sum_hours, sum_payments, sum_assignments)
    shared = (sum_hours,)  # every client's payments add to them (docs/bus.md, "Partitions")

    def needs(self, event: Any) -> Iterator[Need]:
        if isinstance(event, Payment.PaymentReceived):
            if event.client_id is not None:
                yield Need(sum_assignments, "client_id", event.client_id)
            yield Need(sum_hours, "hour", hour_of(event.occurred_at))
        elif isinstance(event, (Client.ClientRegistered, Client.ClientReassigned)):
            yield Need(sum_assignments, "client_id", event.originator_id)
            yield Need(sum_payments, "client_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if isinstance(event, Payment.PaymentReceived):
            self._paid(rows, event)
        elif isinstance(event, (Client.ClientRegistered, Client.ClientReassigned)):
            self._assigned(rows, event, position)

    @staticmethod
    def _history(rows: Rows, client_id: UUID) -> Assignments:
        changes = sorted((r["occurred_at"], r["version"], r["specialist_id"])
                         for r in rows.where(sum_assignments, "client_id", client_id))
        return Assignments({client_id: changes})

    def _paid(self, rows: Rows, e: Payment.PaymentReceived) -> None:
        spec = NOBODY
        if e.client_id is not None:
            spec = self._history(rows, e.client_id).at(e.client_id, e.occurred_at) or NOBODY
        amount = units(e.amount)
        rows.put(sum_payments, {
            "payment_id": e.originator_id, "client_id": e.client_id,
            "first_specialist_id": spec, "specialist_id": spec, "currency": e.currency,
            "amount_units": amount, "occurred_at": e.occurred_at, "recorded_at": e.timestamp})
        key = (hour_of(e.occurred_at), hour_of(e.timestamp), spec, e.currency)
        found = rows.get(sum_hours, *key)
        rows.put(sum_hours, {
            "hour": key[0], "recorded_hour": key[1], "specialist_id": spec,
            "currency": e.currency,
            "amount_units": (found["amount_units"] if found else 0) + amount,
            "payments": (found["payments"] if found else 0) + 1})

    def _assigned(self, rows: Rows, e: Any, position: int) -> None:
        client_id = e.originator_id
        rows.put(sum_assignments, {"client_id": client_id, "version": e.originator_version,
                                   "specialist_id": e.specialist_id,
                                   "occurred_at": e.occurred_at})
        history = self._history(rows, client_id)
        for paid in rows.where(sum_payments, "client_id", client_id):
            now = history.at(client_id, paid["occurred_at"]) or NOBODY
            if now == paid["specialist_id"]:
                continue
            rows.put(sum_moves, {
                "payment_id": paid["payment_id"], "position": position,
                "from_specialist_id": paid["specialist_id"], "to_specialist_id": now,
                "currency": paid["currency"], "amount_units": paid["amount_units"],
                "occurred_at": paid["occurred_at"],
                "known_at": max(e.timestamp, paid["recorded_at"])})
            rows.update(sum_payments, paid["payment_id"], specialist_id=now)


def daily_sums(conn: Connection, *, since: datetime, moment: datetime,
               as_of: datetime | None, zone: ZoneInfo
               ) -> dict[tuple[UUID | None, str], dict[date, Decimal]]:
    """Payments that occurred in [since, moment] and were known at `as_of`, per (specialist,
    currency) and local day in `zone`, with the attribution a reassignment known at `as_of`
    gives. Sums for whole hours; single payments only at the edges (see the module
    docstring)."""
    step = timedelta(microseconds=1)
    first = hour_of(since)
    w0 = since if first == since else first + HOUR
    after = moment + step
    w1 = after if hour_of(after) == after else hour_of(moment)
    split: set[datetime] = set()  # hours a local midnight cuts (zones with odd offsets)
    day = since.astimezone(zone).date()
    while True:
        day += timedelta(days=1)
        midnight = day_start(day, zone)
        if midnight > moment:
            break
        if hour_of(midnight) != midnight:
            split.add(hour_of(midnight))
    cut = None if as_of is None else hour_of(as_of)
    out: dict[tuple[UUID | None, str], dict[date, Decimal]] = {}

    def add(spec: UUID, currency: str, when: datetime, amount: int) -> None:
        key = (None if spec == NOBODY else spec, currency)
        local = when.astimezone(zone).date()
        days = out.setdefault(key, {})
        days[local] = days.get(local, Decimal(0)) + from_units(amount)

    h = sum_hours.c
    if w0 < w1:
        query = (select(h.hour, h.specialist_id, h.currency,
                        func.sum(h.amount_units).label("units"))
                 .where(h.hour >= w0, h.hour < w1)
                 .group_by(h.hour, h.specialist_id, h.currency))
        if cut is not None:
            query = query.where(h.recorded_hour < cut)
        for row in conn.execute(query):
            if row.hour not in split:
                add(row.specialist_id, row.currency, row.hour, int(row.units))
    p = sum_payments.c
    edges = [p.occurred_at < w0, p.occurred_at >= w1,
             *[and_(p.occurred_at >= s, p.occurred_at < s + HOUR) for s in sorted(split)]]
    if cut is not None:
        edges.append(p.recorded_at >= cut)
    single = select(p.first_specialist_id, p.currency, p.amount_units, p.occurred_at).where(
        p.occurred_at >= since, p.occurred_at <= moment, known(p.recorded_at, as_of),
        or_(*edges))
    for one in conn.execute(single):
        add(one.first_specialist_id, one.currency, one.occurred_at, one.amount_units)
    m = sum_moves.c
    moves = select(m.from_specialist_id, m.to_specialist_id, m.currency, m.amount_units,
                   m.occurred_at).where(m.occurred_at >= since, m.occurred_at <= moment,
                                        known(m.known_at, as_of))
    for move in conn.execute(moves):
        add(move.from_specialist_id, move.currency, move.occurred_at, -move.amount_units)
        add(move.to_specialist_id, move.currency, move.occurred_at, move.amount_units)
    # a specialist whose payments all moved away has nothing left to show
    kept = {key: {d: v for d, v in days.items() if v} for key, days in out.items()}
    return {key: days for key, days in kept.items() if days}
