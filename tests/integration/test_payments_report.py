"""The payments report: plan vs collected per specialist and month, forecasts, debts, acts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import create_engine

from commands import activity as act
from commands import reference as ref
from domain.catalogue import jsonable
from domain.periods import parse_period
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.settings import Settings
from projections.base import Runner
from projections.payments import Payments
from projections.payments_debts import decode_cursor
from projections.payments_report import payments_report, report_calendar
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
           specialist: UUID | None = None, **options: Any) -> dict[str, Any]:
    with world.conn() as conn:
        return jsonable(payments_report(  # type: ignore[no-any-return]
            conn, period=parse_period(month, tz), at=t(at),
            as_of=None if as_of is None else t(as_of), specialist_id=specialist, **options))


def line(result: dict[str, Any], specialist: UUID | None) -> dict[str, Any]:
    [found] = [ln for ln in result["specialists"] if ln["specialist_id"] == str(specialist)
               or ln["specialist_id"] is specialist is None]
    return found


def daily(found: dict[str, Any]) -> list[tuple[int, str, str | None]]:
    return [(int(d["date"][8:]), d["collected"], d["percent_of_plan"]) for d in found["daily"]]


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
    assert (mid["days_in_period"], mid["day_of_period"]) == (31, 20)
    a, b = line(mid, ann), line(mid, bob)
    assert (a["plan"], a["fact"], a["percent_of_plan"], a["remaining"]) == (
        "1000.00", "300.00", "30.00", "700.00")
    # 300 / 20 days x 31 days
    assert (a["forecast"]["straight_line"], a["forecast"]["straight_line_percent_of_plan"]) == (
        "465.00", "46.50")
    assert len(a["daily"]) == 20
    assert daily(a)[0] == (1, "100.00", "10.00")
    assert daily(a)[8:10] == [(9, "100.00", "10.00"), (10, "300.00", "30.00")]
    assert daily(a)[19] == (20, "300.00", "30.00")
    assert (b["plan"], b["fact"], b["percent_of_plan"]) == ("500.00", "300.00", "60.00")
    assert daily(b)[18:] == [(19, "0.00", "0.00"), (20, "300.00", "60.00")]
    # Totals add the lines up: plans 1500, fact 600.
    [total] = mid["totals"]
    assert (total["plan"], total["fact"], total["remaining"], total["percent_of_plan"]) == (
        "1500.00", "600.00", "900.00", "40.00")
    assert daily(total)[19] == (20, "600.00", "40.00")

    after = report(world, "2028-03", "2028-04-02 00:00")
    b = line(after, bob)
    assert after["day_of_period"] == 31
    assert (b["fact"], b["percent_of_plan"], b["forecast"]["straight_line"]) == (
        "350.00", "70.00", "350.00")
    assert daily(b)[-1] == (31, "350.00", "70.00")

    only_bob = report(world, "2028-03", "2028-03-20 18:00", specialist=bob)
    assert [ln["specialist_id"] for ln in only_bob["specialists"]] == [str(bob)]
    assert only_bob["totals"][0]["fact"] == "300.00"

    before = report(world, "2028-03", "2028-02-20 00:00")
    assert before["day_of_period"] == 0
    assert line(before, ann)["daily"] == []
    assert line(before, ann)["forecast"]["straight_line"] is None


def test_february_of_the_leap_year_2028_forecasts_over_29_days(world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-02", "2900")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "1000.00", "2028-02-10 09:00")
    world.pay(acme, "10.00", "2028-02-29 23:59")
    mid = report(world, "2028-02", "2028-02-10 12:00")
    a = line(mid, ann)
    assert (mid["days_in_period"], mid["day_of_period"]) == (29, 10)
    assert (a["fact"], a["forecast"]["straight_line"],
            a["forecast"]["straight_line_percent_of_plan"]) == ("1000.00", "2900.00", "100.00")
    end = line(report(world, "2028-02", "2028-02-29 23:59"), ann)
    assert (end["fact"], end["forecast"]["straight_line"], len(end["daily"])) == (
        "1010.00", "1010.00", 29)


def test_a_payment_at_23_30_utc_on_the_last_day_counts_in_the_next_month_in_berlin(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-01", "700")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "70.00", "2028-01-31 23:30")  # 00:30 on 1 February in Berlin (CET)
    jan_utc = line(report(world, "2028-01", "2028-02-15 00:00"), ann)
    assert (jan_utc["fact"], jan_utc["daily"][30]["collected"]) == ("70.00", "70.00")
    jan_berlin = report(world, "2028-01", "2028-02-15 00:00", tz="Europe/Berlin")
    assert line(jan_berlin, ann)["fact"] == "0.00"
    feb_berlin = report(world, "2028-02", "2028-02-01 08:00", tz="Europe/Berlin")
    f = line(feb_berlin, ann)
    # 08:00 UTC on 1 Feb is day 1 in Berlin: the whole month is forecast from one day.
    assert (feb_berlin["day_of_period"], f["fact"], f["forecast"]["straight_line"]) == (
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
    assert debts["debtors"] == {"count": 1, "outstanding": "40.00"}
    [debtor] = at_20th["debtors"]["items"]
    assert (debtor["client_id"], debtor["specialist_id"], debtor["outstanding"]) == (
        str(acme), str(bob), "40.00")
    assert [(i["invoice_id"], i["number"], i["amount"], i["outstanding"])
            for i in debtor["invoices"]] == [(str(one), "INV-1", "100.00", "40.00")]
    assert at_20th["debtors"]["total"] == 1
    assert at_20th["debtors"]["outstanding"] == [{"currency": "EUR", "amount": "40.00"}]
    assert [a["invoice_id"] for a in at_20th["acts_not_returned"]["items"]] == [
        str(one), str(two)]
    assert debts["acts_not_returned"] == 2
    # Ann collected February's payments: none in March, 260.00 over February and March.
    a = line(at_20th, ann)
    assert (a["fact"], a["last_two_months"]["fact"], a["debtors"]["count"]) == (
        "0.00", "260.00", 0)
    assert at_20th["two_months"] == ["2028-02", "2028-03"]

    at_26th = report(world, "2028-03", "2028-03-26 00:00")
    assert at_26th["debtors"]["total"] == 0 and at_26th["debtors"]["items"] == []
    assert [a["invoice_id"] for a in at_26th["acts_not_returned"]["items"]] == [str(two)]
    assert line(at_26th, bob)["fact"] == "40.00"

    at_10th = report(world, "2028-03", "2028-03-10 00:00")  # Ann's before the 15th
    assert [(d["specialist_id"], d["outstanding"]) for d in at_10th["debtors"]["items"]] == [
        (str(ann), "40.00")]
    assert report(world, "2028-03", "2028-03-10 00:00", specialist=bob)["debtors"]["total"] == 0


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
        return a["fact"], a["plan"], a["daily"][4]["collected"]

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
    assert (found["specialist_id"], found["plan"], found["fact"]) == (
        spec, "3100.00", "310.50")
    # 310.50 / 10 days x 31 days = 962.55
    assert (found["percent_of_plan"], found["forecast"]["straight_line"]) == (
        "10.02", "962.55")
    assert "Acme" not in str(result)
    bad = [any_api.get("/v1/reports/payments", as_="analyst", params=p) for p in (
        {"month": "2026-13"}, {"month": "2026-10", "at": "2026-10-10T12:00:00"},
        {"period": "1899-Q4"},
        {"month": "2026-10", "tz": "Mars/Olympus"})]
    assert [r.status_code for r in bad] == [422, 422, 422, 422]
    assert any_api.get("/v1/reports/payments", as_=None, params={"month": "2026-10"}
                       ).status_code == 401


def test_a_quarter_sums_its_months_plans_and_draws_one_curve_with_a_mark_per_month(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-01", "1000")
    world.plan(ann, "2028-02", "2000")
    world.plan(ann, "2028-03", "3000")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "900.00", "2028-01-19 10:00")  # 90% of January's plan by the 20th
    world.pay(acme, "500.00", "2028-02-21 10:00")  # after February's 20th
    world.pay(acme, "1100.00", "2028-03-02 10:00")
    q = report(world, "2028-Q1", "2028-03-05 12:00")
    assert (q["kind"], q["months"], q["days_in_period"], q["day_of_period"]) == (
        "quarter", ["2028-01", "2028-02", "2028-03"], 91, 65)
    a = line(q, ann)
    assert (a["plan"], a["fact"], a["remaining"], a["percent_of_plan"]) == (
        "6000.00", "2500.00", "3500.00", "41.67")
    assert a["plan_months"] == ["2028-01", "2028-02", "2028-03"]
    assert len(a["daily"]) == 65 and a["daily"][-1]["collected"] == "2500.00"
    # 2500 / 65 days x 91 days
    assert a["forecast"]["straight_line"] == "3500.00"
    marks = [(m["date"], m["target"], m["target_percent_of_plan"], m["collected"], m["reached"])
             for m in a["marks"]]
    assert marks == [
        ("2028-01-20", "800.00", "13.33", "900.00", True),
        # January's 1000 in full + 80% of 2000, cumulative like the curve
        ("2028-02-20", "2600.00", "43.33", "900.00", False),
        # the 20th has not come: collected so far, not decided
        ("2028-03-20", "5400.00", "90.00", "2500.00", None)]
    # The last two months of a quarter view follow its current month: February and March.
    two = a["last_two_months"]
    assert (two["months"], two["plan"], two["fact"], two["remaining"], two["percent_of_plan"]) \
        == (["2028-02", "2028-03"], "5000.00", "1600.00", "3400.00", "32.00")


def test_a_month_view_compares_with_the_month_before_for_the_last_two_months(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-02", "1000")
    world.plan(ann, "2028-03", "1000")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "700.00", "2028-02-27 10:00")
    world.pay(acme, "100.00", "2028-03-03 10:00")
    world.pay(acme, "100.00", "2028-03-09 10:00")  # after the moment
    a = line(report(world, "2028-03", "2028-03-05 00:00"), ann)
    assert (a["fact"], a["percent_of_plan"]) == ("100.00", "10.00")
    assert a["last_two_months"] == {"months": ["2028-02", "2028-03"], "plan": "2000.00",
                                   "fact": "800.00", "remaining": "1200.00",
                                   "percent_of_plan": "40.00"}
    # The 20th of March is the mark; 800 due by then, 100 so far, not decided yet
    assert a["marks"] == [{"date": "2028-03-20", "target": "800.00",
                           "target_percent_of_plan": "80.00", "collected": "100.00",
                           "reached": None}]
    late = line(report(world, "2028-03", "2028-03-21 00:00"), ann)
    assert late["marks"][0]["reached"] is False


def test_change_since_the_previous_business_day_skips_the_weekend_and_holidays(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-03", "1000")
    acme = world.client("Acme", specialist=ann)
    world.pay(acme, "570.00", "2028-03-09 10:00")  # Thursday
    world.pay(acme, "30.00", "2028-03-10 16:00")  # Friday
    world.pay(acme, "20.00", "2028-03-11 11:00")  # Saturday
    world.pay(acme, "40.00", "2028-03-13 09:00")  # Monday, before 10:00
    monday = report(world, "2028-03", "2028-03-13 10:00")
    assert monday["previous_business_day"] == "2028-03-10"
    change = line(monday, ann)["change"]
    # 600 (60%) at the end of Friday, 660 (66%) now
    assert change == {"since": "2028-03-10", "fact_then": "600.00",
                      "percent_of_plan_then": "60.00", "fact_change": "60.00",
                      "percent_points": "6.00"}
    # With Friday a holiday of the calendar, Thursday is the previous business day.
    world.run(ref.SetCalendar(calendar="office", occurred_at=t("2028-01-01"), timezone="UTC",
                              hours={d: [("09:00", "18:00")] for d in (
                                  "mon", "tue", "wed", "thu", "fri")},
                              holidays=["2028-03-10"]))
    with world.conn() as conn:
        calendar = report_calendar(conn, None, None, "UTC")
    holiday = report(world, "2028-03", "2028-03-13 10:00", calendar=calendar)
    assert holiday["previous_business_day"] == "2028-03-09"
    assert line(holiday, ann)["change"]["fact_change"] == "90.00"
    # On the period's first business day, the day before lies in the previous month: from 0.
    first = line(report(world, "2028-03", "2028-03-01 12:00"), ann)["change"]
    assert (first["since"], first["fact_then"], first["fact_change"]) == (
        "2028-02-29", "0.00", "0.00")


def test_expected_forecast_adds_invoices_due_and_promises_to_pay_in_the_period(
        world: World) -> None:
    ann = world.specialist("Ann")
    world.plan(ann, "2028-03", "2000")
    acme = world.client("Acme", specialist=ann)
    beta = world.client("Beta", specialist=ann)
    gamma = world.client("Gamma", specialist=ann)
    world.pay(acme, "300.00", "2028-03-02 10:00")
    due = world.invoice(acme, "A-1", "500.00", issued="2028-03-01", due="2028-03-25")
    world.pay(acme, "100.00", "2028-03-05 10:00", invoice=due)  # 400 still due on the 25th
    world.invoice(acme, "A-2", "900.00", issued="2028-03-01", due="2028-04-10")  # April
    world.invoice(acme, "A-0", "50.00", issued="2028-03-01", due="2028-03-08")  # overdue
    # Beta owes 250 since February and promised, in a payment-delay call, to pay on the 20th.
    world.invoice(beta, "B-1", "250.00", issued="2028-02-01", due="2028-02-20")
    call = world.contact(beta, "Invoice B-1 is overdue", "2028-03-06 10:00",
                         purpose="payment_delay")
    world.new(act.MakeAgreement(client_id=beta, text="Pay B-1 by the 20th", contact_id=call,
                                due_at=t("2028-03-20 12:00"), occurred_at=t("2028-03-06 10:05")))
    # Gamma's promise was made in an ordinary call: not a promise to pay.
    world.invoice(gamma, "G-1", "70.00", issued="2028-02-01", due="2028-02-20")
    other = world.contact(gamma, "Catch-up", "2028-03-06 11:00", purpose="regular")
    world.new(act.MakeAgreement(client_id=gamma, text="Send the report", contact_id=other,
                                due_at=t("2028-03-20 12:00"), occurred_at=t("2028-03-06 11:05")))

    a = line(report(world, "2028-03", "2028-03-10 00:00"), ann)
    assert a["forecast"] == {
        "straight_line": "1240.00",  # 400 / 10 days x 31 days
        "straight_line_percent_of_plan": "62.00",
        "expected": "1050.00",  # 400 + 400 (A-1) + 250 (Beta's promise)
        "expected_percent_of_plan": "52.50",
        "invoices_due": "400.00", "promised": "250.00"}
    # Once Beta's promise is past (and not kept), only the invoice is expected.
    later = line(report(world, "2028-03", "2028-03-21 00:00"), ann)["forecast"]
    assert (later["invoices_due"], later["promised"], later["expected"]) == (
        "400.00", "0.00", "800.00")
    # After the period, expected is what was collected.
    done = line(report(world, "2028-03", "2028-04-02 00:00"), ann)["forecast"]
    assert (done["expected"], done["invoices_due"], done["promised"]) == (
        "400.00", "0.00", "0.00")


def test_debtors_are_cursor_pages_with_an_exact_total_in_the_order_asked(
        world: World) -> None:
    ann = world.specialist("Ann")
    owed = {}
    for n, amount in enumerate(["30.00", "10.00", "50.00", "20.00", "40.00"]):
        client = world.client(f"Client {n}", specialist=ann)
        world.invoice(client, f"I-{n}", amount, issued="2028-01-01",
                      due=f"2028-02-0{5 - n}")
        owed[str(client)] = amount

    def pages(sort: str, limit: int) -> list[list[str]]:
        out, after = [], None
        while True:
            body = report(world, "2028-03", "2028-03-10 00:00", debtors_sort=sort,
                          debtors_limit=limit, debtors_after=after)["debtors"]
            assert body["total"] == 5
            assert body["outstanding"] == [{"currency": "EUR", "amount": "150.00"}]
            out.append([d["outstanding"] for d in body["items"]])
            if body["next_cursor"] is None:
                return out
            after = decode_cursor(body["next_cursor"], sort)

    assert pages("outstanding_desc", 2) == [["50.00", "40.00"], ["30.00", "20.00"], ["10.00"]]
    assert pages("outstanding_asc", 3) == [["10.00", "20.00", "30.00"], ["40.00", "50.00"]]
    # oldest due first: the last client's invoice fell due on 1 February
    assert pages("oldest_due", 5) == [["40.00", "20.00", "50.00", "10.00", "30.00"]]
    by_id = sorted(owed)
    assert pages("client", 4) == [[owed[c] for c in by_id[:4]], [owed[by_id[4]]]]
    with pytest.raises(ValueError):
        decode_cursor("not-a-cursor", "client")


def test_period_parameter_month_alias_default_and_bad_input_through_the_api(
        api: Api) -> None:
    spec = api.ok("POST", "/v1/specialists", {"name": "Ann"}, as_="admin")["id"]
    for month in ("2026-10", "2026-11", "2026-12"):
        api.ok("PUT", f"/v1/plans/{spec}/{month}", {"amount": "1000", "currency": "EUR"},
               as_="admin")
    client = api.ok("POST", "/v1/clients", {"kind": "customer", "form": "organisation",
                                            "name": "Acme", "specialist_id": spec,
                                            "occurred_at": "2026-09-01T09:00:00+00:00"})
    paid = api.ok("POST", "/v1/payments", {"client_id": client["id"], "amount": "250",
                                           "currency": "EUR",
                                           "occurred_at": "2026-11-03T10:00:00+00:00"})
    at = "2026-11-10T12:00:00+00:00"

    def get(**params: str) -> dict[str, Any]:
        return api.ok("GET", "/v1/reports/payments", as_="manager", params={
            "at": at, "min_position": str(paid["position"]), **params})

    quarter = get(period="2026-Q4")
    assert (quarter["period"], quarter["totals"][0]["plan"], quarter["totals"][0]["fact"]) == (
        "2026-Q4", "3000.00", "250.00")
    assert get(month="2026-11")["period"] == "2026-11"
    assert get()["period"] == "2026-11"  # the month `at` falls in
    assert get(period="2026-11", month="2026-11")["totals"][0]["fact"] == "250.00"
    for params, field in (({"period": "2026-Q5"}, "query.period"),
                          ({"month": "2026-Q4"}, "query.month"),
                          ({"period": "2026-10", "month": "2026-11"}, "query.period"),
                          ({"debtors_cursor": "zzz"}, "query.debtors_cursor"),
                          ({"calendar": "nowhere"}, "query.calendar"),
                          ({"debtors_sort": "name"}, "query.debtors_sort")):
        answer = api.get("/v1/reports/payments", as_="manager", params={"at": at, **params})
        assert answer.status_code == 422, params
        assert field in answer.text, (params, answer.text)
