"""Every write route's happy path, and every §3 event type produced through the API with its
two times and its actor (on SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest

from api.routers.writes import WRITES
from domain.catalogue import EVENT_TYPES
from infra.bootstrap import build
from infra.settings import Settings
from tests.support import Api

BUSINESS_TIME = "2026-11-20T10:00:00+01:00"


@dataclass
class Call:
    """One write: where, what, and the event types it must append (in store order)."""

    method: str
    path: str
    body: dict[str, Any] | None
    expect: tuple[str, ...]
    client: str | None = None  # whose history shows the events; None: reference data or new
    as_: str = "operator"


class Story:
    """Builds, through the API itself, what a write needs first (a client, an open agreement...)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._once: dict[str, str] = {}

    def w(self, method: str, path: str, body: dict[str, Any] | None = None,
          as_: str = "operator") -> dict[str, Any]:
        return self.api.ok(method, "/v1" + path, body, as_=as_)

    def once(self, name: str, make: Callable[[], str]) -> str:
        if name not in self._once:
            self._once[name] = make()
        return self._once[name]

    @property
    def specialist(self) -> str:
        return self.once("specialist", lambda: self.w(
            "POST", "/specialists", {"name": "Sam Spec", "user_id": "sam"}, as_="admin")["id"])

    @property
    def client(self) -> str:
        return self.once("client", self.new_client)

    @property
    def template(self) -> str:
        return self.once("template", lambda: self.w("POST", "/survey-templates", {
            "name": "after service", "questions": [
                {"id": "q-book", "text": "Booking easy?", "stage": "booking"},
                {"id": "q-fix", "text": "Repair right?", "stage": "repair"}]},
            as_="admin")["id"])

    def new_client(self) -> str:
        return self.w("POST", "/clients", {"kind": "customer", "form": "organisation",
                                           "name": "Acme GmbH",
                                           "specialist_id": self.specialist})["id"]

    def person(self) -> str:
        return self.w("POST", f"/clients/{self.client}/contact-persons",
                      {"name": "Eva Chef", "role": "decision_maker"})["links"]["person_id"]

    def planned(self) -> str:
        return self.w("POST", f"/clients/{self.client}/planned-contacts",
                      {"purpose": "regular", "due_at": "2026-12-01T09:00:00Z"})["id"]

    def agreement(self) -> str:
        return self.w("POST", f"/clients/{self.client}/agreements",
                      {"text": "send the offer", "due_at": "2026-12-01T09:00:00Z"})["id"]

    def work(self, completed: bool = False) -> str:
        work = self.w("POST", f"/clients/{self.client}/works",
                      {"text": "set up the cash desk", "assignee": "bob"})["id"]
        if completed:
            self.w("POST", f"/works/{work}/complete", {})
        return work

    def work_order(self, closed: bool = False) -> str:
        order = self.w("POST", "/work-orders", {"client_id": self.client, "asset": "VW Golf",
                                                "stages": ["booking", "repair"]})["id"]
        if closed:
            self.w("POST", f"/work-orders/{order}/close", {"amount": "310.00",
                                                           "currency": "EUR"})
        return order

    def survey(self) -> str:
        return self.w("POST", "/surveys", {"work_order_id": self.work_order(closed=True),
                                           "template_id": self.template,
                                           "interviewer": "ivy"})["id"]

    def situation(self, *steps: str) -> str:
        situation = self.w("POST", "/situations", {"client_id": self.client, "kind": "other",
                                                   "description": "slow answers"})["id"]
        for step in steps:
            self.w("POST", f"/situations/{situation}/{step}",
                   {"resolution": "done"} if step == "resolve" else {})
        return situation

    def invoice(self, act_sent: bool = False) -> str:
        invoice = self.w("POST", "/invoices", {"client_id": self.client, "number": uuid4().hex[:8],
                                               "amount": "120.50", "currency": "EUR",
                                               "due_at": "2099-01-01T00:00:00Z"})["id"]
        if act_sent:
            self.w("POST", f"/invoices/{invoice}/act-sent", {})
        return invoice


