"""The payments report: per specialist and month, plan against collected, daily, forecast, debts.

A payment counts for the specialist assigned to its client when the payment occurred; debts
and acts not returned count for the specialist responsible at the report moment (`at`, or the
month's last instant when `at` is later). Months are calendar months in the zone `tz`. Client
ids only: the report carries no personal data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from domain.months import days_in_month, forecast_month_end, month_bounds
from projections.facts import money, percent
from projections.payments import (
    Assignments,
    acts_not_returned,
    assignments,
    latest_plans,
    outstanding_invoices,
    payments_known,
)

_INSTANT = timedelta(microseconds=1)
_CHUNK = 500


@dataclass
class _Line:
    """One report line: a specialist (None: unassigned clients) in one currency."""

    specialist_id: UUID | None
    currency: str
    days: int
    plan: Decimal | None = None
    per_day: list[Decimal] = field(default_factory=list)
    debts: dict[UUID, list[dict[str, Any]]] = field(default_factory=dict)
    acts: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.per_day = [Decimal(0)] * self.days


def payments_report(conn: Connection, *, month: str, tz: str, at: datetime,
                    as_of: datetime | None, specialist_id: UUID | None = None) -> dict[str, Any]:
    year, number = int(month[:4]), int(month[5:7])
    start, end = month_bounds(year, number, tz)
    zone = ZoneInfo(tz)
    days = days_in_month(year, number)
    # Days of the month elapsed at `at`: none before the month, all of them after it.
    elapsed = 0 if at < start else days if at >= end else at.astimezone(zone).day
    moment = min(at, end - _INSTANT)
    paid = payments_known(conn, moment, as_of, since=start) if at >= start else []
    debts = outstanding_invoices(conn, at, as_of, due_before=start)
    acts = acts_not_returned(conn, at, as_of)
    # The assignment history of the clients named in the report only (not of every client).
    assigned = _assignments(conn, as_of, {p.client_id for p in paid} | {
        d["client_id"] for d in debts} | {a.client_id for a in acts})
    lines: dict[tuple[UUID | None, str], _Line] = {}

    def line(spec: UUID | None, currency: str) -> _Line:
        return lines.setdefault((spec, currency), _Line(spec, currency, days))

    for planned_for, plan in latest_plans(conn, month, as_of).items():
        line(planned_for, plan.currency).plan = plan.amount
    for pay in paid:
        spec = assigned.at(pay.client_id, pay.occurred_at)
        day = pay.occurred_at.astimezone(zone).day
        line(spec, pay.currency).per_day[day - 1] += pay.amount
    for debt in debts:
        spec = assigned.at(debt["client_id"], moment)
        line(spec, debt["currency"]).debts.setdefault(debt["client_id"], []).append(debt)
    for act in acts:
        spec = assigned.at(act.client_id, moment)
        line(spec, act.currency).acts.append({
            "invoice_id": act.invoice_id, "client_id": act.client_id, "number": act.number,
            "act_sent_at": act.act_sent_at})

    chosen = [ln for ln in lines.values()
              if specialist_id is None or ln.specialist_id == specialist_id]
    chosen.sort(key=lambda ln: (ln.specialist_id is None, str(ln.specialist_id), ln.currency))
    return {
        "month": month, "tz": tz, "at": at, "as_of": as_of, "days_in_month": days,
        "day_of_month": elapsed,
        "specialists": [_render(ln, year, number, elapsed) for ln in chosen],
    }


def _assignments(conn: Connection, as_of: datetime | None, client_ids: set[UUID]) -> Assignments:
    """Assignment histories of `client_ids`, read in chunks (bounded IN lists)."""
    ids = sorted(client_ids)
    found: dict[UUID, list[tuple[datetime, int, UUID | None]]] = {}
    for start in range(0, len(ids), _CHUNK):
        found.update(assignments(conn, as_of, ids[start:start + _CHUNK]).by_client)
    return Assignments(found)


def _render(ln: _Line, year: int, month: int, elapsed: int) -> dict[str, Any]:
    collected = sum(ln.per_day[:elapsed], Decimal(0))
    daily = []
    running = Decimal(0)
    for day in range(1, elapsed + 1):
        running += ln.per_day[day - 1]
        daily.append({"day": day, "date": date(year, month, day).isoformat(),
                      "collected": money(running),
                      "percent_of_plan": _of_plan(running, ln.plan)})
    forecast = (forecast_month_end(collected, elapsed, ln.days) if elapsed else None)
    debtors: list[dict[str, Any]] = []
    for client_id, debts in sorted(ln.debts.items(), key=lambda kv: str(kv[0])):
        owed = sum((d["outstanding_value"] for d in debts), Decimal(0))
        debtors.append({"client_id": client_id, "outstanding": money(owed), "invoices": [
            {"invoice_id": d["invoice_id"], "number": d["number"], "due_at": d["due_at"],
             "amount": d["amount"], "outstanding": d["outstanding"]} for d in debts]})
    return {
        "specialist_id": ln.specialist_id,
        "currency": ln.currency,
        "plan": None if ln.plan is None else money(ln.plan),
        "collected": money(collected),
        "percent_of_plan": _of_plan(collected, ln.plan),
        "daily": daily,
        "forecast_month_end": None if forecast is None else money(forecast),
        "forecast_percent_of_plan": None if forecast is None else _of_plan(forecast, ln.plan),
        "debtors": debtors,
        "debtors_outstanding": money(sum((Decimal(d["outstanding"]) for d in debtors),
                                         Decimal(0))),
        "acts_not_returned": ln.acts,
    }


def _of_plan(amount: Decimal, plan: Decimal | None) -> str | None:
    return None if plan is None else percent(amount, plan)
