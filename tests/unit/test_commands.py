"""The command layer on a real SQLite store: automatic situations, links, cross-client checks."""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import pytest

from commands.activity import LogContact, PlanContact
from commands.application import Actor, BatchItemError, Receipt
from commands.base import Command
from commands.clients import EraseClient, RegisterClient
from commands.errors import NotFoundError, VersionConflictError
from commands.reference import DefineSurveyTemplate, Question
from commands.service import (
    CloseWorkOrder,
    CompleteSurvey,
    OpenWorkOrder,
    RegisterComplaint,
    SetTick,
    StartSurvey,
)
from commands.situations import ResolveSituation
from domain.base import event_id_of
from domain.errors import ClientErasedError, InvalidTransitionError, InvalidValueError
from infra.bootstrap import Container
from tests.support import store_count

OPERATOR = Actor("olga", "operator")
ADMIN = Actor("root", "admin")
QUESTIONS = [Question(id="q-book", text="Booking easy?", stage="booking"),
             Question(id="q-recv", text="Received on time?", stage="reception"),
             Question(id="q-fix", text="Repair right?", stage="repair"),
             Question(id="q-call", text="Called back?", stage="booking")]


def run(container: Container, *commands: Command, actor: Actor = OPERATOR) -> Receipt:
    return container.app.execute(list(commands), actor)


def stored(container: Container) -> list[tuple[int, Any]]:
    """(position, event) of everything in the store, in order."""
    return [(n.id, container.app.mapper.to_domain_event(n))
            for n in container.app.recorder.select_notifications(start=1, limit=1_000_000)]


def of_type(container: Container, name: str) -> list[Any]:
    return [e for _p, e in stored(container) if type(e).__name__ == name]


def client(container: Container) -> UUID:
    return run(container, RegisterClient(kind="customer", form="person", name="Ann Lee")
               ).results[0].id


def closed_order(container: Container, client_id: UUID) -> UUID:
    order = run(container, OpenWorkOrder(client_id=client_id, asset="VW Golf",
                                         stages=["booking", "reception", "repair"])
                ).results[0].id
    run(container, CloseWorkOrder(work_order_id=order, amount="310.00", currency="EUR"))
    return order


def template(container: Container, questions: list[Question] = QUESTIONS) -> UUID:
    return run(container, DefineSurveyTemplate(name="after service", questions=questions),
               actor=ADMIN).results[0].id


def survey(container: Container, client_id: UUID) -> UUID:
    return run(container, StartSurvey(work_order_id=closed_order(container, client_id),
                                      template_id=template(container), interviewer="ivy")
               ).results[0].id


def test_a_complaint_opens_a_situation_in_the_same_save(container: Container) -> None:
    ann = client(container)
    before = store_count(container)
    receipt = run(container, RegisterComplaint(client_id=ann, text="car returned dirty"))
    written = receipt.results[0]
    situation_id = written.links["situation_id"]
    events = stored(container)[before:]
    assert [type(e).__name__ for _p, e in events] == ["ComplaintRegistered", "SituationOpened"]
    assert [p for p, _e in events] == [before + 1, before + 2]
    assert receipt.position == before + 2
    opened = events[1][1]
    assert (opened.originator_id, opened.kind, opened.trigger, opened.trigger_event_id,
            opened.client_id) == (situation_id, "complaint", "ComplaintRegistered",
                                  event_id_of(written.id, 1), ann)


def test_a_complaint_for_an_unknown_client_writes_nothing(container: Container) -> None:
    with pytest.raises(NotFoundError) as caught:
        run(container, RegisterComplaint(client_id=uuid4(), text="late"))
    assert caught.value.field == "client_id"
    assert store_count(container) == 0


