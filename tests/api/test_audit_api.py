"""Audit routes: verify and receipts, for auditors and admins only."""

from __future__ import annotations

from infra.rebuild import replay_and_compare
from tests.support import Api


def test_auditor_verifies_the_store_over_http(api: Api) -> None:
    api.ok("POST", "/v1/clients", {"kind": "prospect", "form": "organisation", "name": "Acme"})
    verdict = api.ok("GET", "/v1/audit/verify", as_="auditor")
    assert verdict["ok"] is True and verdict["events"] == 1
    assert api.get("/v1/audit/verify", as_="operator").status_code == 403
    assert api.get("/v1/audit/verify", as_=None).status_code == 401


def test_replay_leaves_receipts_an_auditor_can_read(api: Api) -> None:
    written = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                             "name": "Ann"})
    api.container.follower.wait_for(written["position"], 5)
    outcomes = replay_and_compare(api.container)
    assert all(o.matches for o in outcomes)
    items = api.ok("GET", "/v1/audit/receipts", as_="auditor")["items"]
    assert {i["projection"] for i in items} == {o.receipt.projection for o in outcomes}
    history = next(i for i in items if i["projection"] == "client_history")
    assert (history["first_position"], history["last_position"], history["events"]) == (1, 1, 1)


def test_an_auditor_pages_through_verifiable_history_with_actors(api: Api) -> None:
    from infra.export import verify_lines

    for name in ("A", "B", "C"):
        api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": name})
    first = api.ok("GET", "/v1/audit/events", params={"limit": 2}, as_="auditor")
    assert [e["position"] for e in first["items"]] == [1, 2]
    assert first["items"][0]["actor"] == "operator-user"
    rest = api.ok("GET", "/v1/audit/events", params={"cursor": first["next_cursor"]},
                  as_="auditor")
    assert [e["position"] for e in rest["items"]] == [3] and rest["next_cursor"] is None
    import orjson

    lines = [orjson.dumps({"crmexport": 1, "scope": "full"})] + [
        orjson.dumps(e) for e in first["items"] + rest["items"]]
    assert verify_lines(lines).ok
    assert api.get("/v1/audit/events", as_="operator").status_code == 403
