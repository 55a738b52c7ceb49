"""GET /v1/clients: filters by kind, specialist and text; cursor pages in registration order."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from tests.integration.remote_world import World, t
from tests.support import Api


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


@pytest.fixture
def directory(world: World, clock: ManualClock) -> dict[str, UUID]:
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    ids = {
        "acme": world.client("Acme GmbH", specialist=ann, tax_id="DE123",
                             phones=["+49 30 1234"], emails=["info@acme.example"]),
        "lee": world.client("Ann Lee", form="person", specialist=bob,
                            phones=["+49 (30) 777-88"], emails=["ann.lee@mail.example"]),
        "beta": world.client("Beta Supplies", kind="supplier", specialist=ann, tax_id="DE999"),
        "organic": world.client("100% Organic", kind="prospect"),
    }
    clock.set(t("2028-03-11 12:00"))
    ids["gamma"] = world.client("Gamma_Labs", kind="partner")
    world.sync()
    return {**ids, "ann": ann, "bob": bob}


def names(api: Api, **params: Any) -> list[str]:
    found = api.ok("GET", "/v1/clients", params=params)
    assert found["next_cursor"] is None
    return [item["name"] for item in found["items"]]


def test_pages_follow_registration_order_with_a_stable_cursor(
        api: Api, world: World, directory: dict[str, UUID]) -> None:
    first = api.ok("GET", "/v1/clients", params={"limit": 2})
    assert [i["client_id"] for i in first["items"]] == [
        str(directory["acme"]), str(directory["lee"])]
    second = api.ok("GET", "/v1/clients", params={"limit": 2, "cursor": first["next_cursor"]})
    assert [i["name"] for i in second["items"]] == ["Beta Supplies", "100% Organic"]
    world.client("Delta", at="2028-03-11")  # registered while paging: comes last
    world.sync()
    third = api.ok("GET", "/v1/clients", params={"limit": 2, "cursor": second["next_cursor"]})
    assert [i["name"] for i in third["items"]] == ["Gamma_Labs", "Delta"]
    assert third["next_cursor"] is None
    assert first["items"][0] == {
        "client_id": str(directory["acme"]), "kind": "customer", "form": "organisation",
        "name": "Acme GmbH", "tax_id": "DE123", "specialist_id": str(directory["ann"]),
        "registered_at": "2028-01-01T00:00:00+00:00", "erased": False}


def test_text_search_matches_name_tax_id_phone_and_email_case_insensitively(
        api: Api, directory: dict[str, UUID]) -> None:
    assert names(api, q="ACME") == ["Acme GmbH"]
    assert names(api, q="ann") == ["Ann Lee"]
    assert names(api, q="de999") == ["Beta Supplies"]
    assert names(api, q="3077788") == ["Ann Lee"]  # the end of the phone's digits
    assert names(api, q="+49 30") == ["Acme GmbH", "Ann Lee"]  # the start, punctuation aside
    assert names(api, q="+49 (30) 12") == ["Acme GmbH"]
    assert names(api, q="777-88") == ["Ann Lee"]
    assert names(api, q="Mail.Example") == ["Ann Lee"]
    assert names(api, q="lee ANN") == ["Ann Lee"]  # every word, in any order
    assert names(api, q="ann gmbh") == []
    assert names(api, q="ACME.ex") == ["Acme GmbH"]  # info@acme.example
    # Punctuation separates words; a query of punctuation alone finds nothing.
    assert names(api, q="100%") == ["100% Organic"]
    assert names(api, q="gamma_labs") == ["Gamma_Labs"]
    assert names(api, q="%") == []
    assert names(api, q="nobody") == []


def test_the_search_index_holds_no_personal_text(
        api: Api, directory: dict[str, UUID]) -> None:
    """Blind index: keyed hashes of words, nothing that reads as a name, phone or e-mail; the
    directory rows hold names and tax ids sealed."""
    from projections.clients import client_index, client_search

    with api.container.engine.connect() as conn:
        tokens = [r.token for r in conn.execute(client_search.select())]
        rows = [dict(r._mapping) for r in conn.execute(client_index.select())]
    assert tokens and all(len(t) == 16 for t in tokens)
    raw = b"".join(tokens)
    for text in (b"acme", b"ann", b"4930", b"example"):
        assert text not in raw.lower()
    assert all(r["name"]["_pd_"] == 1 and "Acme" not in str(r["name"]) for r in rows)


def test_filters_by_kind_and_specialist_and_as_of(
        api: Api, world: World, directory: dict[str, UUID]) -> None:
    assert names(api, kind="supplier") == ["Beta Supplies"]
    assert names(api, specialist=str(directory["ann"])) == ["Acme GmbH", "Beta Supplies"]
    world.reassign(directory["beta"], directory["bob"], "2028-03-11 10:00")
    world.sync()
    assert names(api, specialist=str(directory["ann"])) == ["Acme GmbH"]
    assert names(api, kind="customer", q="a", specialist=str(directory["bob"])) == ["Ann Lee"]
    # Gamma was recorded on the 11th.
    assert "Gamma_Labs" not in names(api, as_of="2028-03-10T23:00:00+00:00")
    assert "Gamma_Labs" in names(api, as_of="2028-03-11T12:00:00+00:00")


def test_list_rejects_bad_input_and_readers_without_personal_access(
        api: Api, directory: dict[str, UUID]) -> None:
    bad = [api.get("/v1/clients", params=p) for p in (
        {"segment": "gold"}, {"kind": "alien"}, {"limit": 501}, {"cursor": "abc"},
        {"as_of": "2028-03-10T00:00:00"}, {"as_of": "0001-01-01T00:00:00+00:00"})]
    assert [r.status_code for r in bad] == [422, 422, 422, 422, 422, 422]
    assert api.get("/v1/clients", as_="analyst").status_code == 403
    assert api.get("/v1/clients", as_=None).status_code == 401


def test_segment_filter_uses_the_segments_at_the_moment_asked(api: Api, world: World) -> None:
    recent = world.client("Recent", at="2027-01-01")
    world.contact(recent, "Call", "2028-02-01 10:00")
    old = world.client("Old", at="2027-01-01")
    world.contact(old, "Call", "2027-01-15 10:00")
    world.client("Silent", at="2027-01-01")
    world.sync()
    at = "2028-03-10T12:00:00+00:00"
    assert names(api, segment="active", at=at) == ["Recent"]
    assert names(api, segment="lost", at=at) == ["Old"]
    assert names(api, segment="never", at=at) == ["Silent"]
    # Fifteen months earlier (2026-12-10) the old client's call had not happened yet.
    assert names(api, segment="never", at="2026-12-10T12:00:00+00:00") == []
    assert names(api, segment="active", at="2027-02-01T00:00:00+00:00") == ["Old"]
    assert names(api, segment="active", q="rec", at=at) == ["Recent"]


def test_client_list_on_both_backends(any_api: Api) -> None:
    made = [any_api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person",
                                               "name": name, "emails": [email]})
            for name, email in (("Ann Lee", "ann@x.example"), ("Bob Stone", "bob@y.example"),
                                ("Cy Ann", "cy@z.example"))]
    last = made[-1]["position"]
    page = any_api.ok("GET", "/v1/clients", params={"q": "ANN", "limit": 1,
                                                    "min_position": last})
    assert [i["name"] for i in page["items"]] == ["Ann Lee"]
    rest = any_api.ok("GET", "/v1/clients", params={"q": "ANN", "limit": 1,
                                                    "cursor": page["next_cursor"]})
    assert ([i["name"] for i in rest["items"]], rest["next_cursor"]) == (["Cy Ann"], None)
    assert names(any_api, q="y.example") == ["Bob Stone"]


def test_a_large_id_filter_is_bound_in_chunks_and_pages_the_same(
        world: World, directory: dict[str, UUID], monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment filter may carry tens of thousands of ids (more than a statement may bind):
    chunked, the pages are the ones a single query would give."""
    from projections import clients

    wanted = {directory[k] for k in directory if k not in ("ann", "bob")} - {directory["beta"]}
    with world.conn() as conn:
        whole = clients.list_clients(conn, only=wanted, limit=2)
        monkeypatch.setattr(clients, "ONLY_CHUNK", 1)
        pages, after = [], 0
        while True:
            items, cursor = clients.list_clients(conn, only=wanted, limit=2, after=after)
            pages.append([i["client_id"] for i in items])
            if cursor is None:
                break
            after = cursor
    assert [i["client_id"] for i in whole[0]] == pages[0]
    assert sorted(c for page in pages for c in page) == sorted(wanted)
    assert len(wanted) > 2 and len(pages) > 1