def _client_call(method: str, tail: str, body: dict[str, Any] | None,
                 *expect: str) -> Callable[[Story], Call]:
    return lambda s: Call(method, f"/clients/{s.client}{tail}", body, expect, s.client)


def _on(method: str, path: Callable[[Story], str], body: dict[str, Any] | None,
        *expect: str) -> Callable[[Story], Call]:
    return lambda s: Call(method, path(s), body, expect, s.client)


def _admin(method: str, path: Callable[[Story], str], body: dict[str, Any],
           *expect: str) -> Callable[[Story], Call]:
    return lambda s: Call(method, path(s), body, expect, None, "admin")


def _twice(path: str, body: dict[str, Any], *expect: str) -> Callable[[Story], Call]:
    """A reference write repeated: the second one changes what the first defined."""
    def make(s: Story) -> Call:
        s.w("PUT", path, body, as_="admin")
        return Call("PUT", path, body, expect, None, "admin")
    return make


def _erase(s: Story) -> Call:
    """Erasure is terminal: a client of its own, so the story's client stays live."""
    client = s.new_client()
    return Call("POST", f"/clients/{client}/erase", {"reason": "asked to be forgotten"},
                ("ClientErased",), client, "admin")


def _complete_unticked(s: Story) -> Call:
    survey = s.survey()
    s.w("POST", f"/surveys/{survey}/ticks", {"question_id": "q-fix", "ticked": False})
    return Call("POST", f"/surveys/{survey}/complete", {"outcome": "completed"},
                ("SurveyCompleted", "SituationOpened"), s.client)


CAL = {"timezone": "Europe/Berlin", "hours": {"mon": [["09:00", "18:00"]]},
       "holidays": ["2026-12-25"]}
SLA = {"first_reaction_seconds": 3600, "resolution_seconds": 86400}