def test_a_completed_survey_with_unticked_questions_opens_one_situation_naming_the_stages(
        container: Container) -> None:
    started = survey(container, client(container))
    run(container, SetTick(survey_id=started, question_id="q-fix", ticked=False))
    run(container, SetTick(survey_id=started, question_id="q-call", ticked=False))
    run(container, SetTick(survey_id=started, question_id="q-book", ticked=False))
    receipt = run(container, CompleteSurvey(survey_id=started, outcome="completed"))
    opened = of_type(container, "SituationOpened")
    assert len(opened) == 1
    assert opened[0].originator_id == receipt.results[0].links["situation_id"]
    assert (opened[0].kind, opened[0].trigger, opened[0].stages, opened[0].description) == (
        "survey_dissatisfaction", "SurveyCompleted", ["booking", "repair"],
        "dissatisfied with: booking, repair")
    completed = of_type(container, "SurveyCompleted")[0]
    assert completed.final_ticks == {"q-book": False, "q-recv": True, "q-fix": False,
                                     "q-call": False}


def test_an_all_satisfied_survey_opens_no_situation(container: Container) -> None:
    started = survey(container, client(container))
    receipt = run(container, CompleteSurvey(survey_id=started, outcome="completed"))
    assert receipt.results[0].links == {}
    assert of_type(container, "SituationOpened") == []


def test_an_unticked_survey_the_client_refused_to_finish_opens_no_situation(
        container: Container) -> None:
    started = survey(container, client(container))
    run(container, SetTick(survey_id=started, question_id="q-fix", ticked=False))
    run(container, CompleteSurvey(survey_id=started, outcome="refused"))
    assert of_type(container, "SituationOpened") == []


def test_an_emergency_purpose_contact_opens_one_situation(container: Container) -> None:
    ann = client(container)
    receipt = run(container, LogContact(client_id=ann, channel="phone", direction="inbound",
                                        purpose="churn_threat", topic="wants to cancel"))
    opened = of_type(container, "SituationOpened")
    assert len(opened) == 1
    assert (opened[0].originator_id, opened[0].kind, opened[0].trigger) == (
        receipt.results[0].links["situation_id"], "churn_threat", "ContactLogged")


def test_a_problem_purpose_contact_opens_no_situation(container: Container) -> None:
    ann = client(container)
    run(container, LogContact(client_id=ann, channel="phone", direction="outbound",
                              purpose="payment_delay", topic="invoice 12 overdue"))
    assert of_type(container, "SituationOpened") == []


def test_a_contact_naming_a_planned_contact_completes_it(container: Container) -> None:
    ann = client(container)
    planned = run(container, PlanContact(client_id=ann, purpose="regular",
                                         due_at="2026-12-01T10:00:00+01:00")).results[0].id
    receipt = run(container, LogContact(client_id=ann, channel="meeting", direction="outbound",
                                        topic="quarterly review", planned_contact_id=planned))
    contact_id = receipt.results[0].id
    assert receipt.results[0].links == {"planned_contact_id": planned}
    done = of_type(container, "PlannedContactCompleted")
    assert [(e.originator_id, e.contact_id) for e in done] == [(planned, contact_id)]
    before = store_count(container)
    with pytest.raises(InvalidTransitionError, match="is done"):
        run(container, LogContact(client_id=ann, channel="phone", direction="outbound",
                                  topic="again", planned_contact_id=planned))
    assert store_count(container) == before


def test_a_contact_naming_another_clients_situation_is_rejected(container: Container) -> None:
    ann, bob = client(container), client(container)
    bobs = run(container, RegisterComplaint(client_id=bob, text="noise")
               ).results[0].links["situation_id"]
    before = store_count(container)
    with pytest.raises(InvalidValueError) as caught:
        run(container, LogContact(client_id=ann, channel="phone", direction="outbound",
                                  topic="follow-up", situation_id=bobs))
    assert caught.value.field == "situation_id"
    assert store_count(container) == before


def test_a_contact_naming_another_clients_planned_contact_is_rejected(
        container: Container) -> None:
    ann, bob = client(container), client(container)
    bobs = run(container, PlanContact(client_id=bob, purpose="regular",
                                      due_at="2026-12-01T10:00:00Z")).results[0].id
    with pytest.raises(InvalidValueError) as caught:
        run(container, LogContact(client_id=ann, channel="phone", direction="outbound",
                                  topic="x", planned_contact_id=bobs))
    assert caught.value.field == "planned_contact_id"


