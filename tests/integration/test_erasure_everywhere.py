"""Erasure (§8) end to end: after it, no route, replay, export or Kafka consumer shows a personal
value of the client; report figures are unchanged; the hash chain verifies. The analyst role never
receives personal data at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consumers.projector import wait_for_position
from infra.chain import verify_store
from infra.export import export_lines
from infra.rebuild import replay_and_compare
from projections.replay import state_digest
from tests.integration.bus_support import (
    Worker,
    projector_for,
    read_model,
    read_topic,
    relay_for,
    unique_topics,
    workers,
)
from tests.kafka_broker import BrokerHandle, kafka_broker  # noqa: F401
from tests.support import Api

NAME, PHONE, PERSON = "Philippa Entwistle", "+44 7700 900555", "Barnaby Quist"
COMMENT, COMPLAINT = "the receptionist mocked me", "my gearbox still grinds"
TOPIC, REFERENCE = "Entwistle divorce papers", "ENTWISTLE P GARAGE OCT"  # sealed since v2
SECRETS = (NAME, PHONE, PERSON, COMMENT, COMPLAINT, TOPIC, REFERENCE)
REPORTS = ("/v1/reports/satisfaction", "/v1/reports/segments", "/v1/reports/payments",
           "/v1/reports/reaction-times", "/v1/reports/controls", "/v1/situations",
           "/v1/work-orders")
AT = {"at": "2026-10-20T00:00:00+00:00", "as_of": "2099-01-01T00:00:00+00:00",
      "month": "2026-10", "from": "2026-10-01T00:00:00+00:00", "to": "2026-10-31T00:00:00+00:00"}


def _history(api: Api) -> str:
    cid = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": NAME,
                                         "phones": [PHONE]})["id"]
    api.ok("POST", f"/v1/clients/{cid}/contact-persons", {"name": PERSON, "role": "contact"})
    api.ok("POST", f"/v1/clients/{cid}/contacts", {"channel": "phone", "direction": "inbound",
                                                   "topic": TOPIC,
                                                   "occurred_at": "2026-09-30T09:00:00+00:00"})
    order = api.ok("POST", "/v1/work-orders", {"client_id": cid, "asset": "car",
                                               "stages": ["reception", "repair"],
                                               "occurred_at": "2026-10-01T09:00:00+00:00"})
    api.ok("POST", f"/v1/work-orders/{order['id']}/close", {
        "amount": "320.00", "currency": "EUR", "occurred_at": "2026-10-02T09:00:00+00:00"})
    template = api.ok("POST", "/v1/survey-templates", {"name": "t", "questions": [
        {"id": "r1", "text": "Welcome?", "stage": "reception"},
        {"id": "q1", "text": "Fixed?", "stage": "repair"}]}, as_="admin")
    survey = api.ok("POST", "/v1/surveys", {"work_order_id": order["id"],
                                            "template_id": template["id"], "interviewer": "iv",
                                            "occurred_at": "2026-10-05T10:00:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/ticks", {
        "question_id": "r1", "ticked": False, "occurred_at": "2026-10-05T10:01:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/complete", {
        "outcome": "completed", "comment": COMMENT, "occurred_at": "2026-10-05T10:02:00+00:00"})
    api.ok("POST", "/v1/complaints", {"client_id": cid, "text": COMPLAINT, "stage": "repair",
                                      "work_order_id": order["id"],
                                      "occurred_at": "2026-10-06T08:00:00+00:00"})
    api.ok("POST", "/v1/payments", {"client_id": cid, "amount": "320.00", "currency": "EUR",
                                    "reference": REFERENCE,
                                    "occurred_at": "2026-10-07T08:00:00+00:00"})
    return str(cid)


def _reports(api: Api) -> dict[str, Any]:
    return {path: api.ok("GET", path, params=AT, as_="analyst") for path in REPORTS
            if path != "/v1/work-orders"}


def _client_reads(api: Api, cid: str) -> str:
    paths = [f"/v1/clients/{cid}/card", f"/v1/clients/{cid}/events",
             f"/v1/clients/{cid}/brief?purpose=complaint", "/v1/clients?q=Phil",
             "/v1/work-orders", "/v1/audit/events"]
    return "".join(api.get(p, as_="admin").text for p in paths)


def test_erasure_reaches_every_route_replay_export_and_kafka(
        api: Api, kafka_broker: BrokerHandle, tmp_path: Path) -> None:  # noqa: F811
    cid = _history(api)
    api.container.follower.wait_for(api.store_position(), 10)
    assert NAME in _client_reads(api, cid)  # visible before, to those allowed to see it
    analyst = "".join(api.get(p, as_="analyst", params=AT).text for p in REPORTS
                      if api.get(p, as_="analyst").status_code == 200)
    assert not any(secret in analyst for secret in SECRETS)  # never for the analyst
    before = _reports(api)

    erased = api.ok("POST", f"/v1/clients/{cid}/erase", {"reason": "GDPR request"}, as_="admin")
    api.container.follower.wait_for(erased["position"], 10)
    after_reads = _client_reads(api, cid)
    assert "[erased]" in after_reads
    for secret in SECRETS:
        assert secret not in after_reads, secret
    after = _reports(api)
    for path, report in before.items():
        if path == "/v1/reports/controls":
            diff = {k for k in report if report[k] != after[path][k]}
            assert diff <= {"card_completeness"}, diff
        else:
            assert after[path] == report, path  # counts, durations and money unchanged
    assert verify_store(api.container.app).ok
    assert all(o.matches for o in replay_and_compare(api.container))
    exported = b"".join(export_lines(api.container))
    assert not any(secret.encode() in exported for secret in SECRETS)

    # A Kafka consumer fed after the erasure cannot read the client's personal fields either.
    topics = unique_topics()
    relay = relay_for(api, kafka_broker.bootstrap, topics)
    engine, runner = read_model(tmp_path, "consumer", personal=api.container.keyring)
    projector = projector_for(api, runner, kafka_broker.bootstrap, topics)
    with workers() as running:
        running.append(Worker(relay.run, "relay"))
        running.append(Worker(projector.run, "projector"))
        assert wait_for_position(runner, api.store_position(), 30.0), projector.last_error
    records = read_topic(kafka_broker.bootstrap, topics.events)
    assert records and not any(s.encode() in r.value for r in records for s in SECRETS)
    with engine.connect() as left, api.container.engine.connect() as right:
        from projections.card import ClientCard

        assert state_digest(left, ClientCard.tables) == state_digest(right, ClientCard.tables)