# (method, route path as in WRITES, case name) -> the call. The first case of a route is its
# happy path; the others produce the event types a route gives only in another state.
CASES: dict[tuple[str, str, str], Callable[[Story], Call]] = {
    ("POST", "/clients", "register"): lambda s: Call("POST", "/clients", {
        "kind": "customer", "form": "person", "name": "Ann Lee", "phones": ["+49 30 1234"],
        "specialist_id": s.specialist, "occurred_at": BUSINESS_TIME}, ("ClientRegistered",)),
    ("PATCH", "/clients/{client_id}", "profile"): _client_call(
        "PATCH", "", {"address": "Main St 1"}, "ClientProfileUpdated"),
    ("PATCH", "/clients/{client_id}", "reassign"): _client_call(
        "PATCH", "", {"specialist_id": None}, "ClientReassigned"),
    ("POST", "/clients/{client_id}/interests", "interest"): _client_call(
        "POST", "/interests", {"text": "also keeps books for a small firm"},
        "ClientInterestNoted"),
    ("POST", "/clients/{client_id}/contact-persons", "add"): _client_call(
        "POST", "/contact-persons", {"name": "Eva Chef", "role": "decision_maker",
                                     "emails": ["eva@acme.example"]}, "ContactPersonAdded"),
    ("PATCH", "/clients/{client_id}/contact-persons/{person_id}", "update"): lambda s: Call(
        "PATCH", f"/clients/{s.client}/contact-persons/{s.person()}", {"role": "influencer"},
        ("ContactPersonUpdated",), s.client),
    ("DELETE", "/clients/{client_id}/contact-persons/{person_id}", "remove"): lambda s: Call(
        "DELETE", f"/clients/{s.client}/contact-persons/{s.person()}", None,
        ("ContactPersonRemoved",), s.client),
    ("POST", "/clients/{client_id}/erase", "erase"): lambda s: _erase(s),
    ("POST", "/clients/{client_id}/contacts", "log"): _client_call(
        "POST", "/contacts", {"channel": "phone", "direction": "inbound",
                              "topic": "invoice question", "occurred_at": BUSINESS_TIME},
        "ContactLogged"),
    ("POST", "/clients/{client_id}/contacts", "planned"): lambda s: Call(
        "POST", f"/clients/{s.client}/contacts", {
            "channel": "meeting", "direction": "outbound", "topic": "review",
            "planned_contact_id": s.planned()},
        ("ContactLogged", "PlannedContactCompleted"), s.client),
    ("POST", "/clients/{client_id}/contacts", "emergency"): _client_call(
        "POST", "/contacts", {"channel": "phone", "direction": "inbound",
                              "purpose": "competitor_threat", "topic": "got a rival offer"},
        "ContactLogged", "SituationOpened"),
    ("POST", "/clients/{client_id}/planned-contacts", "plan"): _client_call(
        "POST", "/planned-contacts", {"purpose": "contract_renewal",
                                      "due_at": "2026-12-01T09:00:00+01:00"}, "ContactPlanned"),
    ("POST", "/planned-contacts/{planned_contact_id}/cancel", "cancel"): _on(
        "POST", lambda s: f"/planned-contacts/{s.planned()}/cancel", {"reason": "moved"},
        "PlannedContactCancelled"),
    ("POST", "/clients/{client_id}/agreements", "make"): _client_call(
        "POST", "/agreements", {"text": "send the offer", "due_at": "2026-12-01T09:00:00Z"},
        "AgreementMade"),
    ("POST", "/agreements/{agreement_id}/fulfil", "fulfil"): _on(
        "POST", lambda s: f"/agreements/{s.agreement()}/fulfil", {"note": "sent"},
        "AgreementFulfilled"),
    ("POST", "/agreements/{agreement_id}/break", "break"): _on(
        "POST", lambda s: f"/agreements/{s.agreement()}/break", {}, "AgreementBroken"),
    ("POST", "/clients/{client_id}/works", "assign"): _client_call(
        "POST", "/works", {"text": "install the update", "assignee": "bob"}, "WorkAssigned"),
    ("POST", "/works/{work_id}/complete", "complete"): _on(
        "POST", lambda s: f"/works/{s.work()}/complete", None, "WorkCompleted"),
    ("POST", "/works/{work_id}/feedback", "feedback"): _on(
        "POST", lambda s: f"/works/{s.work(completed=True)}/feedback", {"rating": 4},
        "FeedbackReceived"),
    ("POST", "/work-orders", "open"): lambda s: Call(
        "POST", "/work-orders", {"client_id": s.client, "asset": "Audi A4",
                                 "services": ["oil change"], "stages": ["booking", "repair"]},
        ("WorkOrderOpened",), s.client),
    ("POST", "/work-orders/{work_order_id}/close", "close"): _on(
        "POST", lambda s: f"/work-orders/{s.work_order()}/close",
        {"amount": "99.90", "currency": "EUR"}, "WorkOrderClosed"),
    ("POST", "/surveys", "start"): lambda s: Call(
        "POST", "/surveys", {"work_order_id": s.work_order(closed=True),
                             "template_id": s.template, "interviewer": "ivy"},
        ("SurveyStarted",), s.client),
    ("POST", "/surveys/{survey_id}/ticks", "untick"): _on(
        "POST", lambda s: f"/surveys/{s.survey()}/ticks", {"question_id": "q-fix",
                                                            "ticked": False}, "SurveyTickSet"),
    ("POST", "/surveys/{survey_id}/complete", "complete"): lambda s: _complete_unticked(s),
    ("POST", "/complaints", "complaint"): lambda s: Call(
        "POST", "/complaints", {"client_id": s.client, "text": "car returned dirty",
                                "channel": "phone"},
        ("ComplaintRegistered", "SituationOpened"), s.client),
    ("POST", "/wishes", "wish"): lambda s: Call(
        "POST", "/wishes", {"client_id": s.client, "text": "coffee in the waiting room"},
        ("WishRegistered",), s.client),
    ("POST", "/situations", "open"): lambda s: Call(
        "POST", "/situations", {"client_id": s.client, "kind": "low_usage",
                                "description": "logins dropped"}, ("SituationOpened",),
        s.client),
    ("POST", "/situations/{situation_id}/acknowledge", "ack"): _on(
        "POST", lambda s: f"/situations/{s.situation()}/acknowledge", {"note": "on it"},
        "SituationAcknowledged"),
    ("POST", "/situations/{situation_id}/pause", "pause"): _on(
        "POST", lambda s: f"/situations/{s.situation()}/pause", {"reason": "waiting"},
        "SituationPaused"),
    ("POST", "/situations/{situation_id}/resume", "resume"): _on(
        "POST", lambda s: f"/situations/{s.situation('pause')}/resume", None,
        "SituationResumed"),
    ("POST", "/situations/{situation_id}/resolve", "resolve"): _on(
        "POST", lambda s: f"/situations/{s.situation()}/resolve", {"resolution": "fixed"},
        "SituationResolved"),
    ("POST", "/situations/{situation_id}/reopen", "reopen"): _on(
        "POST", lambda s: f"/situations/{s.situation('resolve')}/reopen", {},
        "SituationReopened"),
    ("POST", "/invoices", "issue"): lambda s: Call(
        "POST", "/invoices", {"client_id": s.client, "number": "2026-0042", "amount": "1200.00",
                              "currency": "EUR", "due_at": "2099-01-01T00:00:00Z"},
        ("InvoiceIssued",), s.client),
    ("POST", "/invoices/{invoice_id}/act-sent", "sent"): _on(
        "POST", lambda s: f"/invoices/{s.invoice()}/act-sent", None, "ActSent"),
    ("POST", "/invoices/{invoice_id}/act-returned", "returned"): _on(
        "POST", lambda s: f"/invoices/{s.invoice(act_sent=True)}/act-returned", None,
        "ActReturned"),
    ("POST", "/payments", "pay"): lambda s: Call(
        "POST", "/payments", {"client_id": s.client, "amount": "120.50", "currency": "EUR",
                              "reference": "bank 778"}, ("PaymentReceived",), s.client),
    ("PUT", "/plans/{specialist_id}/{month}", "plan"): _admin(
        "PUT", lambda s: f"/plans/{s.specialist}/2026-11", {"amount": "50000.00",
                                                            "currency": "EUR"},
        "PaymentPlanSet"),
    ("POST", "/specialists", "register"): _admin(
        "POST", lambda s: "/specialists", {"name": "Kim Field", "email": "kim@corp.example"},
        "SpecialistRegistered"),
    ("POST", "/survey-templates", "define"): _admin(
        "POST", lambda s: "/survey-templates", {"name": "t", "questions": [
            {"id": "q1", "text": "Happy?", "stage": "delivery"}]}, "SurveyTemplateDefined"),
    ("POST", "/survey-templates", "revise"): lambda s: Call(
        "POST", "/survey-templates", {"template_id": s.template, "name": "v2", "questions": [
            {"id": "q-book", "text": "Booking easy?", "stage": "booking"}]},
        ("SurveyTemplateRevised",), None, "admin"),
    ("PUT", "/calendars/{calendar}", "define"): _admin(
        "PUT", lambda s: "/calendars/berlin", CAL, "CalendarDefined"),
    ("PUT", "/calendars/{calendar}", "change"): _twice("/calendars/munich", CAL,
                                                       "CalendarChanged"),
    ("PUT", "/sla-targets/{situation_kind}", "define"): _admin(
        "PUT", lambda s: "/sla-targets/complaint", SLA, "SlaTargetDefined"),
    ("PUT", "/sla-targets/{situation_kind}", "change"): _twice("/sla-targets/low_usage", SLA,
                                                               "SlaTargetChanged"),
}
HAPPY: dict[tuple[str, str], str] = {}
for _method, _path, _name in CASES:
    HAPPY.setdefault((_method, _path), _name)


