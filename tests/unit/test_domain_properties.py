"""Property tests: random command sequences keep invariants, and replaying the events an aggregate
emitted always rebuilds exactly the same state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.base import CrmAggregate
from domain.client import Client
from domain.errors import DomainError
from domain.situation import OPEN, PAUSED, RESOLVED, Situation
from domain.survey import Survey, SurveyTemplate
from domain.values import ClientForm, ClientKind, ContactRole, Meta, SituationKind, SurveyOutcome

T0 = datetime(2026, 3, 6, 17, 30, tzinfo=UTC)
NS = UUID("00000000-0000-0000-0000-0000000000aa")


def meta(step: int) -> Meta:
    at = T0 + timedelta(minutes=step)
    return Meta(at, at, "prop", "operator")


def replayed(agg: CrmAggregate, events: list[Any]) -> CrmAggregate:
    """Fold the emitted events from nothing, as loading from the store does."""
    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    return rebuilt


def state(agg: CrmAggregate) -> dict[str, Any]:
    return {k: v for k, v in vars(agg).items() if k != "_pending_events"}


SITUATION_STEPS = st.lists(st.sampled_from(["ack", "pause", "resume", "resolve", "reopen"]),
                           max_size=25)


@given(SITUATION_STEPS)
@settings(max_examples=100, deadline=None)
def test_situation_sequences_keep_invariants_and_replay_exactly(steps: list[str]) -> None:
    situation = Situation.open(id=uuid5(NS, "s"), client_id=uuid5(NS, "c"), meta=meta(0),
                               kind=SituationKind.COMPLAINT, trigger="manual",
                               trigger_event_id=None, description="noise", specialist_id=None)
    accepted = 0
    for i, step in enumerate(steps, start=1):
        before = situation.version
        try:
            if step == "ack":
                situation.acknowledge(meta(i), None)
            elif step == "pause":
                situation.pause(meta(i), None)
            elif step == "resume":
                situation.resume(meta(i))
            elif step == "resolve":
                situation.resolve(meta(i), "done")
            else:
                situation.reopen(meta(i), None)
            accepted += 1
        except DomainError:
            assert situation.version == before  # a refused step changes nothing
        assert situation.status in (OPEN, PAUSED, RESOLVED)
        if situation.status == RESOLVED:
            assert step in ("resolve", "ack", "pause", "resume", "reopen")
    events = situation.collect_events()
    assert len(events) == accepted + 1
    assert state(replayed(situation, events)) == state(situation)


PERSON_STEPS = st.lists(st.tuples(st.sampled_from(["add", "update", "remove"]),
                                  st.integers(0, 3), st.text(min_size=1, max_size=8)),
                        max_size=20)


@given(PERSON_STEPS)
@settings(max_examples=80, deadline=None)
def test_contact_person_sequences_replay_exactly(steps: list[tuple[str, int, str]]) -> None:
    client = Client.register(id=uuid5(NS, "client"), meta=meta(0), kind=ClientKind.PARTNER,
                             form=ClientForm.ORGANISATION, name="Acme")
    expected: dict[UUID, str] = {}
    for i, (op, slot, name) in enumerate(steps, start=1):
        person = uuid5(NS, f"p{slot}")
        try:
            if op == "add":
                client.add_person(meta(i), person_id=person, name=name, role=ContactRole.USER,
                                  phones=[], emails=[], notes=None)
                if name.strip():
                    expected[person] = name
            elif op == "update":
                client.update_person(meta(i), person, {"name": name})
                expected[person] = name
            else:
                client.remove_person(meta(i), person)
                expected.pop(person)
        except DomainError:
            pass
    assert {k: v["name"] for k, v in client.persons.items()} == expected
    rebuilt = replayed(client, client.collect_events())
    assert state(rebuilt) == state(client)


@given(st.lists(st.tuples(st.sampled_from(["q1", "q2", "q3", "q4"]), st.booleans()),
                max_size=15), st.sampled_from(list(SurveyOutcome)))
@settings(max_examples=80, deadline=None)
def test_survey_final_ticks_are_the_last_tick_per_question(
        ticks: list[tuple[str, bool]], outcome: SurveyOutcome) -> None:
    questions = [{"id": q, "text": q, "stage": s} for q, s in
                 (("q1", "booking"), ("q2", "booking"), ("q3", "repair"), ("q4", "delivery"))]
    template = SurveyTemplate.define(id=uuid5(NS, "t"), meta=meta(0), name="t",
                                     questions=questions)
    survey = Survey.start(id=uuid5(NS, "sv"), client_id=uuid5(NS, "c"), meta=meta(0),
                          work_order_id=uuid5(NS, "wo"), template=template, interviewer="i")
    last = {q["id"]: True for q in questions}
    for i, (question, ticked) in enumerate(ticks, start=1):
        survey.set_tick(meta(i), question, ticked)
        last[question] = ticked
    survey.complete(meta(len(ticks) + 1), outcome, None)
    completed = survey.pending_events[-1]
    assert completed.final_ticks == (last if outcome == SurveyOutcome.COMPLETED else {})
    stages = [s for s in ("booking", "repair", "delivery")
              if any(not last[q["id"]] for q in questions if q["stage"] == s)]
    assert survey.unticked_stages() == stages
    assert state(replayed(survey, survey.collect_events())) == state(survey)
