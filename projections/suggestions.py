"""The facts the suggestion rules read (domain.suggestions), at `at` as known at `as_of`.

Every fact comes from a read model that equals a replay of the events (activity, payments,
promises, reception, segments), so a suggestion is reproducible at any `as_of`. Specialists are
the ones with a record the rules can weigh: contacts logged in the 12 months before `at` with a
purpose the client needs, contacts with this client, or an assignment to it.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from domain.months import add_months
from domain.suggestions import (
    BROKEN_RECENT,
    NO_CONTACT_MONTHS,
    ClientFacts,
    SpecialistFacts,
    needs_of,
    next_actions,
    rank_specialists,
)
from projections import client_links as links
from projections.activity import client_contacts, contacts, open_planned_contacts
from projections.facts import known
from projections.payments import acts_not_returned, outstanding_invoices
from projections.promises import (
    assignment_history,
    promise_agreements,
    promise_keeping,
    promise_state,
)
from projections.reception import last_dissatisfaction

COMPETENCE_WINDOW = timedelta(days=365)


def client_facts(conn: Connection, client_id: UUID, *, at: datetime,
                 as_of: datetime | None) -> ClientFacts:
    found = last_dissatisfaction(conn, client_id, at=at, as_of=as_of)
    situations = found["situations"] if found else []
    t = promise_agreements
    agreements = list(conn.execute(select(t).where(
        t.c.client_id == client_id, t.c.made_at <= at, known(t.c.recorded_at, as_of))
        .order_by(t.c.due_at, t.c.agreement_id)))
    states = [(row, promise_state(row, at, as_of)) for row in agreements]
    last = client_contacts(conn, client_id, at, as_of, limit=1)
    since = add_months(at.date(), -NO_CONTACT_MONTHS)
    return ClientFacts(
        at=at,
        overdue_planned=[
            {"planned_contact_id": r.planned_contact_id, "purpose": r.purpose,
             "due_at": r.due_at}
            for r in open_planned_contacts(conn, at, as_of, client_id=client_id)
            if r.due_at < at],
        unresolved_dissatisfaction=[s for s in situations if s["state"] == "open"],
        recently_resolved=[s for s in situations if s["state"] == "resolved"],
        broken=[{"agreement_id": row.agreement_id, "broken_at": row.outcome_at}
                for row, state in states
                if state == "broken" and row.outcome_at >= at - BROKEN_RECENT],
        overdue_agreements=[{"agreement_id": row.agreement_id, "due_at": row.due_at}
                            for row, state in states if state == "open" and row.due_at < at],
        overdue_invoices=[{"invoice_id": d["invoice_id"], "due_at": d["due_at"]}
                          for d in outstanding_invoices(conn, at, as_of, client_id=client_id)
                          if d["overdue"]],
        acts_not_returned=[{"invoice_id": r.invoice_id, "act_sent_at": r.act_sent_at}
                           for r in acts_not_returned(conn, at, as_of, client_id=client_id)],
        segment=links.segment(conn, client_id, at, as_of),
        last_contact_at=last[0].occurred_at if last else None,
        no_contact_since=at.replace(year=since.year, month=since.month, day=since.day),
    )


def suggestions(conn: Connection, client_id: UUID, *, at: datetime,
                as_of: datetime | None) -> dict[str, Any]:
    actions = next_actions(client_facts(conn, client_id, at=at, as_of=as_of))
    return {"client_id": client_id, "at": at, "as_of": as_of,
            "items": [a.as_dict() for a in actions]}


def suggested_specialists(conn: Connection, client_id: UUID, *, at: datetime,
                          as_of: datetime | None, tz: str) -> dict[str, Any]:
    needs = needs_of(next_actions(client_facts(conn, client_id, at=at, as_of=as_of)))
    c = contacts.c
    by_purpose: dict[UUID, Counter[str]] = {}
    for specialist, purpose, count in conn.execute(
            select(c.specialist_id, c.purpose, func.count())
            .where(c.specialist_id.is_not(None), c.purpose.in_(needs),
                   c.occurred_at > at - COMPETENCE_WINDOW, c.occurred_at <= at,
                   known(c.recorded_at, as_of))
            .group_by(c.specialist_id, c.purpose)):
        by_purpose.setdefault(specialist, Counter())[purpose] += int(count)
    with_client = {specialist: int(count) for specialist, count in conn.execute(
        select(c.specialist_id, func.count())
        .where(c.client_id == client_id, c.specialist_id.is_not(None), c.occurred_at <= at,
               known(c.recorded_at, as_of))
        .group_by(c.specialist_id))}
    history = assignment_history(conn, as_of, [client_id])
    current = history.at(client_id, at)
    earlier = {s for occurred, _v, s in history.by_client.get(client_id, [])
               if occurred <= at and s is not None} - {current}
    rates = {s["specialist_id"]: s["kept_rate"] for s in promise_keeping(
        conn, at=at, as_of=as_of, tz=tz, months=3)["by_specialist"]}
    candidates = set(by_purpose) | set(with_client) | earlier | (
        {current} if current is not None else set())
    ranked = rank_specialists(needs, [
        SpecialistFacts(s, dict(by_purpose.get(s, {})), with_client.get(s, 0), s == current,
                        s in earlier, rates.get(s)) for s in candidates])
    return {"client_id": client_id, "at": at, "as_of": as_of, "needs": needs, "items": ranked}