def perform(story: Story, case: tuple[str, str, str]) -> tuple[Call, Any, list[dict[str, Any]]]:
    """Run a case: its answer and the events it appended (as the API or the store shows them)."""
    api = story.api
    call = CASES[case](story)
    before = api.store_position()
    started = datetime.now(UTC)
    response = api.request(call.method, "/v1" + call.path, json=call.body, as_=call.as_)
    finished = datetime.now(UTC)
    assert response.status_code in (200, 201), (case, response.status_code, response.text)
    answer = response.json()
    client = call.client or (answer["id"] if case[1] == "/clients" else None)
    if client is not None:
        events = api.ok("GET", f"/v1/clients/{client}/events", params={
            "cursor": str(before), "min_position": answer["position"]})["items"]
    else:
        events = _stored_after(api, before)
    assert tuple(e["type"] for e in events) == call.expect, case
    for event in events:
        assert event["actor"] == {"user": f"{call.as_}-user", "role": call.as_}, event
        recorded = datetime.fromisoformat(event["recorded_at"])
        occurred = datetime.fromisoformat(event["occurred_at"])
        assert recorded.utcoffset() is not None and occurred.utcoffset() is not None
        assert started <= recorded <= finished, event
        given = (call.body or {}).get("occurred_at")
        assert occurred == (datetime.fromisoformat(given) if given else recorded), event
    return call, response, events


