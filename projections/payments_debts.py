"""Debts for the payments report: debtors as cursor pages, promises to pay, acts not returned.

A debtor is a client with invoices due before the period's first day and not fully paid at
`at`; each is attributed to the specialist responsible at the report moment. Pages are sorted
by the caller's choice with the client id as tie-breaker; a cursor is the last item's sort
value and id, so a page is the same whatever the page size before it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, select

from projections.activity import agreements, contacts
from projections.facts import happened, known, money

DEBTOR_SORTS = ("outstanding_desc", "outstanding_asc", "oldest_due", "client")


@dataclass
class Debtor:
    client_id: UUID
    specialist_id: UUID | None
    currency: str
    outstanding: Decimal = Decimal(0)
    invoices: list[dict[str, Any]] = field(default_factory=list)

    @property
    def oldest_due(self) -> datetime:
        due: datetime = min(i["due_at"] for i in self.invoices)
        return due


def _sort_key(sort: str) -> Callable[[Debtor], tuple[Any, ...]]:
    if sort == "outstanding_desc":
        return lambda d: (-d.outstanding, d.currency, str(d.client_id))
    if sort == "outstanding_asc":
        return lambda d: (d.outstanding, d.currency, str(d.client_id))
    if sort == "oldest_due":
        return lambda d: (d.oldest_due, d.currency, str(d.client_id))
    return lambda d: (str(d.client_id), d.currency)


def _encode(sort: str, key: tuple[Any, ...]) -> str:
    plain = [str(v) if isinstance(v, Decimal) else v.isoformat()
             if isinstance(v, datetime) else v for v in key]
    raw = json.dumps([sort, plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: str) -> tuple[Any, ...]:
    """The sort key a cursor carries; ValueError if it was not given out for this sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        given, plain = json.loads(raw)
        if given != sort or not isinstance(plain, list):
            raise ValueError("sort")
        if sort in ("outstanding_desc", "outstanding_asc"):
            return (Decimal(plain[0]), str(plain[1]), str(plain[2]))
        if sort == "oldest_due":
            return (datetime.fromisoformat(plain[0]), str(plain[1]), str(plain[2]))
        return (str(plain[0]), str(plain[1]))
    except (ValueError, TypeError, IndexError, ArithmeticError) as exc:
        raise ValueError("not a cursor this list gave out for this sort") from exc


def debtor_page(debtors: Iterable[Debtor], *, sort: str, limit: int,
                after: tuple[Any, ...] | None) -> dict[str, Any]:
    """The exact total, the amounts owed per currency, and one page of debtors."""
    key = _sort_key(sort)
    every = sorted(debtors, key=key)
    owed: dict[str, Decimal] = {}
    for debtor in every:
        owed[debtor.currency] = owed.get(debtor.currency, Decimal(0)) + debtor.outstanding
    start = 0
    if after is not None:
        start = next((i for i, d in enumerate(every) if key(d) > after), len(every))
    page = every[start:start + limit]
    more = start + limit < len(every)
    return {
        "sort": sort,
        "total": len(every),
        "outstanding": [{"currency": c, "amount": money(a)} for c, a in sorted(owed.items())],
        "items": [{"client_id": d.client_id, "specialist_id": d.specialist_id,
                   "currency": d.currency, "outstanding": money(d.outstanding),
                   "oldest_due_at": d.oldest_due, "invoices": d.invoices} for d in page],
        "next_cursor": _encode(sort, key(page[-1])) if more and page else None,
    }


def promise_clients(conn: Connection, *, at: datetime, as_of: datetime | None,
                    until: datetime) -> set[UUID]:
    """Clients with a promise to pay open at `at` and dated after it, before `until`: an
    agreement made in a `payment_delay` contact, neither kept nor broken by `at`."""
    a, c = agreements, contacts
    settled = happened(a.c.outcome_at, a.c.outcome_recorded_at, at, as_of)
    query = (select(a.c.client_id).select_from(a.join(c, c.c.contact_id == a.c.contact_id))
             .where(c.c.purpose == "payment_delay", a.c.made_at <= at,
                    known(a.c.recorded_at, as_of), a.c.due_at > at, a.c.due_at < until,
                    ~settled)
             .distinct())
    return {row.client_id for row in conn.execute(query)}
