"""The payments report: plan vs collected per specialist and month, forecasts, debts, acts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import create_engine

from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.base import Runner
from projections.payments import Payments
from projections.payments_report import payments_report
from tests.integration.remote_world import World, snapshot, t
from tests.support import Api


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-06-01"))


@pytest.fixture
def world(sqlite_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(sqlite_settings, clock=clock)
    yield World(container)
    container.close()


def report(world: World, month: str, at: str, *, tz: str = "UTC", as_of: str | None = None,
           specialist: UUID | None = None) -> dict[str, Any]:
    with world.conn() as conn:
        return payments_report(conn, month=month, tz=tz, at=t(at),
                               as_of=None if as_of is None else t(as_of),
                               specialist_id=specialist)


def line(result: dict[str, Any], specialist: UUID | None) -> dict[str, Any]:
    [found] = [ln for ln in result["specialists"] if ln["specialist_id"] == specialist]
    return found


def daily(found: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(d["day"], d["collected"], d["percent_of_plan"]) for d in found["daily"]]


def test_march_payments_count_for_the_specialist_assigned_when_each_was_paid(
        world: World) -> None:
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    world.plan(ann, "2028-03", "800")
    world.plan(ann, "2028-03", "1000")  # the later plan replaces the first
    world.plan(bob, "2028-03", "500")
    acme = world.client("Acme", specialist=ann)
    beta = world.client("Beta", specialist=bob)
    world.reassign(acme, bob, "2028-03-15 12:00")
    world.pay(acme, "100.00", "2028-03-01 10:00")
    world.pay(acme, "200.00", "2028-03-10 09:00")
    world.pay(acme, "300.00", "2028-03-20 08:00")  # after the reassignment: Bob's
    world.pay(beta, "50.00", "2028-03-31 23:30")
    world.pay(beta, "999.00", "2028-02-29 12:00")  # February: not in March

    mid = report(world, "2028-03", "2028-03-20 18:00")
    assert (mid["days_in_month"], mid["day_of_month"]) == (31, 20)
    a, b = line(mid, ann), line(mid, bob)
    assert (a["plan"], a["collected"], a["percent_of_plan"]) == ("1000.00", "300.00", "30.00")
    # 300 / 20 days x 31 days
    assert (a["forecast_month_end"], a["forecast_percent_of_plan"]) == ("465.00", "46.50")
    assert len(a["daily"]) == 20
    assert daily(a)[0] == (1, "100.00", "10.00")
    assert daily(a)[8:10] == [(9, "100.00", "10.00"), (10, "300.00", "30.00")]
    assert daily(a)[19] == (20, "300.00", "30.00")
    assert (b["plan"], b["collected"], b["percent_of_plan"]) == ("500.00", "300.00", "60.00")
    assert daily(b)[18:] == [(19, "0.00", "0.00"), (20, "300.00", "60.00")]

    after = report(world, "2028-03", "2028-04-02 00:00")
    b = line(after, bob)
    assert after["day_of_month"] == 31
    assert (b["collected"], b["percent_of_plan"], b["forecast_month_end"]) == (
        "350.00", "70.00", "350.00")
    assert daily(b)[-1] == (31, "350.00", "70.00")

    only_bob = report(world, "2028-03", "2028-03-20 18:00", specialist=bob)
    assert [ln["specialist_id"] for ln in only_bob["specialists"]] == [bob]

    before = report(world, "2028-03", "2028-02-20 00:00")
    assert before["day_of_month"] == 0
    assert line(before, ann)["daily"] == []
    assert line(before, ann)["forecast_month_end"] is None


def test_february_of_the_leap_year_2028_forecasts_over_29_days(world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-02", "2900")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "1000.00", "2028-02-10 09:00")
    world.pay(acme, "10.00", "2028-02-29 23:59")
    mid = report(world, "2028-02", "2028-02-10 12:00")
    a = line(mid, ann)
    assert (mid["days_in_month"], mid["day_of_month"]) == (29, 10)
    assert (a["collected"], a["forecast_month_end"], a["forecast_percent_of_plan"]) == (
        "1000.00", "2900.00", "100.00")
    end = line(report(world, "2028-02", "2028-02-29 23:59"), ann)
    assert (end["collected"], end["forecast_month_end"], len(end["daily"])) == (
        "1010.00", "1010.00", 29)


def test_a_payment_at_23_30_utc_on_the_last_day_counts_in_the_next_month_in_berlin(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-01", "700")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "70.00", "2028-01-31 23:30")  # 00:30 on 1 February in Berlin (CET)
    jan_utc = line(report(world, "2028-01", "2028-02-15 00:00"), ann)
    assert (jan_utc["collected"], jan_utc["daily"][30]["collected"]) == ("70.00", "70.00")
    jan_berlin = report(world, "2028-01", "2028-02-15 00:00", tz="Europe/Berlin")
    assert line(jan_berlin, ann)["collected"] == "0.00"
    feb_berlin = report(world, "2028-02", "2028-02-01 08:00", tz="Europe/Berlin")
    f = line(feb_berlin, ann)
    # 08:00 UTC on 1 Feb is day 1 in Berlin: the whole month is forecast from one day.
    assert (feb_berlin["day_of_month"], f["collected"], f["forecast_month_end"]) == (
        1, "70.00", "2030.00")


def test_debtors_from_earlier_months_and_acts_not_returned(world: World) -> None:
    ann, bob = world.specialist("Ann"), world.specialist("Bob")
    acme = world.client("Acme", specialist=ann)
    world.reassign(acme, bob, "2028-03-15 12:00")
    one = world.invoice(acme, "INV-1", "100.00", issued="2028-01-05", due="2028-02-01")
    two = world.invoice(acme, "INV-2", "200.00", issued="2028-01-20", due="2028-02-15")
    world.invoice(acme, "INV-3", "300.00", issued="2028-02-20", due="2028-03-10")  # this month
    world.pay(acme, "60.00", "2028-02-10 10:00", invoice=one)
    world.pay(acme, "200.00", "2028-02-20 10:00", invoice=two)
    world.pay(acme, "40.00", "2028-03-25 10:00", invoice=one)
    world.act_sent(one, "2028-01-06 09:00")
    world.act_returned(one, "2028-03-22 09:00")
    world.act_sent(two, "2028-02-01 09:00")

    at_20th = report(world, "2028-03", "2028-03-20 18:00")
    debts = line(at_20th, bob)  # Bob is responsible on the 20th
    assert [(d["client_id"], d["outstanding"]) for d in debts["debtors"]] == [(acme, "40.00")]
    assert [(i["invoice_id"], i["number"], i["amount"], i["outstanding"])
            for i in debts["debtors"][0]["invoices"]] == [(one, "INV-1", "100.00", "40.00")]
    assert debts["debtors_outstanding"] == "40.00"
    assert [a["invoice_id"] for a in debts["acts_not_returned"]] == [one, two]
    assert [ln["specialist_id"] for ln in at_20th["specialists"]] == [bob]

    at_26th = line(report(world, "2028-03", "2028-03-26 00:00"), bob)
    assert at_26th["debtors"] == []
    assert [a["invoice_id"] for a in at_26th["acts_not_returned"]] == [two]
    assert at_26th["collected"] == "40.00"

    at_10th = line(report(world, "2028-03", "2028-03-10 00:00"), ann)  # Ann's before the 15th
    assert [d["outstanding"] for d in at_10th["debtors"]] == ["40.00"]


def test_as_of_ignores_a_late_entered_payment_until_it_was_recorded(
        world: World, clock: ManualClock) -> None:
    clock.set(t("2028-03-01 08:00"))
    ann = world.specialist("Ann", at="2028-03-01")
    world.plan(ann, "2028-03", "1000", at="2028-03-01")
    acme = world.client("Acme", specialist=ann, at="2028-03-01")
    clock.set(t("2028-03-10 09:00"))
    world.pay(acme, "100.00", "2028-03-10 08:00")
    clock.set(t("2028-03-12 09:00"))
    world.pay(acme, "50.00", "2028-03-05 10:00")  # happened on the 5th, entered on the 12th
    clock.set(t("2028-03-13 09:00"))
    world.plan(ann, "2028-03", "2000", at="2028-03-13")

    def seen(as_of: str | None) -> tuple[str, str | None, str]:
        a = line(report(world, "2028-03", "2028-03-12 10:00", as_of=as_of), ann)
        return a["collected"], a["plan"], a["daily"][4]["collected"]

    assert seen("2028-03-11 00:00") == ("100.00", "1000.00", "0.00")
    assert seen("2028-03-12 09:00") == ("150.00", "1000.00", "50.00")  # inclusive cut-off
    assert seen(None) == ("150.00", "2000.00", "50.00")


def test_applying_the_same_page_twice_leaves_the_payment_tables_unchanged(
        world: World, tmp_path: Any) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-03", "1000")
    acme = world.client("Acme", specialist=ann)
    inv = world.invoice(acme, "INV-1", "100.00", issued="2028-03-01", due="2028-03-10")
    world.act_sent(inv, "2028-03-01 10:00")
    world.pay(acme, "100.00", "2028-03-05 10:00", invoice=inv)
    page = world.container.runner.reader(1, 10_000)
    fresh = Runner(create_engine(f"sqlite:///{tmp_path}/scratch.db"), [Payments()],
                   world.container.runner.reader)
    fresh.apply_page(page)
    with fresh.engine.connect() as conn:
        first = snapshot(conn, Payments())
    fresh.apply_page(page)  # redelivered: recognised by the tracked position
    with fresh.engine.begin() as conn:
        assert snapshot(conn, Payments()) == first
        conn.exec_driver_sql("UPDATE projection_tracking SET position = 0")
    fresh.apply_page(page)  # tracking lost: the rows themselves are upserts
    with fresh.engine.connect() as conn:
        assert snapshot(conn, Payments()) == first
    assert len(first["pay_payments"]) == 1 and len(first["pay_plans"]) == 1


def test_payments_report_through_the_api_on_both_backends(any_api: Api) -> None:
    spec = any_api.ok("POST", "/v1/specialists", {"name": "Ann"}, as_="admin")["id"]
    any_api.ok("PUT", f"/v1/plans/{spec}/2026-10", {"amount": "3100", "currency": "EUR"},
               as_="admin")
    client = any_api.ok("POST", "/v1/clients", {"kind": "customer", "form": "organisation",
                                                "name": "Acme GmbH", "specialist_id": spec,
                                                "occurred_at": "2026-09-01T09:00:00+00:00"})
    paid = any_api.ok("POST", "/v1/payments", {
        "client_id": client["id"], "amount": "310.50", "currency": "EUR",
        "occurred_at": "2026-10-05T14:00:00+02:00"})
    result = any_api.ok("GET", "/v1/reports/payments", as_="analyst", params={
        "month": "2026-10", "at": "2026-10-10T12:00:00+00:00",
        "min_position": paid["position"]})
    [found] = result["specialists"]
    assert (found["specialist_id"], found["plan"], found["collected"]) == (
        spec, "3100.00", "310.50")
    # 310.50 / 10 days x 31 days = 962.55
    assert (found["percent_of_plan"], found["forecast_month_end"]) == ("10.02", "962.55")
    assert "Acme" not in str(result)
    bad = [any_api.get("/v1/reports/payments", as_="analyst", params=p) for p in (
        {"month": "2026-13"}, {"month": "2026-10", "at": "2026-10-10T12:00:00"},
        {"month": "2026-10", "tz": "Mars/Olympus"})]
    assert [r.status_code for r in bad] == [422, 422, 422]
    assert any_api.get("/v1/reports/payments", as_=None, params={"month": "2026-10"}
                       ).status_code == 401
