"""The payments report, the head's morning view: plan against fact per specialist and in total.

For a month or a quarter (domain.periods) in the zone `tz`, per specialist and currency and in
total per currency: plan, fact, remaining to plan, share of plan; the same over the last two
months together; the change since the previous business day; the daily cumulative curve with
the 80%-by-the-20th marks; a straight-line forecast and one from expected payments; debtors
(cursor pages) and acts not returned. Definitions are in docs/service_reports.md.

A payment counts for the specialist assigned to its client when the payment occurred; debts,
expected payments and acts count for the specialist responsible at the report moment (`at`, or
the period's last instant when `at` is later). Client ids only: no personal data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from domain.business_calendar import BusinessCalendar
from domain.months import month_bounds
from domain.periods import Period, previous_month
from projections.facts import FAR_FUTURE, money, percent
from projections.invoice_settlement import acts_candidates, open_candidates
from projections.payment_sums import daily_sums
from projections.payments import (
    Assignments,
    acts_not_returned,
    assignments,
    latest_plans,
    outstanding_invoices,
    payments_known,
)
from projections.payments_debts import Debtor, debtor_page, promise_clients
from projections.report_time import day_end
from projections.situations import load_reference

_INSTANT = timedelta(microseconds=1)
_CHUNK = 500
_CENT = Decimal("0.01")
MARK_DAY = 20  # the 80%-by-the-20th rule
MARK_SHARE = Decimal("0.8")


@dataclass
class _Line:
    """One report line: a specialist (None: unassigned clients) in one currency."""

    specialist_id: UUID | None
    currency: str
    plans: dict[str, Decimal] = field(default_factory=dict)  # month -> plan
    per_day: dict[date, Decimal] = field(default_factory=dict)  # local day -> paid that day
    invoices_due: Decimal = Decimal(0)  # outstanding, due after `at` within the period
    promised: Decimal = Decimal(0)  # overdue balances of clients who promised to pay
    debts: Decimal = Decimal(0)
    debtors: int = 0
    acts: int = 0


@dataclass(frozen=True)
class _Frame:
    """The period and its moments: `moment` is `at` held inside the period."""

    period: Period
    at: datetime
    zone: ZoneInfo
    moment: datetime
    elapsed: int  # days of the period elapsed at `at`
    two_months: tuple[str, str]
    two_start: datetime
    previous_business_day: date | None

    def fact_until(self, line: _Line, last_day: date | None) -> Decimal:
        """Paid from the period's first day to the end of `last_day` (None: nothing)."""
        if last_day is None:
            return Decimal(0)
        first = self.period.first_day
        return sum((v for d, v in line.per_day.items() if first <= d <= last_day), Decimal(0))


