"""Composed client reads: the full client card (§5) and the contact brief for a purpose.

Both are assembled at query time from the directory, activity and payments facts, for the
business moment `at` as known at `as_of` (None: everything recorded). Open situations,
satisfaction history and segment come from their own projections (projections.client_links).

Brief sections per purpose (only what that contact needs):

| purpose           | sections                                                              |
|-------------------|-----------------------------------------------------------------------|
| regular           | last_contact, plan, open_agreements, recent_topics, interests          |
| first_meeting     | last_meeting, plan, payment_regularity, open_agreements, missing,      |
|                   | decision_makers, recent_topics                                        |
| contract_renewal  | plan, last_meeting, decision_makers, payment_regularity,               |
|                   | open_agreements, interests, works                                     |
| needs_discovery   | plan, interests, missing, recent_topics, contact_persons               |
| competitor_switch | plan, decision_makers, interests, payment_regularity, recent_topics    |
| payment_delay     | plan, overdue_invoices, payments_last_90_days, payment_regularity,     |
|                   | open_agreements                                                       |
| acts_not_returned | plan, acts_not_returned, open_agreements, contact_persons               |
| low_usage         | plan, recent_topics, works, interests, open_agreements                 |
| churn_threat      | open_situations, decision_makers, recent_topics, open_agreements,      |
|                   | payment_regularity, works, satisfaction_history                       |
| competitor_threat | open_situations, decision_makers, recent_topics, interests,            |
|                   | payment_regularity, open_agreements                                   |
| complaint         | open_situations, recent_topics, works, open_agreements,                |
|                   | contact_persons, satisfaction_history                                 |
| visit (reception) | last_dissatisfaction, open_situations, satisfaction_history,           |
|                   | recent_topics, open_agreements, contact_persons                       |

`plan` is this contact's planned contact (the one named, else the earliest open one of the
purpose); `recent_topics` are contacts in the 14 days before `at`; `missing` splits the
completeness gaps into the client's and the decision maker's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from projections import client_links as links
from projections.activity import (
    client_contacts,
    client_works,
    open_agreements,
    open_planned_contacts,
)
from projections.clients import ClientState, client_state, completeness
from projections.facts import money
from projections.payments import (
    acts_not_returned,
    assignments,
    outstanding_invoices,
    payment_regularity,
    payments_known,
)
from projections.personal import Personal, shown
from projections.promises import client_promises
from projections.reception import last_dissatisfaction

RECENT = timedelta(days=14)
PAYMENTS_WINDOW = timedelta(days=90)
WORKS_SHOWN = 10

BRIEF_SECTIONS: dict[str, tuple[str, ...]] = {
    "regular": ("last_contact", "plan", "open_agreements", "recent_topics", "interests"),
    "first_meeting": ("last_meeting", "plan", "payment_regularity", "open_agreements",
                      "missing", "decision_makers", "recent_topics"),
    "contract_renewal": ("plan", "last_meeting", "decision_makers", "payment_regularity",
                         "open_agreements", "interests", "works"),
    "needs_discovery": ("plan", "interests", "missing", "recent_topics", "contact_persons"),
    "competitor_switch": ("plan", "decision_makers", "interests", "payment_regularity",
                          "recent_topics"),
    "payment_delay": ("plan", "overdue_invoices", "payments_last_90_days",
                      "payment_regularity", "open_agreements"),
    "acts_not_returned": ("plan", "acts_not_returned", "open_agreements", "contact_persons"),
    "low_usage": ("plan", "recent_topics", "works", "interests", "open_agreements"),
    "churn_threat": ("open_situations", "decision_makers", "recent_topics", "open_agreements",
                     "payment_regularity", "works", "satisfaction_history"),
    "competitor_threat": ("open_situations", "decision_makers", "recent_topics", "interests",
                          "payment_regularity", "open_agreements"),
    "complaint": ("open_situations", "recent_topics", "works", "open_agreements",
                  "contact_persons", "satisfaction_history"),
    # Not a contact purpose: reception of a visit (work order) in the car service.
    "visit": ("last_dissatisfaction", "open_situations", "satisfaction_history",
              "recent_topics", "open_agreements", "contact_persons"),
}


class _View:
    """One client at (`at`, `as_of`): each section computed on demand."""

    def __init__(self, conn: Connection, state: ClientState, at: datetime,
                 as_of: datetime | None) -> None:
        self.conn, self.state, self.at, self.as_of = conn, state, at, as_of
        self.id = state.client_id

    def specialist_id(self) -> UUID | None:
        return assignments(self.conn, self.as_of, [self.id]).at(self.id, self.at)

    def _contact(self, row: Any) -> dict[str, Any]:
        return {"contact_id": row.contact_id, "at": row.occurred_at, "topic": row.topic,
                "channel": row.channel, "purpose": row.purpose}

    def last_contact(self) -> dict[str, Any] | None:
        rows = client_contacts(self.conn, self.id, self.at, self.as_of, limit=1)
        return self._contact(rows[0]) if rows else None

    def last_meeting(self) -> dict[str, Any] | None:
        rows = client_contacts(self.conn, self.id, self.at, self.as_of, channel="meeting",
                               limit=1)
        return self._contact(rows[0]) if rows else None

    def recent_topics(self) -> list[dict[str, Any]]:
        return [self._contact(r) for r in client_contacts(
            self.conn, self.id, self.at, self.as_of, since=self.at - RECENT)]

    def _planned(self, row: Any) -> dict[str, Any]:
        return {"planned_contact_id": row.planned_contact_id, "purpose": row.purpose,
                "due_at": row.due_at, "overdue": row.due_at < self.at,
                "specialist_id": row.specialist_id, "note": row.note}

    def next_planned_contact(self) -> dict[str, Any] | None:
        rows = open_planned_contacts(self.conn, self.at, self.as_of, client_id=self.id)
        return self._planned(rows[0]) if rows else None

    def plan(self, purpose: str, planned_contact_id: UUID | None) -> dict[str, Any] | None:
        rows = open_planned_contacts(self.conn, self.at, self.as_of, client_id=self.id,
                                     purpose=None if planned_contact_id else purpose)
        if planned_contact_id is not None:
            rows = [r for r in rows if r.planned_contact_id == planned_contact_id]
        return self._planned(rows[0]) if rows else None

    def open_agreements(self) -> list[dict[str, Any]]:
        return [{"agreement_id": r.agreement_id, "text": r.text, "due_at": r.due_at,
                 "made_at": r.made_at, "overdue": r.due_at < self.at}
                for r in open_agreements(self.conn, self.at, self.as_of, client_id=self.id)]

    def payment_regularity(self) -> dict[str, Any]:
        return payment_regularity(self.conn, self.id, self.at, self.as_of)

    def interests(self) -> list[str]:
        return list(self.state.interests)

    def contact_persons(self) -> dict[str, list[dict[str, Any]]]:
        return self.state.persons_by_role()

    def decision_makers(self) -> list[dict[str, Any]]:
        return self.state.decision_makers()

    def missing(self) -> dict[str, list[str]]:
        gaps = completeness(self.state)["missing"]
        makers = self.state.decision_makers()
        maker_gaps = [] if self.state.form != "organisation" else ["contact_person"] if not (
            makers) else [f for f, key in (("phone", "phones"), ("email", "emails"))
                          if not any(p.get(key) for p in makers)]
        return {"client": [g for g in gaps if not g.startswith("decision_maker")],
                "decision_maker": maker_gaps}

    def overdue_invoices(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in d.items() if k not in ("outstanding_value", "client_id")}
                for d in outstanding_invoices(self.conn, self.at, self.as_of, client_id=self.id)
                if d["overdue"]]

    def payments_last_90_days(self) -> list[dict[str, Any]]:
        return [{"payment_id": p.payment_id, "at": p.occurred_at, "amount": money(p.amount),
                 "currency": p.currency, "invoice_id": p.invoice_id, "reference": p.reference}
                for p in payments_known(self.conn, self.at, self.as_of, client_id=self.id,
                                        since=self.at - PAYMENTS_WINDOW)]

    def acts_not_returned(self) -> list[dict[str, Any]]:
        return [{"invoice_id": r.invoice_id, "number": r.number, "act_sent_at": r.act_sent_at}
                for r in acts_not_returned(self.conn, self.at, self.as_of, client_id=self.id)]

    def works(self) -> list[dict[str, Any]]:
        def done(occurred: datetime | None, recorded: datetime | None) -> datetime | None:
            seen = occurred is not None and occurred <= self.at and (
                self.as_of is None or (recorded is not None and recorded <= self.as_of))
            return occurred if seen else None

        out = []
        for r in client_works(self.conn, self.id, self.at, self.as_of)[:WORKS_SHOWN]:
            rated = done(r.feedback_at, r.feedback_recorded_at)
            out.append({"work_id": r.work_id, "text": r.text, "assigned_at": r.assigned_at,
                        "completed_at": done(r.completed_at, r.completed_recorded_at),
                        "rating": r.rating if rated else None, "feedback_at": rated})
        return out

    def open_situations(self) -> list[dict[str, Any]]:
        return links.open_situations(self.conn, self.id, self.at, self.as_of)

    def satisfaction_history(self) -> list[dict[str, Any]]:
        return links.satisfaction_history(self.conn, self.id, self.at, self.as_of)

    def segment(self) -> str:
        return links.segment(self.conn, self.id, self.at, self.as_of)

    def last_dissatisfaction(self) -> dict[str, Any] | None:
        return last_dissatisfaction(self.conn, self.id, at=self.at, as_of=self.as_of)


def full_card(conn: Connection, client_id: UUID, *, at: datetime,
              as_of: datetime | None) -> dict[str, Any] | None:
    """The client card (§5) at `at` as known at `as_of`; None for an unknown client."""
    state = client_state(conn, client_id, as_of)
    if state is None:
        return None
    view = _View(conn, state, at, as_of)
    agreements = view.open_agreements()
    last = view.last_contact()
    return {
        "client_id": client_id, "at": at, "as_of": as_of,
        "profile": state.profile(),
        "interests": view.interests(),
        "specialist_id": view.specialist_id(),
        "registered_at": state.registered_at,
        "erased": state.erased,
        "contact_persons": view.contact_persons(),
        "last_contact": last,
        "next_planned_contact": view.next_planned_contact(),
        "open_agreements": agreements,
        "overdue_agreements": [a for a in agreements if a["overdue"]],
        "promises": client_promises(conn, client_id, at=at, as_of=as_of),
        "open_situations": view.open_situations(),
        "last_dissatisfaction": view.last_dissatisfaction(),
        "payment_regularity": view.payment_regularity(),
        "satisfaction_history": view.satisfaction_history(),
        "segment": view.segment(),
        "completeness": completeness(state),
        "position": state.position,
    }


def brief(conn: Connection, client_id: UUID, purpose: str, *, at: datetime,
          as_of: datetime | None, planned_contact_id: UUID | None = None) -> dict[str, Any] | None:
    """What a contact of `purpose` needs to know (see the table in the module docstring)."""
    state = client_state(conn, client_id, as_of)
    if state is None:
        return None
    view = _View(conn, state, at, as_of)
    sections: dict[str, Callable[[], Any]] = {
        name: getattr(view, name) for name in BRIEF_SECTIONS[purpose] if name != "plan"}
    body = {name: compute() for name, compute in sections.items()}
    if "plan" in BRIEF_SECTIONS[purpose]:
        body["plan"] = view.plan(purpose, planned_contact_id)
    return {"client_id": client_id, "purpose": purpose, "at": at, "as_of": as_of,
            "name": state.name, "form": state.form, "kind": state.kind,
            "specialist_id": view.specialist_id(), "sections": list(BRIEF_SECTIONS[purpose]),
            **body}


def opened(personal: Personal, body: dict[str, Any]) -> dict[str, Any]:
    """A card or brief with its contact topics and payment references as a read shows them:
    sealed ones opened, clear ones stored before those fields were sealed (v1 events) as they
    are, and either as "[erased]" once the client's key is gone (`projections.personal.shown`).
    The rest of the body is opened by the caller (`Personal.reveal`)."""
    client_id = body["client_id"]
    contacts = [body.get("last_contact"), body.get("last_meeting"),
                *(body.get("recent_topics") or [])]
    for contact in contacts:
        if contact is not None:
            contact["topic"] = shown(personal, client_id, contact["topic"])
    for payment in body.get("payments_last_90_days") or []:
        payment["reference"] = shown(personal, client_id, payment["reference"])
    return body
