"""The suggestion rules (domain.suggestions) on facts built by hand: pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from domain.suggestions import (
    ClientFacts,
    SpecialistFacts,
    needs_of,
    next_actions,
    rank_specialists,
)

AT = datetime(2028, 6, 1, 12, tzinfo=UTC)
A, B = UUID(int=1), UUID(int=2)


def facts(**changes: Any) -> ClientFacts:
    base: dict[str, Any] = {
        "at": AT, "overdue_planned": [], "unresolved_dissatisfaction": [],
        "recently_resolved": [], "broken": [], "overdue_agreements": [],
        "overdue_invoices": [], "acts_not_returned": [], "segment": "active",
        "last_contact_at": datetime(2028, 5, 1, tzinfo=UTC),
        "no_contact_since": datetime(2028, 3, 1, 12, tzinfo=UTC)}
    return ClientFacts(**{**base, **changes})


def rules(f: ClientFacts) -> list[tuple[str, str, int]]:
    return [(s.rule, s.action, s.priority) for s in next_actions(f)]


def test_a_client_with_nothing_pending_gets_no_suggestion() -> None:
    assert rules(facts()) == []
    assert needs_of(next_actions(facts())) == ["regular"]


def test_at_risk_segment_no_contact_acts_and_overdue_promise() -> None:
    f = facts(segment="at_risk", last_contact_at=datetime(2027, 5, 1, tzinfo=UTC),
              acts_not_returned=[{"invoice_id": A, "act_sent_at": datetime(2028, 4, 1,
                                                                            tzinfo=UTC)},
                                 {"invoice_id": B, "act_sent_at": datetime(2028, 5, 20,
                                                                           tzinfo=UTC)}],
              overdue_agreements=[{"agreement_id": A,
                                   "due_at": datetime(2028, 5, 1, tzinfo=UTC)}])
    assert rules(f) == [("overdue_promise", "regular", 75),
                        ("segment_at_risk", "churn_threat", 60),
                        ("acts_not_returned", "acts_not_returned", 55),
                        ("no_contact", "regular", 50)]
    acts = next(s for s in next_actions(f) if s.rule == "acts_not_returned")
    assert acts.reason == {"invoices": [A]}  # B's act was sent 12 days ago: not yet late
    assert rules(facts(segment="low_active")) == [("segment_at_risk", "regular", 30)]
    assert rules(facts(last_contact_at=None)) == [("no_contact", "regular", 50)]


def test_a_resolved_dissatisfaction_counts_only_while_none_is_open() -> None:
    resolved = [{"situation_id": A, "kind": "complaint",
                 "resolved_at": datetime(2028, 5, 1, tzinfo=UTC)}]
    assert rules(facts(recently_resolved=resolved)) == [
        ("recent_dissatisfaction", "regular", 40)]
    both = facts(recently_resolved=resolved,
                 unresolved_dissatisfaction=[{"situation_id": B, "kind": "complaint"}])
    assert rules(both) == [("dissatisfaction", "complaint", 90)]


def test_a_broken_promise_answered_by_a_later_contact_is_not_suggested() -> None:
    broken = [{"agreement_id": A, "broken_at": datetime(2028, 5, 20, tzinfo=UTC)}]
    assert rules(facts(broken=broken)) == [("broken_promise", "regular", 80)]
    assert rules(facts(broken=broken,
                       last_contact_at=datetime(2028, 5, 21, tzinfo=UTC))) == []


def test_specialist_points_are_capped_and_ties_go_by_id() -> None:
    busy = SpecialistFacts(B, {"regular": 25, "complaint": 2}, 14, False, True, "80.00")
    fresh = SpecialistFacts(A, {}, 0, True, False, None)
    ranked = rank_specialists(["complaint", "regular"], [fresh, busy])
    assert [(r["specialist_id"], r["points"]) for r in ranked] == [(B, 2 + 10 + 10 + 2 + 4),
                                                                    (A, 5)]
    assert [r["rule"] for r in ranked[0]["reasons"]] == [
        "competence", "competence", "history", "assigned_before", "promises"]
    tie = rank_specialists(["regular"], [SpecialistFacts(B, {}, 0, True, False, None),
                                         SpecialistFacts(A, {}, 0, True, False, None)])
    assert [r["specialist_id"] for r in tie] == [A, B]