def test_starting_a_survey_on_an_open_work_order_is_rejected(container: Container) -> None:
    ann = client(container)
    order = run(container, OpenWorkOrder(client_id=ann, asset="Audi A4")).results[0].id
    tpl = template(container)
    before = store_count(container)
    with pytest.raises(InvalidTransitionError) as caught:
        run(container, StartSurvey(work_order_id=order, template_id=tpl, interviewer="ivy"))
    assert caught.value.field == "work_order_id"
    assert store_count(container) == before


def test_a_survey_pins_the_requested_template_version(container: Container) -> None:
    ann = client(container)
    tpl = template(container, QUESTIONS[:2])
    run(container, DefineSurveyTemplate(template_id=tpl, name="v2", questions=QUESTIONS),
        actor=ADMIN)
    pinned = run(container, StartSurvey(work_order_id=closed_order(container, ann),
                                         template_id=tpl, template_version=1,
                                         interviewer="ivy")).results[0].id
    latest = run(container, StartSurvey(work_order_id=closed_order(container, ann),
                                        template_id=tpl, interviewer="ivy")).results[0].id
    started = {e.originator_id: e for e in of_type(container, "SurveyStarted")}
    assert (started[pinned].template_version,
            [q["id"] for q in started[pinned].questions]) == (1, ["q-book", "q-recv"])
    assert (started[latest].template_version,
            [q["id"] for q in started[latest].questions]) == (
        2, ["q-book", "q-recv", "q-fix", "q-call"])
    with pytest.raises(InvalidValueError) as caught:
        run(container, SetTick(survey_id=pinned, question_id="q-fix", ticked=False))
    assert caught.value.field == "question_id"
    with pytest.raises(InvalidValueError) as caught:
        run(container, StartSurvey(work_order_id=closed_order(container, ann), template_id=tpl,
                                   template_version=3, interviewer="ivy"))
    assert caught.value.field == "template_version"


def test_nothing_more_is_recorded_for_an_erased_client(container: Container) -> None:
    ann = client(container)
    situation = run(container, RegisterComplaint(client_id=ann, text="rude staff")
                    ).results[0].links["situation_id"]
    run(container, EraseClient(client_id=ann, reason="GDPR request"), actor=ADMIN)
    before = store_count(container)
    with pytest.raises(ClientErasedError):
        run(container, LogContact(client_id=ann, channel="email", direction="inbound",
                                  topic="hello"))
    with pytest.raises(ClientErasedError):
        run(container, ResolveSituation(situation_id=situation, resolution="apologised"))
    assert store_count(container) == before


def test_a_stale_expected_version_is_a_conflict_naming_the_current_one(
        container: Container) -> None:
    ann = client(container)
    situation = run(container, RegisterComplaint(client_id=ann, text="rude staff")
                    ).results[0].links["situation_id"]
    before = store_count(container)
    with pytest.raises(VersionConflictError) as caught:
        container.app.execute([ResolveSituation(situation_id=situation, resolution="ok")],
                              OPERATOR, expected_versions=[2])
    assert caught.value.current_version == 1
    assert store_count(container) == before
    receipt = container.app.execute([ResolveSituation(situation_id=situation, resolution="ok")],
                                    OPERATOR, expected_versions=[1])
    assert (receipt.results[0].id, receipt.results[0].version) == (situation, 2)


def test_a_failing_command_in_a_batch_writes_nothing_and_names_its_index(
        container: Container) -> None:
    new_id = uuid4()
    with pytest.raises(BatchItemError) as caught:
        run(container,
            RegisterClient(id=new_id, kind="supplier", form="organisation", name="Parts Ltd"),
            LogContact(client_id=new_id, channel="phone", direction="outbound", topic="order"),
            RegisterComplaint(client_id=uuid4(), text="nobody"))
    assert caught.value.index == 2
    assert isinstance(caught.value.error, NotFoundError)
    assert store_count(container) == 0


def test_events_record_the_acting_user_and_role(container: Container) -> None:
    ann = client(container)
    run(container, LogContact(client_id=ann, channel="chat", direction="inbound", topic="hi"),
        actor=Actor("pete", "operator"))
    actors = [(e.actor, e.actor_role) for _p, e in stored(container)]
    assert actors == [("olga", "operator"), ("pete", "operator")]
