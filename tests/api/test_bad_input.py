"""Bad input never gives a 500 nor appends an event: a problem+json 4xx naming the field."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from uuid import uuid4

import pytest

from infra.bootstrap import build
from infra.settings import Settings
from tests.api.test_writes import Story
from tests.support import Api, store_count

UNKNOWN = str(uuid4())


@dataclass
class Bad:
    """A bad request and the answer it must get: status and the field the errors name."""

    method: str
    path: str
    status: int
    field: str
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    as_: str = "operator"


def contact(**overrides: Any) -> dict[str, Any]:
    return {"channel": "phone", "direction": "inbound", "topic": "a question", **overrides}


def payment(client: str, **overrides: Any) -> dict[str, Any]:
    return {"client_id": client, "amount": "10.00", "currency": "EUR", **overrides}


def cases(s: Story) -> dict[str, Bad]:
    """Every kind of bad input, against a story whose entities exist."""
    c, survey, agreement = s.client, s.survey(), s.agreement()
    return {
        "naive occurred_at": Bad("POST", f"/clients/{c}/contacts", 422, "occurred_at",
                                 contact(occurred_at="2026-11-20T10:00:00")),
        "naive due_at": Bad("POST", f"/clients/{c}/planned-contacts", 422, "due_at",
                            {"purpose": "regular", "due_at": "2026-12-01T09:00:00"}),
        "date without time": Bad("POST", f"/clients/{c}/contacts", 422, "occurred_at",
                                 contact(occurred_at="2026-11-20")),
        "occurred_at far in the future": Bad("POST", f"/clients/{c}/contacts", 422,
                                             "occurred_at",
                                             contact(occurred_at="2999-01-01T00:00:00Z")),
        "unknown enum value": Bad("POST", f"/clients/{c}/contacts", 422, "channel",
                                  contact(channel="pigeon")),
        "unknown enum value in the path": Bad("PUT", "/sla-targets/boredom", 422,
                                              "path.situation_kind",
                                              {"first_reaction_seconds": 60,
                                               "resolution_seconds": 120}, as_="admin"),
        "negative money": Bad("POST", "/payments", 422, "amount", payment(c, amount="-5.00")),
        "zero payment": Bad("POST", "/payments", 422, "amount", payment(c, amount="0")),
        "negative work order amount": Bad("POST", f"/work-orders/{s.work_order()}/close", 422,
                                          "amount", {"amount": "-1", "currency": "EUR"}),
        "money as a JSON number": Bad("POST", "/payments", 422, "amount",
                                      payment(c, amount=10.5)),
        "money with five decimals": Bad("POST", "/payments", 422, "amount",
                                        payment(c, amount="1.00001")),
        "money as words": Bad("POST", "/payments", 422, "amount", payment(c, amount="ten")),
        "lower-case currency": Bad("POST", "/payments", 422, "currency",
                                   payment(c, currency="eur")),
        "unknown id in the path": Bad("POST", f"/agreements/{UNKNOWN}/fulfil", 404,
                                      "path.agreement_id", {}),
        "unknown client in the path": Bad("POST", f"/clients/{UNKNOWN}/contacts", 404,
                                          "path.client_id", contact()),
        "unknown contact person in the path": Bad(
            "PATCH", f"/clients/{c}/contact-persons/{UNKNOWN}", 404, "path.person_id",
            {"name": "Eva"}),
        "malformed id in the path": Bad("POST", "/agreements/not-a-uuid/fulfil", 422,
                                        "path.agreement_id", {}),
        "unknown id in the body": Bad("POST", "/complaints", 422, "client_id",
                                      {"client_id": UNKNOWN, "text": "noise"}),
        "unknown situation in the body": Bad("POST", f"/clients/{c}/contacts", 422,
                                             "situation_id", contact(situation_id=UNKNOWN)),
        "unknown specialist in a PATCH": Bad("PATCH", f"/clients/{c}", 422, "specialist_id",
                                             {"specialist_id": UNKNOWN}),
        "unknown contact person in the body": Bad("POST", f"/clients/{c}/contacts", 422,
                                                  "contact_person_id",
                                                  contact(contact_person_id=UNKNOWN)),
        "unknown template in the body": Bad("POST", "/surveys", 422, "template_id", {
            "work_order_id": s.work_order(closed=True), "template_id": UNKNOWN,
            "interviewer": "ivy"}),
        "unknown question": Bad("POST", f"/surveys/{survey}/ticks", 422, "question_id",
                                {"question_id": "q-coffee", "ticked": False}),
        "rating out of range": Bad("POST", f"/works/{s.work(completed=True)}/feedback", 422,
                                   "rating", {"rating": 6}),
        "missing required field": Bad("POST", f"/clients/{c}/contacts", 422, "topic",
                                      {"channel": "phone", "direction": "inbound"}),
        "text too long": Bad("POST", f"/clients/{c}/contacts", 422, "topic",
                             contact(topic="x" * 201)),
        "unknown extra field": Bad("POST", f"/clients/{c}/contacts", 422, "mood",
                                   contact(mood="angry")),
        "malformed JSON": Bad("POST", "/clients", 422, "body", content=b'{"kind": "cust',
                              headers={"content-type": "application/json"}),
        "JSON that is not an object": Bad("POST", "/clients", 422, "body", json=[1, 2]),
        "wrong content type": Bad("POST", "/clients", 422, "body",
                                  content=b"kind=customer&form=person&name=Ann",
                                  headers={"content-type": "application/x-www-form-urlencoded"}),
        "empty PATCH": Bad("PATCH", f"/clients/{c}", 422, "body", {}),
        "PATCH without a body": Bad("PATCH", f"/clients/{c}", 422, "body"),
        "malformed If-Match": Bad("POST", f"/agreements/{agreement}/fulfil", 422, "If-Match",
                                  {}, headers={"If-Match": "yesterday"}),
    }


def answer_problems(api: Api, name: str, bad: Bad) -> list[str]:
    """What is wrong with the answer to one bad request (empty when it is right)."""
    before = store_count(api.container)
    kwargs: dict[str, Any] = {"headers": bad.headers, "as_": bad.as_}
    if bad.content is not None:
        kwargs["content"] = bad.content
    elif bad.json is not None:
        kwargs["json"] = bad.json
    response = api.request(bad.method, "/v1" + bad.path, **kwargs)
    found: list[str] = []
    if response.status_code != bad.status:
        found.append(f"status {response.status_code}, not {bad.status}: {response.text}")
    if response.headers.get("content-type") != "application/problem+json":
        found.append(f"content type {response.headers.get('content-type')}")
    body = response.json()
    fields = [e.get("field") for e in body.get("errors", [])]
    if bad.field not in fields:
        found.append(f"errors name {fields}, not {bad.field!r}: {body}")
    if body.get("status") != response.status_code:
        found.append(f"problem status {body.get('status')}")
    if store_count(api.container) != before:
        found.append("an event was appended")
    return [f"{name}: {f}" for f in found]


def test_every_kind_of_bad_input_is_a_problem_naming_the_field_and_writes_nothing(
        any_api: Api) -> None:
    story = Story(any_api)
    problems = [p for name, bad in cases(story).items()
                for p in answer_problems(any_api, name, bad)]
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def refusing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """One app for requests that must all be refused: nothing is written through it."""
    built = build(Settings(database_url=f"sqlite:///{tmp_path_factory.mktemp('bad')}/crm.db"))
    yield Api(built)
    built.close()


@pytest.mark.parametrize("body", [
    {"kind": "customer", "form": "person", "name": "Ann", "phones": "not a list"},
    {"kind": "customer", "form": "person", "name": None},
    {"kind": ["customer"], "form": "person", "name": "Ann"},
    {"kind": "customer", "form": "person", "name": "Ann", "id": 12},
    {"kind": "customer", "form": "person", "name": "Ann", "emails": ["no-at-sign"]},
    {"kind": "customer", "form": "person", "name": "\u0000" * 300},
])
def test_odd_shapes_never_give_a_500(refusing: Api, body: dict[str, Any]) -> None:
    response = refusing.post("/v1/clients", body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert store_count(refusing.container) == 0
