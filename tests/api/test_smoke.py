"""A first story through the API on both backends: register, log a call, read it back."""

from __future__ import annotations

from tests.support import Api, store_count


def test_register_client_log_call_and_read_card_and_history(any_api: Api) -> None:
    client = any_api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                                "name": "Ann Lee", "phones": ["+49 30 1234"]})
    contact = any_api.ok("POST", f"/v1/clients/{client['id']}/contacts", {
        "channel": "phone", "direction": "inbound", "topic": "Invoice question",
        "occurred_at": "2026-11-20T10:00:00+01:00"})
    card = any_api.ok("GET", f"/v1/clients/{client['id']}/card",
                      params={"min_position": contact["position"]})
    assert card["profile"]["name"] == "Ann Lee"
    assert card["last_contact"]["topic"] == "Invoice question"
    history = any_api.ok("GET", f"/v1/clients/{client['id']}/events",
                         params={"min_position": contact["position"]})
    assert [e["type"] for e in history["items"]] == ["ClientRegistered", "ContactLogged"]
    assert history["items"][1]["occurred_at"] == "2026-11-20T10:00:00+01:00"
    assert history["items"][1]["actor"] == {"user": "operator-user", "role": "operator"}
    assert store_count(any_api.container) == 2