def payments_report(conn: Connection, *, period: Period, at: datetime, as_of: datetime | None,
                    specialist_id: UUID | None = None, calendar: BusinessCalendar | None = None,
                    debtors_sort: str = "outstanding_desc", debtors_limit: int = 50,
                    debtors_after: tuple[Any, ...] | None = None,
                    acts_limit: int = 50, from_sums: bool = True) -> dict[str, Any]:
    """The report body (no HTTP here: the API and the console call this). The payments come
    from the sums kept by projections.payment_sums; `from_sums=False` computes them from the
    payment facts instead (the reference the tests compare the sums with)."""
    frame = _frame(period, at, calendar)
    lines: dict[tuple[UUID | None, str], _Line] = {}

    def line(spec: UUID | None, currency: str) -> _Line:
        return lines.setdefault((spec, currency), _Line(spec, currency))

    for month in dict.fromkeys([frame.two_months[0], *period.month_labels()]):
        for planned_for, plan in latest_plans(conn, month, as_of).items():
            line(planned_for, plan.currency).plans[month] = plan.amount
    since = min(period.start, frame.two_start)
    paid = (payments_known(conn, frame.moment, as_of, since=since)
            if at >= since and not from_sums else [])
    owed = outstanding_invoices(conn, at, as_of,
                                among=open_candidates(at, as_of) if from_sums else None)
    promised = promise_clients(conn, at=at, as_of=as_of, until=period.end)
    acts = acts_not_returned(conn, at, as_of,
                             among=acts_candidates(at, as_of) if from_sums else None)
    assigned = _assignments(conn, as_of, {p.client_id for p in paid} | {
        d["client_id"] for d in owed} | {a.client_id for a in acts})

    if from_sums and at >= since:
        for (spec, currency), days in daily_sums(conn, since=since, moment=frame.moment,
                                                 as_of=as_of, zone=frame.zone).items():
            ln = line(spec, currency)
            for day, amount in days.items():
                ln.per_day[day] = ln.per_day.get(day, Decimal(0)) + amount
    for pay in paid:
        day = pay.occurred_at.astimezone(frame.zone).date()
        ln = line(assigned.at(pay.client_id, pay.occurred_at), pay.currency)
        ln.per_day[day] = ln.per_day.get(day, Decimal(0)) + pay.amount
    debtors: dict[tuple[UUID, str], Debtor] = {}
    for debt in owed:
        spec = assigned.at(debt["client_id"], frame.moment)
        ln = line(spec, debt["currency"])
        due = debt["due_at"]
        if at < due < period.end and due >= period.start:
            ln.invoices_due += debt["outstanding_value"]
        if due <= at and debt["client_id"] in promised:
            ln.promised += debt["outstanding_value"]
        if due < period.start:
            ln.debts += debt["outstanding_value"]
            found = debtors.get((debt["client_id"], debt["currency"]))
            if found is None:
                found = debtors[(debt["client_id"], debt["currency"])] = Debtor(
                    debt["client_id"], spec, debt["currency"])
                ln.debtors += 1
            found.outstanding += debt["outstanding_value"]
            found.invoices.append({
                "invoice_id": debt["invoice_id"], "number": debt["number"],
                "due_at": due, "amount": debt["amount"], "outstanding": debt["outstanding"]})
    act_items = []
    for act in acts:
        spec = assigned.at(act.client_id, frame.moment)
        line(spec, act.currency).acts += 1
        if specialist_id is None or spec == specialist_id:
            act_items.append({"invoice_id": act.invoice_id, "client_id": act.client_id,
                              "specialist_id": spec, "number": act.number,
                              "act_sent_at": act.act_sent_at})

    chosen = [ln for ln in lines.values()
              if specialist_id is None or ln.specialist_id == specialist_id]
    chosen.sort(key=lambda ln: (ln.specialist_id is None, str(ln.specialist_id), ln.currency))
    totals: dict[str, _Line] = {}
    for ln in chosen:
        _add(totals.setdefault(ln.currency, _Line(None, ln.currency)), ln)
    return {
        "period": period.label, "kind": period.kind, "months": period.month_labels(),
        "first_day": period.first_day, "last_day": period.last_day, "tz": period.tz,
        "at": at, "as_of": as_of, "days_in_period": period.days, "day_of_period": frame.elapsed,
        "two_months": list(frame.two_months),
        "previous_business_day": frame.previous_business_day,
        "totals": [_render(frame, t, totals=True) for _c, t in sorted(totals.items())],
        "specialists": [_render(frame, ln) for ln in chosen],
        "debtors": debtor_page(
            (d for d in debtors.values()
             if specialist_id is None or d.specialist_id == specialist_id),
            sort=debtors_sort, limit=debtors_limit, after=debtors_after),
        "acts_not_returned": {"total": len(act_items), "items": act_items[:acts_limit]},
    }


def _frame(period: Period, at: datetime, calendar: BusinessCalendar | None) -> _Frame:
    zone = ZoneInfo(period.tz)
    moment = min(at, period.end - _INSTANT)
    if at < period.start:
        elapsed = 0
    elif at >= period.end:
        elapsed = period.days
    else:
        elapsed = (at.astimezone(zone).date() - period.first_day).days + 1
    # The last two months: the month the moment falls in (held inside the period) and the one
    # before it, so a quarter's view follows its current month.
    local = max(moment, period.start).astimezone(zone)
    before = previous_month(local.year, local.month)
    two = (f"{before[0]:04d}-{before[1]:02d}", f"{local.year:04d}-{local.month:02d}")
    two_start = month_bounds(*before, period.tz)[0]
    cal = calendar or BusinessCalendar.default(period.tz)
    day = at.astimezone(zone).date() - timedelta(days=1)
    previous = None
    for _ in range(62):  # a calendar with no working day in two months has none to show
        if day not in cal.holidays and cal.hours.for_weekday(day.weekday()):
            previous = day
            break
        day -= timedelta(days=1)
    return _Frame(period, at, zone, moment, elapsed, two, two_start, previous)


def _add(total: _Line, ln: _Line) -> None:
    for month, amount in ln.plans.items():
        total.plans[month] = total.plans.get(month, Decimal(0)) + amount
    for day, amount in ln.per_day.items():
        total.per_day[day] = total.per_day.get(day, Decimal(0)) + amount
    total.invoices_due += ln.invoices_due
    total.promised += ln.promised
    total.debts += ln.debts
    total.debtors += ln.debtors
    total.acts += ln.acts


def _assignments(conn: Connection, as_of: datetime | None,
                 client_ids: Iterable[UUID]) -> Assignments:
    """Assignment histories of `client_ids`, read in chunks (bounded IN lists)."""
    ids = sorted(client_ids)
    found: dict[UUID, list[tuple[datetime, int, UUID | None]]] = {}
    for start in range(0, len(ids), _CHUNK):
        found.update(assignments(conn, as_of, ids[start:start + _CHUNK]).by_client)
    return Assignments(found)


def _plan(ln: _Line, months: Iterable[str]) -> Decimal | None:
    amounts = [ln.plans[m] for m in months if m in ln.plans]
    return sum(amounts, Decimal(0)) if amounts else None


def _figures(fact: Decimal, plan: Decimal | None) -> dict[str, Any]:
    return {"plan": None if plan is None else money(plan), "fact": money(fact),
            "remaining": None if plan is None else money(max(plan - fact, Decimal(0))),
            "percent_of_plan": _of_plan(fact, plan)}


