"""Personal data is stored encrypted per client; erasure destroys the key (crypto-shredding)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.bootstrap import Container, build
from infra.chain import verify_store
from infra.crypto import MasterKeyError
from infra.settings import Settings
from tests.support import Api

NAME, PHONE, EMAIL = "Zebulon Quartermaine", "+49 30 9988776655", "zebulon@example.org"
PERSON, NOTE = "Wilhelmina Fairweather", "prefers calls after lunch"
SUMMARY, COMMENT = "complained loudly about the invoice", "mechanic was rude to me"
SECRETS = (NAME, PHONE, EMAIL, PERSON, NOTE, SUMMARY, COMMENT)


def _client_with_history(api: Api) -> str:
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": NAME,
                                            "phones": [PHONE], "emails": [EMAIL]})
    cid = client["id"]
    api.ok("POST", f"/v1/clients/{cid}/contact-persons",
           {"name": PERSON, "role": "contact", "notes": NOTE})
    api.ok("POST", f"/v1/clients/{cid}/contacts", {"channel": "phone", "direction": "inbound",
                                                  "topic": "invoice", "summary": SUMMARY})
    api.ok("POST", "/v1/complaints", {"client_id": cid, "text": COMMENT})
    return cid


def _raw_bytes(container: Container) -> bytes:
    path = container.settings.sqlite_path
    files = [p for p in path.parent.iterdir() if p.name.startswith(path.stem)]
    return b"".join(p.read_bytes() for p in files if p.suffix != ".key")


def test_personal_fields_are_ciphertext_in_the_store_and_clear_in_reads(api: Api) -> None:
    cid = _client_with_history(api)
    stored = b"".join(n.state for n in api.container.app.recorder.select_notifications(1, 100))
    for secret in SECRETS:
        assert secret.encode() not in stored
    events = api.ok("GET", f"/v1/clients/{cid}/events",
                    params={"min_position": api.store_position()})["items"]
    assert events[0]["data"]["name"] == NAME
    assert events[0]["data"]["phones"] == [PHONE]


def test_erasure_blanks_personal_data_everywhere_and_keeps_the_chain(api: Api) -> None:
    cid = _client_with_history(api)
    erased = api.ok("POST", f"/v1/clients/{cid}/erase", {"reason": "GDPR art. 17 request"},
                    as_="admin")
    card = api.ok("GET", f"/v1/clients/{cid}/card", params={"min_position": erased["position"]})
    assert card["erased"] is True and card["profile"]["name"] == "[erased]"
    events = api.ok("GET", f"/v1/clients/{cid}/events")["items"]
    body = str(events)
    for secret in SECRETS:
        assert secret not in body
    registered = events[0]["data"]
    assert (registered["name"], registered["phones"], registered["emails"]) == ("[erased]", [],
                                                                                [])
    assert verify_store(api.container.app).ok
    for secret in SECRETS:
        assert secret.encode() not in _raw_bytes(api.container), secret


def test_nothing_more_is_recorded_for_an_erased_client(api: Api) -> None:
    cid = _client_with_history(api)
    api.ok("POST", f"/v1/clients/{cid}/erase", {"reason": "request"}, as_="admin")
    refused = api.post(f"/v1/clients/{cid}/contacts",
                       {"channel": "phone", "direction": "inbound", "topic": "again"})
    assert refused.status_code == 409


def test_a_wrong_master_key_stops_the_start_with_a_clear_message(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/crm.db"
    build(Settings(database_url=url), start_follower=False).close()
    other = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU="
    with pytest.raises(MasterKeyError, match="not the master key"):
        build(Settings(database_url=url, master_key=other), start_follower=False)


def test_a_missing_master_key_on_postgresql_is_refused() -> None:
    with pytest.raises(MasterKeyError, match="CRM_MASTER_KEY is required"):
        build(Settings(database_url="postgresql://postgres@127.0.0.1:5432/test"),
              start_follower=False)
