"""Payments kept as sums (projections.payment_sums, issue 16.1): the payments report read from
them equals the report computed from the payment facts, under every filter."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from domain.catalogue import jsonable
from domain.periods import parse_period
from infra.bootstrap import Container, build
from infra.clock import ManualClock
from infra.export import import_lines
from infra.settings import Settings
from projections.invoice_settlement import acts_candidates, open_candidates, settle_invoices
from projections.payment_sums import sum_hours, sum_moves
from projections.payments import client_assignments, payment_plans
from projections.payments_report import payments_report
from tests.integration.remote_world import World, t
from tests.support import fresh_pg_database

FIXTURES = Path(__file__).parent.parent / "fixtures"


def both(conn: Any, period: str, at: datetime, as_of: datetime | None, tz: str = "UTC",
         specialist: UUID | None = None) -> dict[str, Any]:
    """The report from the sums, after checking it equals the one from the facts."""
    bodies = [jsonable(payments_report(conn, period=parse_period(period, tz), at=at,
                                       as_of=as_of, specialist_id=specialist,
                                       from_sums=from_sums))
              for from_sums in (True, False)]
    assert bodies[0] == bodies[1], (period, at, as_of, tz, specialist)
    return bodies[0]  # type: ignore[no-any-return]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(t("2028-03-01 08:00"))


@pytest.fixture
def world(any_settings: Settings, clock: ManualClock) -> Iterator[World]:
    container = build(any_settings, clock=clock)
    yield World(container)
    container.close()


def fact(body: dict[str, Any], specialist: UUID) -> str:
    [found] = [ln for ln in body["specialists"] if ln["specialist_id"] == str(specialist)]
    return found["fact"]  # type: ignore[no-any-return]


def test_a_reassignment_entered_later_moves_payments_only_from_its_record_time(
        world: World, clock: ManualClock) -> None:
    ann = world.specialist("Ann", at="2028-02-01")
    bob = world.specialist("Bob", at="2028-02-01")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    clock.set(t("2028-03-05 09:10"))
    world.pay(acme, "100.00", "2028-03-05 09:00")
    clock.set(t("2028-03-06 09:10"))
    world.pay(acme, "40.00", "2028-03-06 09:00")
    clock.set(t("2028-03-10 15:30"))
    world.reassign(acme, bob, "2028-03-06 00:00")  # Bob's from the 6th, entered on the 10th
    with world.conn() as conn:
        assert conn.execute(sum_moves.select()).all()  # the 40.00 moved, once
        at = t("2028-03-20 12:00")
        before = both(conn, "2028-03", at, t("2028-03-10 15:00"))
        assert (fact(before, ann), [ln["specialist_id"] for ln in before["specialists"]]) == (
            "140.00", [str(ann)])
        after = both(conn, "2028-03", at, t("2028-03-10 15:30"))
        assert (fact(after, ann), fact(after, bob)) == ("100.00", "40.00")
        assert fact(both(conn, "2028-03", at, None), bob) == "40.00"


def test_the_hour_as_of_falls_in_counts_only_what_was_recorded_by_then(
        world: World, clock: ManualClock) -> None:
    ann = world.specialist("Ann", at="2028-02-01")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    clock.set(t("2028-03-12 10:05"))
    world.pay(acme, "10.00", "2028-03-02 10:00")
    clock.set(t("2028-03-12 10:40"))
    world.pay(acme, "20.00", "2028-03-02 10:30")  # same hour, same hour of recording
    with world.conn() as conn:
        at = t("2028-03-20 00:00")
        assert fact(both(conn, "2028-03", at, t("2028-03-12 10:20")), ann) == "10.00"
        assert fact(both(conn, "2028-03", at, t("2028-03-12 10:40")), ann) == "30.00"
        assert both(conn, "2028-03", at, t("2028-03-12 09:59"))["specialists"] == []
        # `at` inside the hour: only what occurred by then
        assert fact(both(conn, "2028-03", t("2028-03-02 10:15"), None), ann) == "10.00"
        [row] = conn.execute(sum_hours.select()).all()
        assert (row.amount_units, row.payments) == (300_000, 2)


def test_a_half_hour_zone_splits_the_hour_its_midnight_falls_in(
        world: World, clock: ManualClock) -> None:
    clock.set(t("2028-03-10 08:00"))
    ann = world.specialist("Ann", at="2028-02-01")
    acme = world.client("Acme", specialist=ann, at="2028-02-01")
    world.plan(ann, "2028-03", "100", at="2028-02-01")
    # Kolkata is UTC+05:30: its midnight of 3 March is 18:30 UTC on the 2nd.
    world.pay(acme, "1.00", "2028-03-02 18:10")  # 23:40 on the 2nd in Kolkata
    world.pay(acme, "2.00", "2028-03-02 18:50")  # 00:20 on the 3rd
    world.pay(acme, "4.00", "2028-02-29 18:40")  # 00:10 on 1 March
    with world.conn() as conn:
        body = both(conn, "2028-03", t("2028-03-04 12:00"), None, tz="Asia/Kolkata")
        [line] = body["specialists"]
        assert [(d["date"], d["paid"]) for d in line["daily"]] == [
            ("2028-03-01", "4.00"), ("2028-03-02", "1.00"), ("2028-03-03", "2.00"),
            ("2028-03-04", "0.00")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Container]:
    """The golden demo history (150 clients, 12 months) imported and applied."""
    key = (FIXTURES / "demo_history.master.key").read_text().strip()

    def load(url: str) -> Iterator[Container]:
        container = build(Settings(database_url=url, master_key=key), start_follower=False)
        try:
            with gzip.open(FIXTURES / "demo_history.jsonl.gz") as lines:
                import_lines(container, lines)
            container.runner.catch_up()
            yield container
        finally:
            container.close()

    if request.param == "sqlite":
        yield from load(f"sqlite:///{tmp_path}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield from load(url)


def test_sums_equal_a_full_recomputation_at_20_random_moments_of_the_demo(
        demo: Container) -> None:
    rng = random.Random(16)
    with demo.engine.connect() as conn:
        moments = sorted(r.occurred_at for r in conn.execute(client_assignments.select()))
        recorded = sorted({r.recorded_at for r in conn.execute(payment_plans.select())})
        specialists = sorted({r.specialist_id for r in conn.execute(payment_plans.select())},
                             key=str)
        first, last = moments[0], moments[-1] + timedelta(days=40)
        shown = 0
        for _ in range(20):
            at = first + (last - first) * rng.random()
            as_of = rng.choice([None, rng.choice(recorded),
                                rng.choice(recorded) + timedelta(seconds=rng.randrange(3600))])
            tz = rng.choice(["UTC", "Europe/London", "Asia/Kolkata", "America/New_York"])
            local = at.astimezone(UTC)
            period = rng.choice([f"{local:%Y-%m}", f"{local.year}-Q{(local.month - 1) // 3 + 1}"])
            specialist = rng.choice([None, None, *specialists])
            body = both(conn, period, at, as_of, tz, specialist)
            shown += sum(len(ln["daily"]) for ln in body["specialists"])
        assert shown > 100  # the moments showed real curves, not empty reports


def test_debtors_read_only_invoices_not_known_settled_and_stay_exact(
        world: World, clock: ManualClock) -> None:
    ann = world.specialist("Ann", at="2028-01-01")
    acme = world.client("Acme", specialist=ann, at="2028-01-01")
    beta = world.client("Beta", specialist=ann, at="2028-01-01")
    clock.set(t("2028-02-10 09:00"))
    inv = world.invoice(acme, "A-1", "100.00", issued="2028-01-05", due="2028-02-01")
    paid = world.invoice(beta, "B-1", "50.00", issued="2028-01-05", due="2028-02-01")
    world.pay(acme, "60.00", "2028-02-10 08:00", invoice=inv)
    world.pay(beta, "50.00", "2028-02-10 08:00", invoice=paid)
    clock.set(t("2028-03-20 09:00"))
    world.pay(acme, "40.00", "2028-03-01 10:00", invoice=inv)  # entered on the 20th
    with world.conn() as conn:
        rows = {r.invoice_id: r for r in conn.execute(settle_invoices.select())}
        assert (rows[inv].settled_at, rows[inv].settled_known_at) == (
            t("2028-03-01 10:00"), t("2028-03-20 09:00"))
        assert rows[paid].settled_at == t("2028-02-10 08:00")
        # settled by `at` and known by `as_of`: not even a candidate
        candidates = set(conn.execute(open_candidates(t("2028-03-25 00:00"), None)).scalars())
        assert candidates == set()
        at = t("2028-03-05 00:00")
        assert both(conn, "2028-03", at, None)["debtors"]["total"] == 0
        late = both(conn, "2028-03", at, t("2028-03-10 00:00"))["debtors"]
        assert [(d["client_id"], d["outstanding"]) for d in late["items"]] == [
            (str(acme), "40.00")]
        # On 20 February the 40.00 had not occurred: settled after `at`, so looked at.
        early = both(conn, "2028-03", t("2028-02-20 00:00"), None)["debtors"]
        assert [d["outstanding"] for d in early["items"]] == ["40.00"]
        feb = both(conn, "2028-02", t("2028-02-20 00:00"), None)
        assert feb["debtors"]["total"] == 0  # due on 1 February: not before February
        assert feb["totals"][0]["fact"] == "110.00"


def test_acts_returned_by_the_moment_are_not_looked_at_and_a_late_return_stays_exact(
        world: World, clock: ManualClock) -> None:
    ann = world.specialist("Ann", at="2028-01-01")
    acme = world.client("Acme", specialist=ann, at="2028-01-01")
    clock.set(t("2028-02-10 09:00"))
    early = world.invoice(acme, "A-1", "10.00", issued="2028-01-05", due="2028-02-01")
    late = world.invoice(acme, "A-2", "10.00", issued="2028-01-05", due="2028-02-01")
    world.act_sent(early, "2028-01-06 09:00")
    world.act_sent(late, "2028-01-06 09:00")
    world.act_returned(early, "2028-02-01 09:00")
    clock.set(t("2028-03-15 09:00"))
    world.act_returned(late, "2028-03-01 09:00")  # came back on the 1st, entered on the 15th
    with world.conn() as conn:
        assert set(conn.execute(acts_candidates(t("2028-03-20 00:00"), None)).scalars()) == set()
        at = t("2028-03-10 00:00")

        def out(as_of: str | None) -> list[str]:
            body = both(conn, "2028-03", at, None if as_of is None else t(as_of))
            return [a["number"] for a in body["acts_not_returned"]["items"]]

        assert out(None) == []
        assert out("2028-03-14 00:00") == ["A-2"]
        assert both(conn, "2028-03", t("2028-02-20 00:00"), None)["acts_not_returned"][
            "total"] == 1