def _render(frame: _Frame, ln: _Line, *, totals: bool = False) -> dict[str, Any]:
    period = frame.period
    months = period.month_labels()
    plan = _plan(ln, months)
    today = period.first_day + timedelta(days=frame.elapsed - 1) if frame.elapsed else None
    fact = frame.fact_until(ln, today)
    daily = []
    running = Decimal(0)
    for offset in range(frame.elapsed):
        day = period.first_day + timedelta(days=offset)
        that_day = ln.per_day.get(day, Decimal(0))
        running += that_day
        daily.append({"date": day, "paid": money(that_day), "collected": money(running),
                      "percent_of_plan": _of_plan(running, plan)})
    two_plan = _plan(ln, frame.two_months)
    year, month = int(frame.two_months[0][:4]), int(frame.two_months[0][5:])
    # per_day holds only payments up to the moment, from the earlier of the two starts
    two_fact = sum((v for d, v in ln.per_day.items() if d >= date(year, month, 1)), Decimal(0))
    previous = frame.previous_business_day
    then_day = None if previous is None or previous < period.first_day else min(
        previous, period.last_day)
    then = frame.fact_until(ln, then_day)
    straight = (None if not frame.elapsed else
                (fact * period.days / frame.elapsed).quantize(_CENT, ROUND_HALF_EVEN))
    expected = fact + ln.invoices_due + ln.promised if frame.at < period.end else fact
    out: dict[str, Any] = {} if totals else {"specialist_id": ln.specialist_id}
    out.update({
        "currency": ln.currency,
        **_figures(fact, plan),
        "plan_months": [m for m in months if m in ln.plans],
        "last_two_months": {"months": list(frame.two_months), **_figures(two_fact, two_plan)},
        "change": {
            "since": previous, "fact_then": money(then),
            "percent_of_plan_then": _of_plan(then, plan),
            "fact_change": money(fact - then),
            "percent_points": _of_plan(fact - then, plan),
        },
        "daily": daily,
        "marks": _marks(frame, ln, months, plan),
        "forecast": {
            "straight_line": None if straight is None else money(straight),
            "straight_line_percent_of_plan": None if straight is None else _of_plan(
                straight, plan),
            "expected": money(expected),
            "expected_percent_of_plan": _of_plan(expected, plan),
            "invoices_due": money(ln.invoices_due if frame.at < period.end else Decimal(0)),
            "promised": money(ln.promised if frame.at < period.end else Decimal(0)),
        },
        "debtors": {"count": ln.debtors, "outstanding": money(ln.debts)},
        "acts_not_returned": ln.acts,
    })
    return out


def _marks(frame: _Frame, ln: _Line, months: list[str],
           plan: Decimal | None) -> list[dict[str, Any]]:
    """Per month of the period: by the end of its 20th, the months before it in full and 80%
    of its own plan (cumulative, like the curve). `collected` is the curve at the 20th (or at
    the last elapsed day before it); `reached` is true once the target is met, false once the
    20th has ended below it, null before."""
    marks = []
    before = Decimal(0)
    last = (frame.period.first_day + timedelta(days=frame.elapsed - 1)
            if frame.elapsed else None)
    for month in months:
        first = date(int(month[:4]), int(month[5:]), 1)
        day = first.replace(day=MARK_DAY)
        own = ln.plans.get(month)
        target = None if own is None else before + own * MARK_SHARE
        collected = (None if last is None or last < first
                     else frame.fact_until(ln, min(day, last)))
        passed = frame.at >= day_end(day, frame.zone)
        reached = (None if target is None or collected is None
                   else True if collected >= target else False if passed else None)
        marks.append({
            "date": day, "target": None if target is None else money(target),
            "target_percent_of_plan": None if target is None else _of_plan(target, plan),
            "collected": None if collected is None else money(collected),
            "reached": reached,
        })
        before += own or Decimal(0)
    return marks


def _of_plan(amount: Decimal, plan: Decimal | None) -> str | None:
    return None if plan is None else percent(amount, plan)


def report_calendar(conn: Connection, name: str | None, as_of: datetime | None,
                    tz: str) -> BusinessCalendar:
    """The calendar whose working days are business days: the one named, else the one named
    `default` (SLA targets' default), else the only one defined, else Monday to Friday in `tz`
    (calendars as known at `as_of`). LookupError if a named calendar is unknown."""
    cut = as_of or FAR_FUTURE
    reference = load_reference(conn, cut)
    named = {versions[-1].name: calendar_id
             for calendar_id, versions in reference.calendars.items()}
    if name is not None:
        if name not in named:
            raise LookupError(name)
        chosen = named[name]
    elif "default" in named:
        chosen = named["default"]
    elif len(named) == 1:
        [chosen] = named.values()
    else:
        return BusinessCalendar.default(tz)
    version = reference.calendar(chosen, cut)
    assert version is not None  # known at the cut-off: it has a version recorded by then
    return reference.parsed(version)
