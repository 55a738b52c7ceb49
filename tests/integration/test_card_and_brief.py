"""The full client card and the contact brief per purpose, at `at` as known at `as_of`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from commands import activity as act
from commands import clients as cl
from domain.values import ContactPurpose
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.rebuild import replay_and_compare
from infra.settings import Settings
from projections.client_views import BRIEF_SECTIONS, full_card
from tests.integration.remote_world import World, t
from tests.support import Api

AT = "2028-03-10T12:00:00+00:00"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-03-10 12:00"))


@pytest.fixture
def world(sqlite_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(sqlite_settings, clock=clock)
    yield World(container)
    container.close()


@pytest.fixture
def api(world: World) -> Api:
    return Api(world.container)


def person(world: World, client: UUID, name: str, role: str, **fields: Any) -> UUID:
    result = world.run(cl.AddContactPerson(client_id=client, name=name, role=role,
                                           occurred_at=t("2028-01-02"), **fields))
    return result.results[0].links["person_id"]


@pytest.fixture
def acme(world: World) -> dict[str, Any]:
    """A complete organisation with contacts, plans, agreements, invoices and payments."""
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    acme = world.client("Acme GmbH", specialist=ann, phones=["+49 30 1234"],
                        emails=["info@acme.example"], address="Main 1, Berlin", tax_id="DE123")
    eve = person(world, acme, "Eve Boss", "decision_maker", phones=["+49 30 1"])
    tom = person(world, acme, "Tom Day", "contact", emails=["tom@acme.example"])
    world.reassign(acme, bob, "2028-03-01 09:00")
    world.run(cl.NoteInterest(client_id=acme, text="Also keeps books for a small firm",
                              occurred_at=t("2028-02-01")))
    world.contact(acme, "Price list", "2028-02-20 10:00")  # older than two weeks
    world.contact(acme, "Kick-off", "2028-03-02 10:00", channel="meeting")
    world.contact(acme, "Invoice question", "2028-03-08 15:00", purpose="payment_delay")
    regular = world.planned(acme, "regular", due="2028-03-09 10:00", at="2028-03-01 10:00")
    first = world.planned(acme, "first_meeting", due="2028-03-15 10:00",
                          at="2028-03-01 10:00")
    late = world.agreement(acme, "Send the signed contract", due="2028-03-05", at="2028-03-02")
    later = world.agreement(acme, "Call about the tariff", due="2028-03-20", at="2028-03-02")
    kept = world.agreement(acme, "Send the price list", due="2028-03-04", at="2028-03-02")
    world.run(act.FulfilAgreement(agreement_id=kept, occurred_at=t("2028-03-03")))
    one = world.invoice(acme, "INV-1", "100.00", issued="2028-02-01", due="2028-03-01")
    two = world.invoice(acme, "INV-2", "200.00", issued="2028-02-01", due="2028-03-05")
    world.invoice(acme, "INV-3", "300.00", issued="2028-03-01", due="2028-03-20")
    four = world.invoice(acme, "INV-4", "80.00", issued="2028-02-15", due="2028-03-07")
    world.pay(acme, "100.00", "2028-02-28 10:00", invoice=one)  # on time
    world.pay(acme, "150.00", "2028-03-04 10:00", invoice=two)
    world.pay(acme, "50.00", "2028-03-06 10:00", invoice=two)  # completed a day late
    world.act_sent(one, "2028-02-02 10:00")
    work = world.work(acme, "Set up the ledger", at="2028-03-01")
    world.run(act.CompleteWork(work_id=work, occurred_at=t("2028-03-03")))
    world.run(act.GiveFeedback(work_id=work, rating=4, occurred_at=t("2028-03-04")))
    return {"id": acme, "ann": ann, "bob": bob, "eve": eve, "tom": tom, "regular": regular,
            "first": first, "late": late, "later": later, "one": one, "two": two,
            "four": four}


def test_full_card_shows_every_section_of_the_design(api: Api, acme: dict[str, Any]) -> None:
    card = api.ok("GET", f"/v1/clients/{acme['id']}/card", params={"at": AT})
    assert card["profile"] == {"kind": "customer", "form": "organisation", "name": "Acme GmbH",
                               "tax_id": "DE123", "phones": ["+49 30 1234"],
                               "emails": ["info@acme.example"], "address": "Main 1, Berlin",
                               "tags": []}
    persons = card["contact_persons"]
    assert [p["name"] for p in persons["decision_maker"]] == ["Eve Boss"]
    assert [p["person_id"] for p in persons["contact"]] == [str(acme["tom"])]
    assert persons["influencer"] == persons["user"] == []
    assert card["specialist_id"] == str(acme["bob"])
    assert (card["last_contact"]["topic"], card["last_contact"]["at"]) == (
        "Invoice question", "2028-03-08T15:00:00+00:00")
    assert card["next_planned_contact"]["planned_contact_id"] == str(acme["regular"])
    assert card["next_planned_contact"]["overdue"] is True
    assert [a["agreement_id"] for a in card["open_agreements"]] == [
        str(acme["late"]), str(acme["later"])]
    assert [a["text"] for a in card["overdue_agreements"]] == ["Send the signed contract"]
    # INV-1 paid by its due date; INV-2 completed late; INV-4 unpaid; INV-3 not due yet.
    assert card["payment_regularity"] == {"on_time": 1, "due": 3, "percent": "33.33"}
    assert card["interests"] == ["Also keeps books for a small firm"]
    assert card["completeness"]["score"] == "100.00"
    assert card["completeness"]["missing"] == []
    # No situations or surveys in this world; its last contact was days ago.
    assert (card["open_situations"], card["satisfaction_history"], card["segment"]) == (
        [], [], "active")

    # On the 1st (before the reassignment at 09:00) Ann was the specialist and the regularity
    # counted INV-1 only.
    earlier = api.ok("GET", f"/v1/clients/{acme['id']}/card",
                     params={"at": "2028-03-01T08:00:00+00:00"})
    assert earlier["specialist_id"] == str(acme["ann"])
    assert earlier["payment_regularity"] == {"on_time": 1, "due": 1, "percent": "100.00"}
    assert earlier["next_planned_contact"] is None  # planned later that day
    assert earlier["last_contact"]["topic"] == "Price list"


def test_card_as_of_ignores_later_recorded_events_even_with_earlier_business_time(
        world: World, clock: ManualClock, api: Api) -> None:
    clock.set(t("2028-03-05 12:00"))
    acme = world.client("Acme GmbH", at="2028-03-01")
    world.contact(acme, "First call", "2028-03-05 09:00")
    clock.set(t("2028-03-12 12:00"))
    world.contact(acme, "Late-entered call", "2028-03-08 10:00")  # entered four days late
    world.run(cl.UpdateClient(client_id=acme, name="Acme AG", occurred_at=t("2028-03-12")))
    person(world, acme, "Eve Boss", "decision_maker")
    world.sync()  # written through the commands, not the API: no session mark to wait on

    path = f"/v1/clients/{acme}/card"
    then = api.ok("GET", path, params={"at": "2028-03-12T12:00:00+00:00",
                                       "as_of": "2028-03-10T00:00:00+00:00"})
    assert (then["profile"]["name"], then["last_contact"]["topic"]) == (
        "Acme GmbH", "First call")
    assert then["contact_persons"]["decision_maker"] == []
    now = api.ok("GET", path, params={"at": "2028-03-12T12:00:00+00:00"})
    assert (now["profile"]["name"], now["last_contact"]["topic"]) == (
        "Acme AG", "Late-entered call")
    assert [p["name"] for p in now["contact_persons"]["decision_maker"]] == ["Eve Boss"]
    assert api.get(path, params={"as_of": "2028-03-10T00:00:00"}).status_code == 422
    assert api.get(f"/v1/clients/{acme}/card", params={
        "as_of": "2028-02-01T00:00:00+00:00"}).status_code == 404  # not known yet


def test_first_meeting_brief_has_only_what_that_meeting_needs(
        world: World, api: Api, acme: dict[str, Any]) -> None:
    found = api.ok("GET", f"/v1/clients/{acme['id']}/brief",
                   params={"purpose": "first_meeting", "at": AT})
    assert found["sections"] == ["last_meeting", "plan", "payment_regularity",
                                 "open_agreements", "missing", "decision_makers",
                                 "recent_topics"]
    assert set(found) == {"client_id", "purpose", "at", "as_of", "name", "form", "kind",
                          "specialist_id", "sections", *found["sections"]}
    assert found["last_meeting"]["topic"] == "Kick-off"
    assert found["plan"]["planned_contact_id"] == str(acme["first"])
    assert found["plan"]["overdue"] is False
    assert found["payment_regularity"]["percent"] == "33.33"
    assert [a["text"] for a in found["open_agreements"]] == [
        "Send the signed contract", "Call about the tariff"]
    assert found["missing"] == {"client": [], "decision_maker": ["email"]}
    assert [p["name"] for p in found["decision_makers"]] == ["Eve Boss"]
    # The 14 days before the 10th, latest first: the call on 20 February is older.
    assert [c["topic"] for c in found["recent_topics"]] == ["Invoice question", "Kick-off"]

    beta = world.client("Beta", phones=["+49 30 5"])
    world.sync()
    bare = api.ok("GET", f"/v1/clients/{beta}/brief",
                  params={"purpose": "first_meeting", "at": AT})
    assert bare["missing"] == {"client": ["email", "address", "tax_id"],
                               "decision_maker": ["contact_person"]}
    assert (bare["plan"], bare["last_meeting"], bare["recent_topics"]) == (None, None, [])


def test_payment_delay_brief_lists_overdue_invoices_and_recent_payments(
        api: Api, acme: dict[str, Any]) -> None:
    found = api.ok("GET", f"/v1/clients/{acme['id']}/brief",
                   params={"purpose": "payment_delay", "at": AT})
    assert found["sections"] == ["plan", "overdue_invoices", "payments_last_90_days",
                                 "payment_regularity", "open_agreements"]
    assert [(i["number"], i["amount"], i["outstanding"]) for i in found["overdue_invoices"]] == [
        ("INV-4", "80.00", "80.00")]
    assert [(p["at"], p["amount"]) for p in found["payments_last_90_days"]] == [
        ("2028-02-28T10:00:00+00:00", "100.00"), ("2028-03-04T10:00:00+00:00", "150.00"),
        ("2028-03-06T10:00:00+00:00", "50.00")]
    assert found["plan"] is None  # no payment-delay contact is planned
    assert "decision_makers" not in found and "recent_topics" not in found
    acts = api.ok("GET", f"/v1/clients/{acme['id']}/brief",
                  params={"purpose": "acts_not_returned", "at": AT})
    assert [a["number"] for a in acts["acts_not_returned"]] == ["INV-1"]


def test_every_purpose_has_a_brief_with_exactly_its_sections(
        api: Api, acme: dict[str, Any]) -> None:
    for purpose, sections in BRIEF_SECTIONS.items():
        found = api.ok("GET", f"/v1/clients/{acme['id']}/brief",
                       params={"purpose": purpose, "at": AT})
        assert found["sections"] == list(sections)
        assert set(found) - set(sections) == {"client_id", "purpose", "at", "as_of", "name",
                                              "form", "kind", "specialist_id", "sections"}
    assert set(BRIEF_SECTIONS) == {str(p) for p in ContactPurpose} | {"visit"}  # reception
    renewal = api.ok("GET", f"/v1/clients/{acme['id']}/brief",
                     params={"purpose": "contract_renewal", "at": AT})
    assert [(w["text"], w["completed_at"], w["rating"]) for w in renewal["works"]] == [
        ("Set up the ledger", "2028-03-03T00:00:00+00:00", 4)]
    planned = api.ok("GET", f"/v1/clients/{acme['id']}/brief", params={
        "purpose": "regular", "at": AT, "planned_contact_id": str(acme["first"])})
    assert planned["plan"]["purpose"] == "first_meeting"  # the one named wins


def test_brief_rejects_an_unknown_purpose_client_or_reader(api: Api, acme: dict[str, Any]
                                                           ) -> None:
    path = f"/v1/clients/{acme['id']}/brief"
    assert api.get(path, params={"purpose": "gossip"}).status_code == 422
    assert api.get(path, params={"purpose": "regular"}, as_="analyst").status_code == 403
    assert api.get(f"/v1/clients/{acme['eve']}/brief",
                   params={"purpose": "regular"}).status_code == 404
    assert api.get(f"/v1/clients/{acme['id']}/card", as_="analyst").status_code == 403


def test_an_erased_client_shows_no_personal_data(world: World, api: Api,
                                                 acme: dict[str, Any]) -> None:
    world.sync()  # the history is projected before the client's key is destroyed
    erased = api.ok("POST", f"/v1/clients/{acme['id']}/erase", {"reason": "GDPR request"},
                    as_="admin")
    card = api.ok("GET", f"/v1/clients/{acme['id']}/card",
                  params={"at": AT, "min_position": erased["position"]})
    assert card["erased"] is True
    assert (card["profile"]["name"], card["profile"]["phones"], card["interests"]) == (
        "[erased]", [], [])
    assert [p["name"] for p in card["contact_persons"]["decision_maker"]] == ["[erased]"]
    assert card["open_agreements"][0]["text"] is None
    assert "Eve" not in str(card) and "+49" not in str(card)


def test_card_and_brief_on_both_backends(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", {
        "kind": "customer", "form": "person", "name": "Ann Lee", "phones": ["+49 30 1234"],
        "occurred_at": "2026-10-01T09:00:00+00:00"})
    cid = client["id"]
    any_api.ok("POST", f"/v1/clients/{cid}/contacts", {
        "channel": "meeting", "direction": "outbound", "topic": "Needs",
        "occurred_at": "2026-10-02T09:00:00+00:00"})
    planned = any_api.ok("POST", f"/v1/clients/{cid}/planned-contacts", {
        "purpose": "needs_discovery", "due_at": "2026-10-09T09:00:00+00:00",
        "occurred_at": "2026-10-02T09:30:00+00:00"})
    at = {"at": "2026-10-05T09:00:00+00:00", "min_position": planned["position"]}
    card = any_api.ok("GET", f"/v1/clients/{cid}/card", params=at)
    assert card["last_contact"]["topic"] == "Needs"
    assert card["next_planned_contact"]["planned_contact_id"] == planned["id"]
    assert card["completeness"] == {"score": "50.00", "missing": ["address", "tax_id"],
                                    "checklist": ["name", "phone_or_email", "address",
                                                  "tax_id"]}
    brief = any_api.ok("GET", f"/v1/clients/{cid}/brief",
                       params={**at, "purpose": "needs_discovery"})
    assert brief["plan"]["planned_contact_id"] == planned["id"]
    assert brief["missing"] == {"client": ["address", "tax_id"], "decision_maker": []}
    assert [c["topic"] for c in brief["recent_topics"]] == ["Needs"]


def test_replay_gives_the_live_digests_after_an_erasure_on_both_backends(
        any_settings: Settings) -> None:
    container = build(any_settings, clock=ManualClock(t("2028-03-10 12:00")))
    try:
        world = World(container)
        ann = world.specialist("Ann")
        keep = world.client("Keep AG", specialist=ann, phones=["+49 1"], tax_id="DE1")
        gone = world.client("Gone GmbH", specialist=ann, phones=["+49 2"], tax_id="DE2")
        for client in (keep, gone):
            eve = person(world, client, "Eve", "decision_maker", phones=["+49 3"])
            world.run(cl.UpdateContactPerson(client_id=client, person_id=eve, role="contact",
                                             occurred_at=t("2028-01-03")))
            world.run(cl.UpdateClient(client_id=client, kind="partner", address="Main 1",
                                      occurred_at=t("2028-01-04")))
            world.run(cl.NoteInterest(client_id=client, text="Books",
                                      occurred_at=t("2028-01-05")))
            world.agreement(client, "Send it", due="2028-02-01", at="2028-01-10")
            planned = world.planned(client, "regular", due="2028-02-01", at="2028-01-10",
                                    note="Ask about books")
            world.contact(client, "Call", "2028-02-01 10:00", planned_contact_id=planned,
                          summary="Talked about books")
            invoice = world.invoice(client, "INV", "10.00", issued="2028-01-10",
                                    due="2028-02-10")
            world.pay(client, "10.00", "2028-02-05 10:00", invoice=invoice)
        world.sync()
        world.run(cl.EraseClient(client_id=gone, reason="request"))
        world.sync()
        outcomes = replay_and_compare(container, ["client_directory", "activity", "payments"])
        assert [(o.receipt.projection, o.matches, o.difference) for o in outcomes] == [
            ("client_directory", True, None), ("activity", True, None),
            ("payments", True, None)]
        with container.engine.connect() as conn:
            card = full_card(conn, gone, at=t("2028-03-10 12:00"), as_of=None)
        assert card is not None
        # Only the personal values of a change set are sealed, so the non-personal change
        # (kind) outlives the erasure; the address it set does not.
        assert (card["profile"]["name"], card["profile"]["kind"], card["profile"]["address"],
                card["erased"]) == ("[erased]", "partner", None, True)
    finally:
        container.close()


def test_the_card_links_open_situations_satisfaction_history_and_segment(api: Api) -> None:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                            "name": "Linked"})
    cid = client["id"]
    order = api.ok("POST", "/v1/work-orders", {"client_id": cid, "asset": "car",
                                               "stages": ["booking", "repair"],
                                               "occurred_at": "2026-09-01T09:00:00+00:00"})
    api.ok("POST", f"/v1/work-orders/{order['id']}/close",
           {"amount": "100.00", "currency": "EUR", "occurred_at": "2026-09-02T09:00:00+00:00"})
    template = api.ok("POST", "/v1/survey-templates", {"name": "t", "questions": [
        {"id": "q1", "text": "Booking easy?", "stage": "booking"},
        {"id": "q2", "text": "Repair good?", "stage": "repair"}]}, as_="admin")
    survey = api.ok("POST", "/v1/surveys", {"work_order_id": order["id"],
                                            "template_id": template["id"], "interviewer": "i",
                                            "occurred_at": "2026-09-05T10:00:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/ticks",
           {"question_id": "q2", "ticked": False, "occurred_at": "2026-09-05T10:01:00+00:00"})
    done = api.ok("POST", f"/v1/surveys/{survey['id']}/complete",
                  {"outcome": "completed", "occurred_at": "2026-09-05T10:02:00+00:00"})
    card = api.ok("GET", f"/v1/clients/{cid}/card",
                  params={"min_position": done["position"], "at": "2026-10-01T00:00:00+00:00"})
    assert [s["situation_id"] for s in card["open_situations"]] == [done["links"]["situation_id"]]
    assert card["open_situations"][0]["kind"] == "survey_dissatisfaction"
    history = card["satisfaction_history"]
    assert [(h["survey_id"], h["satisfied"], h["answered"]) for h in history] == [
        (survey["id"], 1, 2)]
    assert card["segment"] == "active"
    resolved = api.ok("POST", f"/v1/situations/{done['links']['situation_id']}/resolve",
                      {"resolution": "called back", "occurred_at": "2026-09-06T10:00:00+00:00"})
    later = api.ok("GET", f"/v1/clients/{cid}/card",
                   params={"min_position": resolved["position"],
                           "at": "2028-01-01T00:00:00+00:00"})
    assert later["open_situations"] == [] and later["segment"] == "lost"
