"""The embedded default survives a restart: a new container on the same SQLite file finds it all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from infra.bootstrap import build
from infra.settings import Settings
from tests.support import Api, store_count


def first_run(settings: Settings) -> dict[str, Any]:
    container = build(settings)
    try:
        api = Api(container)
        client = api.ok("POST", "/v1/clients", {
            "kind": "customer", "form": "organisation", "name": "Acme GmbH",
            "phones": ["+49 30 1234"], "occurred_at": "2026-11-02T08:00:00+01:00"})
        person = api.ok("POST", f"/v1/clients/{client['id']}/contact-persons", {
            "name": "Eva Chef", "role": "decision_maker"})
        contact = api.request("POST", f"/v1/clients/{client['id']}/contacts", json={
            "channel": "phone", "direction": "inbound", "topic": "renewal terms",
            "occurred_at": "2026-11-20T10:00:00+01:00"},
            headers={"Idempotency-Key": "call-1"})
        assert contact.status_code == 201
        events = api.ok("GET", f"/v1/clients/{client['id']}/events",
                        params={"min_position": contact.json()["position"]})["items"]
        card = api.ok("GET", f"/v1/clients/{client['id']}/card")
        return {"client": client["id"], "person": person["links"]["person_id"],
                "contact": contact.json(), "events": events, "card": card,
                "count": store_count(container)}
    finally:
        container.close()


def test_a_restart_on_the_same_file_finds_the_events_and_the_card(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/data/crm.db")
    before = first_run(settings)
    assert before["count"] == 4  # registered, person added, contact logged, the key's record

    again = build(settings)
    try:
        api = Api(again)
        client = before["client"]
        assert store_count(again) == before["count"]
        events = api.ok("GET", f"/v1/clients/{client}/events")["items"]
        assert events == before["events"]
        assert [e["type"] for e in events] == [
            "ClientRegistered", "ContactPersonAdded", "ContactLogged"]
        card = api.ok("GET", f"/v1/clients/{client}/card")
        assert card["profile"]["name"] == "Acme GmbH"
        assert card["profile"]["phones"] == ["+49 30 1234"]
        assert [p["person_id"] for p in card["contact_persons"]["decision_maker"]] == [
            before["person"]]
        assert card["last_contact"]["topic"] == "renewal terms"
        assert card["last_contact"]["at"] == "2026-11-20T09:00:00+00:00"

        # The keyed retry after the restart still gets the first answer.
        retry = api.request("POST", f"/v1/clients/{client}/contacts", json={
            "channel": "phone", "direction": "inbound", "topic": "renewal terms",
            "occurred_at": "2026-11-20T10:00:00+01:00"}, headers={"Idempotency-Key": "call-1"})
        assert retry.json() == before["contact"]
        assert retry.headers["idempotent-replayed"] == "true"

        # Positions and versions go on from where they were.
        noted = api.ok("POST", f"/v1/clients/{client}/interests", {"text": "fleet of vans"})
        assert (noted["version"], noted["position"]) == (3, before["count"] + 1)
    finally:
        again.close()
