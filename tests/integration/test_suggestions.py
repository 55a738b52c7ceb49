"""Suggestions (issue 18.6): a client's next actions and the specialists to take the client,
ranked with reasons, exact under `at` and `as_of`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from commands import activity as act
from commands.service import RegisterComplaint
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.suggestions import suggested_specialists, suggestions
from tests.integration.remote_world import World, t
from tests.support import Api


@pytest.fixture
def world(any_settings: Settings) -> Iterator[tuple[World, ManualClock]]:
    clock = ManualClock(t("2028-05-30 12:00"))
    container = build(any_settings, clock=clock)
    yield World(container), clock
    container.close()


def story(world: World, clock: ManualClock) -> dict[str, Any]:
    ann, bob, cid = (world.specialist(n) for n in ("Ann", "Bob", "Cid"))
    acme = world.client("Acme", specialist=bob, at="2028-01-01")
    beta = world.client("Beta", specialist=cid, at="2028-01-01")
    world.contact(acme, "Hello", "2028-02-01 10:00", purpose="regular", specialist_id=bob)
    for day in (3, 4, 5):
        world.contact(beta, "Your invoice", f"2028-04-0{day} 10:00", purpose="payment_delay",
                      specialist_id=cid)
    world.invoice(acme, "INV-1", "100.00", issued="2028-03-01", due="2028-04-01")
    world.contact(acme, "About the delay", "2028-05-10 10:00", purpose="complaint",
                  specialist_id=ann)
    promise = world.agreement(acme, "Pay the invoice", due="2028-05-24", at="2028-05-10")
    world.run(act.BreakAgreement(agreement_id=promise, occurred_at=t("2028-05-25 10:00")))
    world.run(RegisterComplaint(client_id=acme, text="Nobody called back",
                                occurred_at=t("2028-05-20 10:00")))
    callback = world.planned(acme, "regular", due="2028-05-29 10:00", at="2028-05-20",
                             specialist_id=ann)
    # Acme moved from Bob to Ann on 1 March, entered on 31 May.
    clock.set(t("2028-05-31 12:00"))
    world.reassign(acme, ann, at="2028-03-01")
    clock.set(t("2028-06-01 12:00"))
    return {"ann": ann, "bob": bob, "cid": cid, "acme": acme, "promise": promise,
            "callback": callback}


def test_next_actions_are_ranked_with_their_rule_and_facts(
        world: tuple[World, ManualClock]) -> None:
    w, clock = world
    s = story(w, clock)
    with w.conn() as conn:
        found = suggestions(conn, s["acme"], at=t("2028-06-01 12:00"), as_of=None)
    items = found["items"]
    assert [(i["rule"], i["action"], i["priority"]) for i in items] == [
        ("overdue_callback", "regular", 103),  # 3 days overdue
        ("dissatisfaction", "complaint", 90),
        ("broken_promise", "regular", 80),
        ("debt", "payment_delay", 76)]  # 61 days past due: +6
    assert items[0]["reason"]["planned_contact_id"] == s["callback"]
    assert items[2]["reason"]["agreements"] == [s["promise"]]
    # Two complaint situations: the contact of purpose `complaint` on 10 May opened one.
    assert [x["kind"] for x in items[1]["reason"]["situations"]] == ["complaint", "complaint"]
    # On 21 May: the callback was not due, the promise not broken; the debt is 50 days old.
    with w.conn() as conn:
        earlier = suggestions(conn, s["acme"], at=t("2028-05-21 12:00"), as_of=None)
    assert [(i["rule"], i["priority"]) for i in earlier["items"]] == [
        ("dissatisfaction", 90), ("debt", 75)]


def test_specialists_ranked_by_competence_history_and_assignment(
        world: tuple[World, ManualClock]) -> None:
    w, clock = world
    s = story(w, clock)
    with w.conn() as conn:
        found = suggested_specialists(conn, s["acme"], at=t("2028-06-01 12:00"), as_of=None,
                                      tz="UTC")
        before = suggested_specialists(conn, s["acme"], at=t("2028-06-01 12:00"),
                                       as_of=t("2028-05-30 12:00"), tz="UTC")
    assert found["needs"] == ["regular", "complaint", "payment_delay"]
    ranked = [(i["specialist_id"], i["points"]) for i in found["items"]]
    # Ann: a complaint contact (1), one contact with Acme (1), assigned (5); the promise her
    # client broke gives a kept rate of 0%: no points. Bob: a regular contact (1), history (1),
    # assigned before (2). Cid: three payment_delay contacts (3).
    assert ranked == [(s["ann"], 7), (s["bob"], 4), (s["cid"], 3)]
    ann = found["items"][0]["reasons"]
    assert ann == [{"rule": "competence", "purpose": "complaint", "contacts": 1, "points": 1},
                   {"rule": "history", "contacts": 1, "points": 1},
                   {"rule": "assigned", "points": 5}]
    # Known on 30 May, before the reassignment was entered: Bob is still Acme's specialist.
    assert [(i["specialist_id"], i["points"]) for i in before["items"]] == [
        (s["bob"], 7), (s["cid"], 3), (s["ann"], 2)]


def test_suggestion_routes(any_api: Api) -> None:
    api = any_api
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Bo",
                                            "occurred_at": "2026-01-01T09:00:00+00:00"})
    planned = api.ok("POST", f"/v1/clients/{client['id']}/planned-contacts", {
        "purpose": "contract_renewal", "due_at": "2026-01-05T09:00:00+00:00",
        "occurred_at": "2026-01-02T09:00:00+00:00"})
    params = {"at": "2026-01-07T10:00:00+00:00", "min_position": planned["position"]}
    found = api.ok("GET", f"/v1/clients/{client['id']}/suggestions", params=params)
    assert [(i["rule"], i["action"], i["priority"]) for i in found["items"]] == [
        ("overdue_callback", "contract_renewal", 102), ("no_contact", "regular", 50)]
    assert found["items"][0]["reason"]["planned_contact_id"] == planned["id"]
    specialists = api.ok("GET", f"/v1/clients/{client['id']}/suggested-specialists",
                         params=params)
    assert specialists["needs"] == ["contract_renewal", "regular"]
    assert specialists["items"] == []  # nobody has a record to weigh yet
    unknown = "00000000-0000-4000-8000-000000000000"
    assert api.get(f"/v1/clients/{unknown}/suggestions").status_code == 404
    assert api.get(f"/v1/clients/{client['id']}/suggestions",
                   as_="analyst").status_code == 403
