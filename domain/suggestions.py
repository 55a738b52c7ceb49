"""Suggestions for the semi-automatic mode (issue 18.6): the next actions for a client and the
specialists best placed to take it, each with its reasons.

Pure functions of plain facts (read at `at` as known at `as_of` by projections.suggestions), so
the same events give the same suggestions: an auditor reproduces one from an export at any
`as_of`. The rules are data below and in docs/decisions.md ("Suggestions").

Next actions, one per rule that applies, ranked by priority (highest first), then by rule name:

| rule | when | action (contact purpose) | priority |
| --- | --- | --- | --- |
| overdue_callback | a planned contact open and due before `at` | its purpose | 100 (a) |
| dissatisfaction | an unresolved complaint or survey dissatisfaction | complaint | 90 |
| broken_promise | an agreement broken in the last 30 days, no contact since | regular | 80 |
| overdue_promise | an agreement open and due before `at` | regular | 75 |
| debt | an invoice unpaid past its due date | payment_delay | 70 (b) |
| acts_not_returned | an act sent and not returned for 30 days | acts_not_returned | 55 |
| segment_at_risk | segment `at_risk` (or `low_active`) at `at` | churn_threat (regular) | 60 (30) |
| no_contact | no contact in the last 3 months (or never) | regular | 50 |
| recent_dissatisfaction | a dissatisfaction resolved in the last 90 days | regular | 40 |

(a) +1 per day the earliest is overdue, at most +30; (b) +1 per 10 days the oldest is overdue,
at most +20. `recent_dissatisfaction` only when none is unresolved.

Specialists, for the client's needs (the purposes of the actions above; `regular` when there
are none): points, highest first, then by id:
- competence: per need, the contacts of that purpose the specialist logged (any client) in the
  12 months before `at`, at most 10 points per need;
- history: the contacts the specialist logged with this client, at most 10 points;
- assigned: 5 points for the client's specialist at `at`, 2 for an earlier one;
- promises: the kept rate of the specialist's agreements due in the last 3 months, one point
  per 20% (none when nothing was decided).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

BROKEN_RECENT = timedelta(days=30)
ACTS_LATE = timedelta(days=30)
NO_CONTACT_MONTHS = 3
COMPETENCE_CAP = HISTORY_CAP = 10
ASSIGNED_POINTS, EARLIER_POINTS = 5, 2


@dataclass(frozen=True)
class ClientFacts:
    """What the rules read about one client at `at`."""

    at: datetime
    overdue_planned: list[dict[str, Any]]  # planned_contact_id, purpose, due_at
    unresolved_dissatisfaction: list[dict[str, Any]]  # situation_id, kind
    recently_resolved: list[dict[str, Any]]  # situation_id, kind, resolved_at
    broken: list[dict[str, Any]]  # agreement_id, broken_at (in the last 30 days)
    overdue_agreements: list[dict[str, Any]]  # agreement_id, due_at
    overdue_invoices: list[dict[str, Any]]  # invoice_id, due_at
    acts_not_returned: list[dict[str, Any]]  # invoice_id, act_sent_at
    segment: str
    last_contact_at: datetime | None
    no_contact_since: datetime  # `at` less NO_CONTACT_MONTHS calendar months


@dataclass(frozen=True)
class Suggestion:
    rule: str
    action: str  # the purpose of the contact to make
    priority: int
    reason: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "action": self.action, "priority": self.priority,
                "reason": self.reason}


def next_actions(f: ClientFacts) -> list[Suggestion]:
    """The rules of the module docstring, ranked."""
    out: list[Suggestion] = []
    if f.overdue_planned:
        first = min(f.overdue_planned, key=lambda p: p["due_at"])
        days = (f.at - first["due_at"]).days
        out.append(Suggestion("overdue_callback", first["purpose"], 100 + min(days, 30), {
            "planned_contact_id": first["planned_contact_id"], "due_at": first["due_at"],
            "days_overdue": days, "overdue_planned_contacts": len(f.overdue_planned)}))
    if f.unresolved_dissatisfaction:
        out.append(Suggestion("dissatisfaction", "complaint", 90, {
            "situations": [{"situation_id": s["situation_id"], "kind": s["kind"]}
                           for s in f.unresolved_dissatisfaction]}))
    if f.broken and (f.last_contact_at is None
                     or f.last_contact_at < max(b["broken_at"] for b in f.broken)):
        out.append(Suggestion("broken_promise", "regular", 80, {
            "agreements": [b["agreement_id"] for b in f.broken],
            "last_broken_at": max(b["broken_at"] for b in f.broken)}))
    if f.overdue_agreements:
        out.append(Suggestion("overdue_promise", "regular", 75, {
            "agreements": [a["agreement_id"] for a in f.overdue_agreements],
            "earliest_due_at": min(a["due_at"] for a in f.overdue_agreements)}))
    if f.overdue_invoices:
        oldest = min(i["due_at"] for i in f.overdue_invoices)
        out.append(Suggestion("debt", "payment_delay",
                              70 + min((f.at - oldest).days // 10, 20), {
                                  "invoices": [i["invoice_id"] for i in f.overdue_invoices],
                                  "oldest_due_at": oldest}))
    late_acts = [a for a in f.acts_not_returned if a["act_sent_at"] <= f.at - ACTS_LATE]
    if late_acts:
        out.append(Suggestion("acts_not_returned", "acts_not_returned", 55, {
            "invoices": [a["invoice_id"] for a in late_acts]}))
    if f.segment in ("at_risk", "low_active"):
        at_risk = f.segment == "at_risk"
        out.append(Suggestion("segment_at_risk", "churn_threat" if at_risk else "regular",
                              60 if at_risk else 30, {"segment": f.segment}))
    if f.last_contact_at is None or f.last_contact_at < f.no_contact_since:
        out.append(Suggestion("no_contact", "regular", 50, {
            "last_contact_at": f.last_contact_at, "months": NO_CONTACT_MONTHS}))
    if f.recently_resolved and not f.unresolved_dissatisfaction:
        out.append(Suggestion("recent_dissatisfaction", "regular", 40, {
            "situations": [{"situation_id": s["situation_id"], "kind": s["kind"],
                            "resolved_at": s["resolved_at"]} for s in f.recently_resolved]}))
    return sorted(out, key=lambda s: (-s.priority, s.rule))


def needs_of(actions: list[Suggestion]) -> list[str]:
    """The contact purposes the client needs, in the order of the actions; `regular` if none."""
    found: list[str] = []
    for action in actions:
        if action.action not in found:
            found.append(action.action)
    return found or ["regular"]


@dataclass(frozen=True)
class SpecialistFacts:
    """What the ranking reads about one specialist."""

    specialist_id: UUID
    contacts_by_purpose: dict[str, int]  # in the 12 months before `at`, any client
    contacts_with_client: int
    assigned_now: bool
    assigned_before: bool
    kept_rate: str | None  # percent, two decimals


def rank_specialists(needs: list[str],
                     candidates: list[SpecialistFacts]) -> list[dict[str, Any]]:
    """Points per the module docstring, highest first (then by id), each with its reasons."""
    ranked = []
    for c in candidates:
        reasons: list[dict[str, Any]] = []
        for need in needs:
            done = c.contacts_by_purpose.get(need, 0)
            if done:
                reasons.append({"rule": "competence", "purpose": need, "contacts": done,
                                "points": min(done, COMPETENCE_CAP)})
        if c.contacts_with_client:
            reasons.append({"rule": "history", "contacts": c.contacts_with_client,
                            "points": min(c.contacts_with_client, HISTORY_CAP)})
        if c.assigned_now:
            reasons.append({"rule": "assigned", "points": ASSIGNED_POINTS})
        elif c.assigned_before:
            reasons.append({"rule": "assigned_before", "points": EARLIER_POINTS})
        if c.kept_rate is not None:
            points = int(Decimal(c.kept_rate) // 20)
            if points:
                reasons.append({"rule": "promises", "kept_rate": c.kept_rate,
                                "points": points})
        ranked.append({"specialist_id": c.specialist_id,
                       "points": sum(r["points"] for r in reasons), "reasons": reasons})
    return sorted(ranked, key=lambda r: (-r["points"], str(r["specialist_id"])))
