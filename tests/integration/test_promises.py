"""Promise keeping (issue 18.4): kept / broken / open agreements and the kept rate, per client
(card), per specialist and per month (controls), exact under `at` and `as_of`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from commands import activity as act
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.client_views import full_card
from projections.promises import client_promises, promise_keeping
from tests.integration.remote_world import World, t
from tests.support import Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-03-02"))


@pytest.fixture
def world(any_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(any_settings, clock=clock)
    yield World(container)
    container.close()


class History:
    """Two specialists, two clients, six agreements (see each line)."""

    def __init__(self, world: World, clock: ManualClock) -> None:
        self.ann, self.bob = world.specialist("Ann"), world.specialist("Bob")
        self.acme = world.client("Acme", specialist=self.ann, at="2028-01-01")
        self.beta = world.client("Beta", specialist=self.bob, at="2028-01-01")

        def agreement(client: UUID, made: str, due: str) -> UUID:
            return world.agreement(client, "Pay the invoice", due=due, at=made)

        def kept(agreement_id: UUID, at: str) -> None:
            world.run(act.FulfilAgreement(agreement_id=agreement_id, occurred_at=t(at)))

        self.a1 = agreement(self.acme, "2028-01-10", "2028-01-20 18:00")  # kept on time
        kept(self.a1, "2028-01-19 10:00")
        self.a2 = agreement(self.acme, "2028-01-10", "2028-01-25 18:00")  # kept late
        kept(self.a2, "2028-01-28 10:00")
        self.a3 = agreement(self.acme, "2028-01-12", "2028-02-05 18:00")  # broken
        world.run(act.BreakAgreement(agreement_id=self.a3, occurred_at=t("2028-02-06 10:00")))
        self.a4 = agreement(self.acme, "2028-02-20", "2028-02-25 18:00")  # open, overdue
        self.a5 = agreement(self.beta, "2028-02-01", "2028-03-05 18:00")  # kept, entered late
        self.a6 = agreement(self.beta, "2028-03-01", "2028-03-20 18:00")  # open, not due
        # Acme moved to Bob on 15 Feb, entered on 5 Mar: a4 (made on the 20th) is Bob's.
        clock.set(t("2028-03-05 12:00"))
        world.reassign(self.acme, self.bob, at="2028-02-15")
        clock.set(t("2028-03-09 12:00"))
        kept(self.a5, "2028-03-04 10:00")


def tally(agreements: int, kept_on_time: int, kept_late: int, broken: int, open_: int,
          overdue: int, rate: str | None) -> dict[str, Any]:
    return {"agreements": agreements, "kept": kept_on_time + kept_late,
            "kept_on_time": kept_on_time, "kept_late": kept_late, "broken": broken,
            "open": open_, "overdue": overdue, "kept_rate": rate}


def keeping(world: World, at: str, as_of: str | None = None, **options: Any) -> Any:
    with world.conn() as conn:
        return promise_keeping(conn, at=t(at), as_of=None if as_of is None else t(as_of),
                               tz=options.pop("tz", "UTC"), **options)


def test_kept_broken_open_and_the_kept_rate_per_month_and_specialist(
        world: World, clock: ManualClock) -> None:
    h = History(world, clock)
    report = keeping(world, "2028-03-10 00:00")
    assert report["months"] == ["2028-01", "2028-02", "2028-03"]
    assert report["total"] == tally(6, 2, 1, 1, 2, 1, "75.00")
    assert report["by_month"] == [
        {"month": "2028-01", **tally(2, 1, 1, 0, 0, 0, "100.00")},
        {"month": "2028-02", **tally(2, 0, 0, 1, 1, 1, "0.00")},
        {"month": "2028-03", **tally(2, 1, 0, 0, 1, 0, "100.00")}]
    by = {s["specialist_id"]: s for s in report["by_specialist"]}
    assert set(by) == {h.ann, h.bob}
    assert {k: by[h.ann][k] for k in tally(0, 0, 0, 0, 0, 0, None)} == tally(
        3, 1, 1, 1, 0, 0, "66.67")
    assert {k: by[h.bob][k] for k in tally(0, 0, 0, 0, 0, 0, None)} == tally(
        3, 1, 0, 0, 2, 1, "100.00")
    assert [m["month"] for m in by[h.bob]["by_month"]] == ["2028-02", "2028-03"]
    only_ann = keeping(world, "2028-03-10 00:00", specialist_id=h.ann)
    assert [s["specialist_id"] for s in only_ann["by_specialist"]] == [h.ann]
    assert only_ann["total"] == tally(3, 1, 1, 1, 0, 0, "66.67")
    # One month back: March alone.
    assert keeping(world, "2028-03-10 00:00", months=1)["total"] == tally(
        2, 1, 0, 0, 1, 0, "100.00")


def test_at_moves_the_outcomes_and_as_of_hides_what_was_entered_later(
        world: World, clock: ManualClock) -> None:
    h = History(world, clock)
    # On 26 Jan a2 was due and not kept yet; a1 was kept; a3 was not due.
    assert keeping(world, "2028-01-26 00:00", months=1)["total"] == tally(
        2, 1, 0, 0, 1, 1, "100.00")
    # Known on 8 Mar: a5's fulfilment (entered on the 9th) was not; it is open and overdue.
    early = keeping(world, "2028-03-10 00:00", as_of="2028-03-08 00:00")
    assert early["total"] == tally(6, 1, 1, 1, 3, 2, "66.67")
    # Known on 3 Mar: the reassignment (entered on the 5th) was not; a4 counts for Ann.
    before = keeping(world, "2028-03-10 00:00", as_of="2028-03-03 00:00")
    by = {s["specialist_id"]: s["agreements"] for s in before["by_specialist"]}
    assert by == {h.ann: 4, h.bob: 2}
    # Before anything was recorded: nothing.
    assert keeping(world, "2028-03-10 00:00", as_of="2028-03-01 00:00")["total"] == tally(
        0, 0, 0, 0, 0, 0, None)


def test_the_card_counts_every_agreement_of_the_client(world: World,
                                                        clock: ManualClock) -> None:
    h = History(world, clock)
    with world.conn() as conn:
        assert client_promises(conn, h.acme, at=t("2028-03-10"), as_of=None) == tally(
            4, 1, 1, 1, 1, 1, "66.67")
        assert client_promises(conn, h.beta, at=t("2028-03-10"), as_of=t("2028-03-08")) == \
            tally(2, 0, 0, 0, 2, 1, None)
        card = full_card(conn, h.beta, at=t("2028-03-10"), as_of=None)
        assert card is not None and card["promises"] == tally(2, 1, 0, 0, 1, 0, "100.00")


def test_promise_keeping_through_the_api_for_an_analyst(any_api: Api) -> None:
    api = any_api
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Bo",
                                            "occurred_at": "2026-10-01T09:00:00+00:00"})
    made = api.ok("POST", f"/v1/clients/{client['id']}/agreements", {
        "text": "Return the act", "due_at": "2026-10-05T09:00:00+00:00",
        "occurred_at": "2026-10-01T09:00:00+00:00"})
    api.ok("POST", f"/v1/clients/{client['id']}/agreements", {
        "text": "Pay", "due_at": "2026-10-06T09:00:00+00:00",
        "occurred_at": "2026-10-01T09:00:00+00:00"})
    done = api.ok("POST", f"/v1/agreements/{made['id']}/break",
                  {"occurred_at": "2026-10-05T10:00:00+00:00"})
    report = api.ok("GET", "/v1/reports/controls", as_="analyst", params={
        "at": "2026-10-10T00:00:00+00:00", "promise_months": "2",
        "min_position": done["position"]})
    block = report["promise_keeping"]
    assert block["months"] == ["2026-09", "2026-10"]
    assert block["total"] == tally(2, 0, 0, 1, 1, 1, "0.00")
    assert block["by_specialist"][0]["specialist_id"] is None
    card = api.ok("GET", f"/v1/clients/{client['id']}/card",
                  params={"at": "2026-10-10T00:00:00+00:00"})
    assert card["promises"] == tally(2, 0, 0, 1, 1, 1, "0.00")
    assert api.get("/v1/reports/controls", as_="analyst",
                   params={"promise_months": "0"}).status_code == 422