def _stored_after(api: Api, before: int) -> list[dict[str, Any]]:
    """Reference data has no client history: read it from the store itself."""
    app = api.container.app
    out = []
    for n in app.recorder.select_notifications(start=before + 1, limit=1000):
        event = app.mapper.to_domain_event(n)
        out.append({"type": type(event).__name__, "position": n.id,
                    "stream_id": str(event.originator_id), "version": event.originator_version,
                    "actor": {"user": event.actor, "role": event.actor_role},
                    "occurred_at": event.occurred_at.isoformat(),
                    "recorded_at": event.timestamp.isoformat()})
    return out


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """One store for the happy path of every route (each case builds what it needs itself)."""
    built = build(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('writes')}/crm.db"))
    yield Story(Api(built))
    built.close()


def test_every_write_route_has_a_happy_path_case() -> None:
    assert set(HAPPY) == {(w.method, w.path) for w in WRITES}


@pytest.mark.parametrize("spec", WRITES, ids=lambda w: f"{w.method} {w.path}")
def test_write_route_answers_id_version_position_and_its_event_shows(story: Story,
                                                                     spec: Any) -> None:
    _call, response, events = perform(story, (spec.method, spec.path,
                                              HAPPY[(spec.method, spec.path)]))
    assert response.status_code == spec.status
    answer = response.json()
    assert answer["position"] == max(e["position"] for e in events)
    own = [e for e in events if e["stream_id"] == answer["id"]]
    assert own, "the answer's id names the aggregate written"
    assert answer["version"] == max(e["version"] for e in own)
    assert response.headers["etag"] == f'"{answer["version"]}"'


def test_every_event_type_can_be_produced_through_the_api(any_api: Api) -> None:
    story = Story(any_api)
    seen: set[str] = set()
    for case in CASES:
        _call, _response, events = perform(story, case)
        seen.update(e["type"] for e in events)
    assert sorted(set(EVENT_TYPES) - seen) == []


def test_openapi_describes_every_write_route(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    for write in WRITES:
        operation = spec["paths"]["/v1" + write.path][write.method.lower()]
        assert operation["summary"] == write.summary
        assert {"401", "403", "422"} <= set(operation["responses"])
    assert "/v1/batch" in spec["paths"]
    assert api.client.get("/docs").status_code == 200
