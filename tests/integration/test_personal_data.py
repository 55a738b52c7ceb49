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


def _story(api: Api, tag: str) -> tuple[str, tuple[str, ...]]:
    """A client with contacts, a note, a survey comment and a complaint; every personal string
    carries `tag`, so a grep finds this test's strings and no other test's."""
    name, email = f"Ottoline {tag} Brackenbury", f"o.{tag}@ex.org"
    phone = f"+44 7700 {int(tag, 16) % 10**7:07d}"
    person, note = f"Crispin {tag} Mallory", f"ring after four {tag}"
    summary, comment, complaint = (f"asked about winter tyres {tag}", f"waited an hour {tag}",
                                   f"scratch on the bonnet {tag}")
    cid = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": name,
                                         "phones": [phone], "emails": [email]})["id"]
    api.ok("POST", f"/v1/clients/{cid}/contact-persons",
           {"name": person, "role": "contact", "notes": note})
    api.ok("POST", f"/v1/clients/{cid}/contacts", {"channel": "phone", "direction": "inbound",
                                                  "topic": "tyres", "summary": summary})
    order = api.ok("POST", "/v1/work-orders", {"client_id": cid, "asset": "car",
                                               "stages": ["repair"],
                                               "occurred_at": "2026-10-01T09:00:00+00:00"})
    api.ok("POST", f"/v1/work-orders/{order['id']}/close", {
        "amount": "90.00", "currency": "EUR", "occurred_at": "2026-10-02T09:00:00+00:00"})
    template = api.ok("POST", "/v1/survey-templates", {"name": "t", "questions": [
        {"id": "q1", "text": "Fixed?", "stage": "repair"}]}, as_="admin")
    survey = api.ok("POST", "/v1/surveys", {"work_order_id": order["id"],
                                            "template_id": template["id"], "interviewer": "iv",
                                            "occurred_at": "2026-10-05T10:00:00+00:00"})
    api.ok("POST", f"/v1/surveys/{survey['id']}/complete", {
        "outcome": "completed", "comment": comment, "occurred_at": "2026-10-05T10:02:00+00:00"})
    api.ok("POST", "/v1/complaints", {"client_id": cid, "text": complaint,
                                      "occurred_at": "2026-10-06T08:00:00+00:00"})
    return cid, (name, phone, email, person, note, summary, comment, complaint)


def _postgres_files_bytes(url: str) -> list[tuple[Path, bytes]]:
    """Every file of the PostgreSQL server's data directory (tables, indexes, WAL), after a
    checkpoint has flushed the buffers; the server runs on this machine."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SHOW data_directory").fetchone()
    assert row is not None
    root = Path(row[0])
    assert root.is_dir() and (root / "base").is_dir(), f"cannot read {root}: run as its owner"
    return [(p, p.read_bytes()) for p in root.rglob("*") if p.is_file()]


def _found(api: Api, secrets: tuple[str, ...]) -> list[str]:
    """The secrets readable in the raw database files of this backend (and where)."""
    settings = api.container.settings
    if settings.is_sqlite:
        raw = _raw_bytes(api.container)
        return [s for s in secrets if s.encode() in raw]
    files = _postgres_files_bytes(str(settings.database_url))
    return [f"{s} in {p}" for s in secrets for p, data in files if s.encode() in data]


def test_no_personal_string_reaches_the_raw_database_files_on_both_backends(
        any_api: Api) -> None:
    """Read models keep personal values sealed too, so neither the event store nor the read
    models — nor PostgreSQL's WAL — ever hold them in clear; after erasure nothing can open
    them. Reads show them while the key exists."""
    import uuid

    api = any_api
    cid, secrets = _story(api, uuid.uuid4().hex[:10])
    api.container.follower.wait_for(api.store_position(), 10)
    card = api.ok("GET", f"/v1/clients/{cid}/card")
    assert card["profile"]["name"] == secrets[0]  # readable where allowed
    assert _found(api, secrets) == []  # but nowhere in clear on disk, before erasure too
    erased = api.ok("POST", f"/v1/clients/{cid}/erase", {"reason": "GDPR"}, as_="admin")
    card = api.ok("GET", f"/v1/clients/{cid}/card", params={"min_position": erased["position"]})
    assert card["profile"]["name"] == "[erased]"
    assert not any(s in str(card) for s in secrets)
    assert _found(api, secrets) == []
    assert verify_store(api.container.app).ok
