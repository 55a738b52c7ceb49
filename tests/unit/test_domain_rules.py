"""Every aggregate rule of domain/, without I/O: impossible steps are refused, replay is pure."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import pytest

from domain.activity import PlannedContact
from domain.agreement import Agreement, Work
from domain.base import CrmAggregate
from domain.client import Client
from domain.errors import ClientErasedError, InvalidTransitionError, InvalidValueError
from domain.money import Invoice
from domain.reference import Calendar, SlaTarget, Specialist
from domain.service import WorkOrder
from domain.situation import Situation
from domain.survey import Survey, SurveyTemplate
from domain.values import (
    ClientForm,
    ClientKind,
    ContactPurpose,
    ContactRole,
    Meta,
    Money,
    SituationKind,
    SurveyOutcome,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
QUESTIONS = [
    {"id": "q-book", "text": "Was booking easy?", "stage": "booking"},
    {"id": "q-recv", "text": "Were you received on time?", "stage": "reception"},
    {"id": "q-fix", "text": "Was the repair done right?", "stage": "repair"},
    {"id": "q-call", "text": "Did we call back when promised?", "stage": "booking"},
]


def meta(minutes: int = 0, actor: str = "u1") -> Meta:
    at = T0 + timedelta(minutes=minutes)
    return Meta(at, at, actor, "operator")


def replayed(agg: CrmAggregate) -> CrmAggregate:
    """The aggregate rebuilt from its own events, as loading from the store would do."""
    events = agg.collect_events()
    before = [copy.deepcopy(vars(e)) for e in events]
    rebuilt: Any = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    # Applying must not alter the events themselves (shared lists would corrupt a later replay).
    assert [vars(e) for e in events] == before
    return rebuilt  # type: ignore[no-any-return]


def new_client(**fields: Any) -> Client:
    return Client.register(id=uuid4(), meta=meta(), kind=ClientKind.CUSTOMER,
                           form=ClientForm.ORGANISATION, name="Acme GmbH", **fields)


def new_situation() -> Situation:
    return Situation.open(id=uuid4(), client_id=uuid4(), meta=meta(), kind=SituationKind.OTHER,
                          trigger="manual", trigger_event_id=None, description="slow answers",
                          specialist_id=None)


def new_template() -> SurveyTemplate:
    return SurveyTemplate.define(id=uuid4(), meta=meta(), name="after service",
                                 questions=[dict(q) for q in QUESTIONS])


def new_survey(template: SurveyTemplate | None = None) -> Survey:
    return Survey.start(id=uuid4(), client_id=uuid4(), meta=meta(), work_order_id=uuid4(),
                        template=template or new_template(), interviewer="ivy")


def new_invoice() -> Invoice:
    return Invoice.issue(id=uuid4(), client_id=uuid4(), meta=meta(), number="2026-001",
                         amount=Money.parse("120.50", "EUR"), due_at=T0 + timedelta(days=14))


def new_work() -> Work:
    return Work.assign(id=uuid4(), client_id=uuid4(), meta=meta(), text="set up the cash desk",
                       due_at=None, assignee="bob")


# -- values ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("amount", "positive", "message"), [
    ("-1", True, "must be greater than zero"),
    ("0", True, "must be greater than zero"),
    ("0.00", True, "must be greater than zero"),
    ("-0.01", False, "must not be negative"),
    ("abc", True, "not a decimal number"),
    ("NaN", True, "not a finite decimal number"),
    ("Infinity", True, "not a finite decimal number"),
    ("1.00001", True, "at most 4 decimal places"),
])
def test_money_parse_refuses_negative_zero_and_inexact_amounts(amount: str, positive: bool,
                                                                message: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        Money.parse(amount, "EUR", positive=positive)
    assert caught.value.field == "amount"
    assert caught.value.message == message


def test_money_parse_keeps_the_exact_decimal_and_allows_zero_when_not_positive() -> None:
    assert Money.parse("120.5000", "EUR") == Money(Decimal("120.5000"), "EUR")
    assert Money.parse("0", "USD", positive=False) == Money(Decimal("0"), "USD")


def test_money_parse_names_a_bad_currency() -> None:
    with pytest.raises(InvalidValueError) as caught:
        Money.parse("10", "eur")
    assert caught.value.field == "currency"


def test_meta_refuses_a_naive_business_time() -> None:
    with pytest.raises(InvalidValueError) as caught:
        Meta(datetime(2026, 3, 2, 9, 0), T0, "u1", "operator")
    assert caught.value.field == "occurred_at"


def test_contact_purposes_fall_into_the_three_categories() -> None:
    assert {p.value for p in ContactPurpose if p.is_emergency} == {
        "churn_threat", "competitor_threat", "complaint"}
    assert {p.value for p in ContactPurpose if p.category == "problem"} == {
        "payment_delay", "acts_not_returned", "low_usage"}
    assert ContactPurpose.FIRST_MEETING.category == "planned"


# -- clients --------------------------------------------------------------------------------------

def test_client_name_must_not_be_blank() -> None:
    with pytest.raises(InvalidValueError) as caught:
        Client.register(id=uuid4(), meta=meta(), kind=ClientKind.PROSPECT,
                        form=ClientForm.PERSON, name="  ")
    assert caught.value.field == "name"


def test_profile_update_refuses_unknown_fields_and_no_op_changes() -> None:
    client = new_client(tax_id="DE1")
    with pytest.raises(InvalidValueError) as caught:
        client.update_profile(meta(1), {"colour": "red"})
    assert caught.value.field == "colour"
    with pytest.raises(InvalidTransitionError, match="already has these values"):
        client.update_profile(meta(1), {"tax_id": "DE1"})
    client.update_profile(meta(1), {"tax_id": "DE1", "address": "Main St 1"})
    # Only what changed is recorded.
    assert client.pending_events[-1].changes == {"address": "Main St 1"}  # type: ignore[attr-defined]


def test_reassigning_to_the_same_specialist_is_refused() -> None:
    specialist = uuid4()
    client = new_client(specialist_id=specialist)
    with pytest.raises(InvalidTransitionError, match="already assigned"):
        client.reassign(meta(1), specialist)
    client.reassign(meta(1), None)
    assert client.specialist_id is None
    assert client.pending_events[-1].previous_specialist_id == specialist  # type: ignore[attr-defined]


def test_a_contact_person_is_added_once() -> None:
    client = new_client()
    person = uuid4()
    client.add_person(meta(1), person_id=person, name="Eva", role=ContactRole.DECISION_MAKER,
                      phones=[], emails=[], notes=None)
    with pytest.raises(InvalidTransitionError, match="exists already"):
        client.add_person(meta(2), person_id=person, name="Eva", role=ContactRole.USER,
                          phones=[], emails=[], notes=None)


@pytest.mark.parametrize("action", ["update", "remove", "require"])
def test_an_unknown_contact_person_is_named_as_the_offending_field(action: str) -> None:
    client = new_client()
    unknown = uuid4()
    with pytest.raises(InvalidValueError) as caught:
        if action == "update":
            client.update_person(meta(1), unknown, {"name": "X"})
        elif action == "remove":
            client.remove_person(meta(1), unknown)
        else:
            client.require_person(unknown, field="contact_person_id")
    assert caught.value.field == ("contact_person_id" if action == "require" else "person_id")


def test_contact_person_update_refuses_unknown_fields() -> None:
    client = new_client()
    person = uuid4()
    client.add_person(meta(1), person_id=person, name="Eva", role=ContactRole.CONTACT,
                      phones=[], emails=[], notes=None)
    with pytest.raises(InvalidValueError) as caught:
        client.update_person(meta(2), person, {"salary": "1"})
    assert caught.value.field == "salary"


ERASED_ACTIONS = {
    "update_profile": lambda c, p: c.update_profile(meta(5), {"name": "New"}),
    "reassign": lambda c, p: c.reassign(meta(5), uuid4()),
    "note_interest": lambda c, p: c.note_interest(meta(5), "books"),
    "add_person": lambda c, p: c.add_person(meta(5), person_id=uuid4(), name="Z",
                                            role=ContactRole.USER, phones=[], emails=[],
                                            notes=None),
    "update_person": lambda c, p: c.update_person(meta(5), p, {"name": "Y"}),
    "remove_person": lambda c, p: c.remove_person(meta(5), p),
    "erase": lambda c, p: c.erase(meta(5), "again"),
    "ensure_live": lambda c, p: c.ensure_live(),
}


@pytest.mark.parametrize("action", sorted(ERASED_ACTIONS))
def test_an_erased_client_rejects_everything(action: str) -> None:
    client = new_client()
    person = uuid4()
    client.add_person(meta(1), person_id=person, name="Eva", role=ContactRole.CONTACT,
                      phones=[], emails=[], notes=None)
    client.erase(meta(2), "asked to be forgotten")
    version = client.version
    with pytest.raises(ClientErasedError):
        ERASED_ACTIONS[action](client, person)
    assert client.version == version


# -- situations -----------------------------------------------------------------------------------

def test_resolving_a_resolved_situation_is_refused() -> None:
    situation = new_situation()
    situation.resolve(meta(1), "called back, fixed")
    with pytest.raises(InvalidTransitionError, match="already resolved"):
        situation.resolve(meta(2), "again")


def test_a_resolution_must_not_be_blank() -> None:
    with pytest.raises(InvalidValueError) as caught:
        new_situation().resolve(meta(1), " ")
    assert caught.value.field == "resolution"


def test_acknowledging_twice_is_refused_but_a_reopen_allows_it_again() -> None:
    situation = new_situation()
    situation.acknowledge(meta(1), None)
    with pytest.raises(InvalidTransitionError, match="already acknowledged"):
        situation.acknowledge(meta(2), None)
    situation.resolve(meta(3), "done")
    with pytest.raises(InvalidTransitionError, match="resolved"):
        situation.acknowledge(meta(4), None)
    situation.reopen(meta(5), "it broke again")
    assert (situation.status, situation.acknowledged) == ("open", False)
    situation.acknowledge(meta(6), "on it")
    assert situation.acknowledged is True


def test_pause_resume_and_reopen_follow_the_status_diagram() -> None:
    situation = new_situation()
    with pytest.raises(InvalidTransitionError, match="not paused"):
        situation.resume(meta(1))
    with pytest.raises(InvalidTransitionError, match="only a resolved situation"):
        situation.reopen(meta(1), None)
    situation.pause(meta(1), "waiting for documents")
    assert situation.status == "paused"
    with pytest.raises(InvalidTransitionError, match="paused"):
        situation.pause(meta(2), None)
    situation.resume(meta(3))
    assert situation.status == "open"
    situation.pause(meta(4), None)
    situation.resolve(meta(5), "resolved while paused")  # the client answered by mail
    assert situation.status == "resolved"
    with pytest.raises(InvalidTransitionError, match="resolved"):
        situation.pause(meta(6), None)
    with pytest.raises(InvalidTransitionError, match="not paused"):
        situation.resume(meta(6))
    situation.reopen(meta(7), None)
    assert situation.status == "open"


def test_a_situation_accepts_contacts_of_its_own_client_only() -> None:
    situation = new_situation()
    assert situation.client_id is not None
    situation.accept_contact(situation.client_id)
    with pytest.raises(InvalidValueError) as caught:
        situation.accept_contact(uuid4())
    assert caught.value.field == "situation_id"


# -- surveys --------------------------------------------------------------------------------------

def test_a_survey_starts_with_every_question_ticked() -> None:
    survey = new_survey()
    assert survey.ticks == {"q-book": True, "q-recv": True, "q-fix": True, "q-call": True}
    assert survey.status == "in_progress"


def test_completing_a_survey_twice_is_refused() -> None:
    survey = new_survey()
    survey.complete(meta(1), SurveyOutcome.COMPLETED, None)
    with pytest.raises(InvalidTransitionError, match="already completed"):
        survey.complete(meta(2), SurveyOutcome.REFUSED, None)


def test_ticking_a_question_not_in_the_template_names_question_id() -> None:
    survey = new_survey()
    with pytest.raises(InvalidValueError) as caught:
        survey.set_tick(meta(1), "q-coffee", False)
    assert caught.value.field == "question_id"


def test_ticks_cannot_change_after_completion() -> None:
    survey = new_survey()
    survey.complete(meta(1), SurveyOutcome.UNREACHABLE, "no answer")
    with pytest.raises(InvalidTransitionError, match="already unreachable"):
        survey.set_tick(meta(2), "q-fix", False)


def test_unticked_stages_come_in_template_order_without_repeats() -> None:
    survey = new_survey()
    survey.set_tick(meta(1), "q-fix", False)
    survey.set_tick(meta(2), "q-call", False)
    survey.set_tick(meta(3), "q-book", False)
    survey.set_tick(meta(4), "q-recv", False)
    survey.set_tick(meta(5), "q-recv", True)  # changed their mind
    assert survey.unticked_stages() == ["booking", "repair"]


def test_completed_survey_keeps_final_ticks_and_other_outcomes_keep_none() -> None:
    done = new_survey()
    done.set_tick(meta(1), "q-recv", False)
    done.complete(meta(2), SurveyOutcome.COMPLETED, "slow reception")
    assert done.pending_events[-1].final_ticks == {  # type: ignore[attr-defined]
        "q-book": True, "q-recv": False, "q-fix": True, "q-call": True}
    refused = new_survey()
    refused.complete(meta(1), SurveyOutcome.REFUSED, None)
    assert refused.pending_events[-1].final_ticks == {}  # type: ignore[attr-defined]
    assert refused.status == "refused"


def test_a_template_needs_distinct_question_ids_and_at_least_one_question() -> None:
    with pytest.raises(InvalidValueError) as caught:
        SurveyTemplate.define(id=uuid4(), meta=meta(), name="t", questions=[])
    assert caught.value.field == "questions"
    template = new_template()
    with pytest.raises(InvalidValueError, match="distinct"):
        template.revise(meta(1), "t", [dict(QUESTIONS[0]), dict(QUESTIONS[0])])


def test_a_survey_pins_the_template_version_it_started_from() -> None:
    template = new_template()
    template.revise(meta(1), "after service v2", [dict(QUESTIONS[0])])
    survey = new_survey(template)
    started = survey.pending_events[0]
    assert (started.template_version, survey.ticks) == (2, {"q-book": True})  # type: ignore[attr-defined]


# -- work orders, agreements, work ---------------------------------------------------------------

def test_closing_a_work_order_twice_is_refused() -> None:
    order = WorkOrder.open(id=uuid4(), client_id=uuid4(), meta=meta(), asset="VW Golf B-XY 12",
                           services=["oil"], stages=["booking", "repair"], mechanic=None)
    order.close(meta(1), Money.parse("0", "EUR", positive=False))  # warranty work costs nothing
    with pytest.raises(InvalidTransitionError, match="already closed"):
        order.close(meta(2), Money.parse("10", "EUR"))


def test_a_work_order_needs_distinct_stages_and_an_asset() -> None:
    with pytest.raises(InvalidValueError) as caught:
        WorkOrder.open(id=uuid4(), client_id=uuid4(), meta=meta(), asset="car", services=[],
                       stages=["repair", "repair"], mechanic=None)
    assert caught.value.field == "stages"
    with pytest.raises(InvalidValueError) as caught:
        WorkOrder.open(id=uuid4(), client_id=uuid4(), meta=meta(), asset=" ", services=[],
                       stages=[], mechanic=None)
    assert caught.value.field == "asset"


def test_an_agreement_fulfilled_cannot_then_be_broken_nor_fulfilled_again() -> None:
    agreement = Agreement.make(id=uuid4(), client_id=uuid4(), meta=meta(), text="send the offer",
                               due_at=T0 + timedelta(days=2), contact_id=None)
    agreement.fulfil(meta(1), "sent")
    with pytest.raises(InvalidTransitionError, match="already fulfilled"):
        agreement.break_(meta(2), "late")
    with pytest.raises(InvalidTransitionError, match="already fulfilled"):
        agreement.fulfil(meta(2), None)


def test_a_broken_agreement_cannot_be_fulfilled() -> None:
    agreement = Agreement.make(id=uuid4(), client_id=uuid4(), meta=meta(), text="call back",
                               due_at=T0, contact_id=None)
    agreement.break_(meta(1), None)
    with pytest.raises(InvalidTransitionError, match="already broken"):
        agreement.fulfil(meta(2), None)


def test_feedback_is_taken_once_on_completed_work_with_a_rating_from_1_to_5() -> None:
    work = new_work()
    with pytest.raises(InvalidTransitionError, match="completed work only"):
        work.receive_feedback(meta(1), 5, None)
    work.complete(meta(2), None)
    with pytest.raises(InvalidTransitionError, match="already completed"):
        work.complete(meta(3), None)
    for rating in (0, 6, -1):
        with pytest.raises(InvalidValueError) as caught:
            work.receive_feedback(meta(3), rating, None)
        assert caught.value.field == "rating"
    work.receive_feedback(meta(3), 4, "good")
    with pytest.raises(InvalidTransitionError, match="already received"):
        work.receive_feedback(meta(4), 5, None)


def test_a_planned_contact_is_done_or_cancelled_once() -> None:
    planned = PlannedContact.plan(id=uuid4(), client_id=uuid4(), meta=meta(),
                                  purpose=ContactPurpose.REGULAR, due_at=T0, specialist_id=None,
                                  note=None)
    planned.complete(meta(1), uuid4())
    with pytest.raises(InvalidTransitionError, match="is done"):
        planned.cancel(meta(2), None)
    with pytest.raises(InvalidTransitionError, match="is done"):
        planned.complete(meta(2), uuid4())


# -- money ----------------------------------------------------------------------------------------

def test_an_act_returned_before_it_was_sent_is_refused() -> None:
    invoice = new_invoice()
    with pytest.raises(InvalidTransitionError, match="was not sent"):
        invoice.return_act(meta(1))
    invoice.send_act(meta(1))
    with pytest.raises(InvalidTransitionError, match="already sent"):
        invoice.send_act(meta(2))
    invoice.return_act(meta(2))
    with pytest.raises(InvalidTransitionError, match="already returned"):
        invoice.return_act(meta(3))


def test_an_invoice_is_due_after_it_was_issued_and_has_a_number() -> None:
    with pytest.raises(InvalidValueError) as caught:
        Invoice.issue(id=uuid4(), client_id=uuid4(), meta=meta(), number="1",
                      amount=Money.parse("1", "EUR"), due_at=T0 - timedelta(days=1))
    assert caught.value.field == "due_at"
    with pytest.raises(InvalidValueError) as caught:
        Invoice.issue(id=uuid4(), client_id=uuid4(), meta=meta(), number=" ",
                      amount=Money.parse("1", "EUR"), due_at=T0)
    assert caught.value.field == "number"


def test_a_payment_against_an_invoice_must_match_its_client_and_currency() -> None:
    invoice = new_invoice()
    assert invoice.client_id is not None
    with pytest.raises(InvalidValueError) as caught:
        invoice.accept_payment(uuid4(), Money.parse("1", "EUR"))
    assert caught.value.field == "invoice_id"
    with pytest.raises(InvalidValueError) as caught:
        invoice.accept_payment(invoice.client_id, Money.parse("1", "USD"))
    assert caught.value.field == "currency"
    invoice.accept_payment(invoice.client_id, Money.parse("1", "EUR"))


# -- reference data -------------------------------------------------------------------------------

def test_a_payment_plan_month_reads_yyyy_mm() -> None:
    specialist = Specialist.register(id=uuid4(), meta=meta(), name="Sam", email=None,
                                     user_id=None)
    with pytest.raises(InvalidValueError) as caught:
        specialist.set_plan(meta(1), "2026-13", Money.parse("1000", "EUR"))
    assert caught.value.field == "month"
    specialist.set_plan(meta(1), "2026-12", Money.parse("1000", "EUR"))
    assert specialist.plans == {"2026-12": (Decimal("1000"), "EUR")}


@pytest.mark.parametrize(("first", "resolution", "warn", "field"), [
    (0, 10, 0.5, "first_reaction_seconds"),
    (60, 59, 0.5, "resolution_seconds"),
    (60, 60, 1.0, "warn_ratio"),
    (60, 60, 0.0, "warn_ratio"),
])
def test_sla_targets_are_positive_ordered_and_warn_before_the_end(
        first: int, resolution: int, warn: float, field: str) -> None:
    with pytest.raises(InvalidValueError) as caught:
        SlaTarget.define(id=uuid4(), meta=meta(), situation_kind="complaint",
                         first_reaction_seconds=first, resolution_seconds=resolution,
                         business_hours=True, warn_ratio=warn, calendar_id=None)
    assert caught.value.field == field


# -- replay purity --------------------------------------------------------------------------------

def _histories() -> dict[str, CrmAggregate]:
    client = new_client(tags=["vip"], phones=["+49 30 1"])
    person = uuid4()
    client.add_person(meta(1), person_id=person, name="Eva", role=ContactRole.CONTACT,
                      phones=["+49 30 2"], emails=[], notes=None)
    client.update_person(meta(2), person, {"phones": ["+49 30 3"]})
    client.update_profile(meta(3), {"phones": ["+49 30 4"], "tags": ["vip", "fleet"]})
    client.note_interest(meta(4), "keeps books for a second firm")
    client.reassign(meta(5), uuid4())
    client.remove_person(meta(6), person)
    client.erase(meta(7), "request")

    situation = new_situation()
    situation.acknowledge(meta(1), None)
    situation.pause(meta(2), None)
    situation.resume(meta(3))
    situation.resolve(meta(4), "done")
    situation.reopen(meta(5), None)

    survey = new_survey()
    survey.set_tick(meta(1), "q-fix", False)
    survey.set_tick(meta(2), "q-fix", True)
    survey.set_tick(meta(3), "q-book", False)
    survey.complete(meta(4), SurveyOutcome.COMPLETED, None)

    template = new_template()
    template.revise(meta(1), "v2", [dict(QUESTIONS[1])])

    invoice = new_invoice()
    invoice.send_act(meta(1))
    invoice.return_act(meta(2))

    work = new_work()
    work.complete(meta(1), None)
    work.receive_feedback(meta(2), 5, None)

    specialist = Specialist.register(id=uuid4(), meta=meta(), name="Sam", email=None,
                                     user_id="sam")
    specialist.set_plan(meta(1), "2026-03", Money.parse("5000", "EUR"))
    specialist.set_plan(meta(2), "2026-03", Money.parse("5500", "EUR"))

    calendar = Calendar.define(id=uuid4(), meta=meta(), calendar={"timezone": "UTC"})
    calendar.change(meta(1), {"timezone": "Europe/Berlin"})
    return {"client": client, "situation": situation, "survey": survey, "template": template,
            "invoice": invoice, "work": work, "specialist": specialist, "calendar": calendar}


@pytest.mark.parametrize("name", sorted(_histories()))
def test_replaying_an_aggregates_events_gives_an_equal_state(name: str) -> None:
    agg = _histories()[name]
    version = agg.version
    rebuilt = replayed(agg)
    assert rebuilt == agg
    assert rebuilt.version == version


def test_replayed_client_keeps_its_history_exactly() -> None:
    client = _histories()["client"]
    rebuilt = replayed(client)
    assert isinstance(rebuilt, Client)
    assert rebuilt.erased is True
    assert rebuilt.persons == {}
    assert rebuilt.profile["phones"] == ["+49 30 4"]
    assert rebuilt.interests == ["keeps books for a second firm"]


def test_every_event_carries_client_business_time_record_time_and_actor() -> None:
    client = new_client()
    at = T0 + timedelta(hours=1)
    client.note_interest(Meta(T0, at, "alice", "operator"), "fleet")
    event = client.collect_events()[-1]
    assert (event.client_id, event.occurred_at, event.recorded_at, event.actor,  # type: ignore[attr-defined]
            event.actor_role) == (client.id, T0, at, "alice", "operator")
    assert isinstance(event.originator_id, UUID)
