"""Promise keeping (issue 18.4): agreements kept, broken and open, and the kept rate.

One row per agreement with the business and record time of its making and of its outcome, and
the client's assignment history (specialist after each registration or reassignment), so every
figure is a function of (`at`, `as_of`) read at query time:

- an agreement counts once it was made by `at` and recorded by `as_of`;
- it is *kept* (fulfilled) or *broken* when that outcome occurred by `at` and was recorded by
  `as_of`; otherwise it is *open*, and *overdue* when open and due before `at`;
- *kept on time*: kept no later than its due instant (the rest of the kept are *kept late*);
- the *kept rate* is kept / (kept + broken) in percent with two decimals (open agreements are
  not decided yet, so they count neither way); None when nothing is decided;
- per specialist: the client's specialist when the agreement was made (business time), as the
  assignment history was known at `as_of` (like payments, §5);
- per period: the calendar month (zone `tz`) of the agreement's due date.

Client ids and counts only, no text: the controls block is readable by analysts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Index, Integer, String, Table, Uuid, select

from domain.agreement import Agreement
from domain.client import Client
from domain.months import add_months, month_bounds, month_of
from projections.base import UtcDateTime, metadata
from projections.facts import known, percent
from projections.fold import FoldProjection, Need, Rows
from projections.payments import Assignments

promise_agreements = Table(
    "promise_agreements", metadata,
    Column("agreement_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("due_at", UtcDateTime, nullable=False, index=True),
    Column("made_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("outcome", String(10)),  # kept | broken
    Column("outcome_at", UtcDateTime),
    Column("outcome_recorded_at", UtcDateTime),
    Index("ix_promise_agreements_client", "client_id", "due_at"),
)

# The client's specialist after each ClientRegistered / ClientReassigned (stream version).
promise_assignments = Table(
    "promise_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("specialist_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)


class Promises(FoldProjection):
    """Agreements with their outcome, and who the client's specialist was when."""

    name = "promises"
    tables = (promise_agreements, promise_assignments)
    keeps = (promise_agreements,)  # outcomes update the agreement's row (projections.fold)

    def needs(self, event: Any) -> Iterator[Need]:
        if type(event).__name__ in ("AgreementFulfilled", "AgreementBroken"):
            yield Need(promise_agreements, "agreement_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        kind = type(event).__name__
        if kind in ("ClientRegistered", "ClientReassigned"):
            self._assigned(rows, event)
        elif kind == "AgreementMade":
            self._made(rows, event)
        elif kind == "AgreementFulfilled":
            self._outcome(rows, event, "kept")
        elif kind == "AgreementBroken":
            self._outcome(rows, event, "broken")

    def _assigned(self, rows: Rows, e: Client.ClientRegistered | Client.ClientReassigned) -> None:
        rows.put(promise_assignments, {
            "client_id": e.originator_id, "version": e.originator_version,
            "specialist_id": e.specialist_id, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp})

    def _made(self, rows: Rows, e: Agreement.AgreementMade) -> None:
        # The agreement's first event: no row of it exists yet.
        rows.put(promise_agreements, {
            "agreement_id": e.originator_id, "client_id": e.client_id, "due_at": e.due_at,
            "made_at": e.occurred_at, "recorded_at": e.timestamp, "outcome": None,
            "outcome_at": None, "outcome_recorded_at": None})

    def _outcome(self, rows: Rows, e: Any, outcome: str) -> None:
        rows.update(promise_agreements, e.originator_id, outcome=outcome,
                    outcome_at=e.occurred_at, outcome_recorded_at=e.timestamp)


# -- the rules, on plain rows ------------------------------------------------------------------

@dataclass
class Tally:
    """Agreements counted at (`at`, `as_of`)."""

    kept_on_time: int = 0
    kept_late: int = 0
    broken: int = 0
    open: int = 0
    overdue: int = 0  # of the open ones

    def add(self, row: Any, at: datetime, as_of: datetime | None) -> None:
        state = promise_state(row, at, as_of)
        if state == "kept":
            if row.outcome_at <= row.due_at:
                self.kept_on_time += 1
            else:
                self.kept_late += 1
        elif state == "broken":
            self.broken += 1
        else:
            self.open += 1
            if row.due_at < at:
                self.overdue += 1

    @property
    def kept(self) -> int:
        return self.kept_on_time + self.kept_late

    def as_dict(self) -> dict[str, Any]:
        return {"agreements": self.kept + self.broken + self.open, "kept": self.kept,
                "kept_on_time": self.kept_on_time, "kept_late": self.kept_late,
                "broken": self.broken, "open": self.open, "overdue": self.overdue,
                "kept_rate": percent(self.kept, self.kept + self.broken)}


def promise_state(row: Any, at: datetime, as_of: datetime | None) -> str:
    """kept | broken | open: the outcome counts once it occurred by `at` and was recorded by
    `as_of`."""
    if row.outcome is None or row.outcome_at > at or (
            as_of is not None and row.outcome_recorded_at > as_of):
        return "open"
    return str(row.outcome)


def tally(rows: Iterable[Any], at: datetime, as_of: datetime | None) -> Tally:
    found = Tally()
    for row in rows:
        found.add(row, at, as_of)
    return found


# -- queries -----------------------------------------------------------------------------------

def _made_by(at: datetime, as_of: datetime | None) -> Any:
    t = promise_agreements
    return (t.c.made_at <= at) & known(t.c.recorded_at, as_of)


def client_promises(conn: Connection, client_id: UUID, *, at: datetime,
                    as_of: datetime | None) -> dict[str, Any]:
    """The card's block: every agreement made with the client by `at`, known at `as_of`."""
    t = promise_agreements
    rows = conn.execute(select(t).where(t.c.client_id == client_id, _made_by(at, as_of)))
    return tally(rows, at, as_of).as_dict()


def assignment_history(conn: Connection, as_of: datetime | None,
                 client_ids: Iterable[UUID]) -> Assignments:
    t = promise_assignments
    ids = sorted(set(client_ids))
    found: dict[UUID, list[tuple[datetime, int, UUID | None]]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        query = select(t).where(t.c.client_id.in_(ids[start:start + 500]),
                                known(t.c.recorded_at, as_of))
        for row in conn.execute(query):
            found[row.client_id].append((row.occurred_at, row.version, row.specialist_id))
    for changes in found.values():
        changes.sort(key=lambda c: (c[0], c[1]))
    return Assignments(dict(found))


def months_back(at: datetime, tz: str, months: int) -> list[str]:
    """The `months` calendar months ending with the month of `at`, oldest first."""
    year, month = (int(p) for p in month_of(at, tz).split("-"))
    last = date(year, month, 1)
    return [add_months(last, -n).strftime("%Y-%m") for n in range(months - 1, -1, -1)]


def promise_keeping(conn: Connection, *, at: datetime, as_of: datetime | None, tz: str,
                    months: int = 3, specialist_id: UUID | None = None) -> dict[str, Any]:
    """The controls block: agreements due in each of the `months` calendar months ending with
    the month of `at`, in total, per month, per specialist and per specialist and month."""
    periods = months_back(at, tz, months)
    first = month_bounds(int(periods[0][:4]), int(periods[0][5:]), tz)[0]
    end = month_bounds(int(periods[-1][:4]), int(periods[-1][5:]), tz)[1]
    t = promise_agreements
    rows = list(conn.execute(
        select(t).where(t.c.due_at >= first, t.c.due_at < end, _made_by(at, as_of))
        .order_by(t.c.due_at, t.c.agreement_id)))
    assigned = assignment_history(conn, as_of, (r.client_id for r in rows))
    total = Tally()
    by_month: dict[str, Tally] = {p: Tally() for p in periods}
    by_specialist: dict[UUID | None, Tally] = {}
    by_both: dict[tuple[UUID | None, str], Tally] = {}
    for row in rows:
        who = assigned.at(row.client_id, row.made_at)
        if specialist_id is not None and who != specialist_id:
            continue
        period = month_of(row.due_at, tz)
        for bucket in (total, by_month[period], by_specialist.setdefault(who, Tally()),
                       by_both.setdefault((who, period), Tally())):
            bucket.add(row, at, as_of)

    def order(key: UUID | None) -> tuple[bool, str]:
        return (key is None, str(key))

    return {
        "months": periods, "tz": tz,
        "rules": "agreements due in each month; kept rate = kept / (kept + broken); "
                 "specialist = the client's when the agreement was made",
        "total": total.as_dict(),
        "by_month": [{"month": p, **by_month[p].as_dict()} for p in periods],
        "by_specialist": [
            {"specialist_id": who, **by_specialist[who].as_dict(),
             "by_month": [{"month": p, **by_both[(who, p)].as_dict()}
                          for p in periods if (who, p) in by_both]}
            for who in sorted(by_specialist, key=order)],
    }
