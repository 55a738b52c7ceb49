"""GET /v1/reports/segments: the §5 month arithmetic, the matrix, transitions and as_of."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest

from infra.settings import Settings
from tests.integration.service_story import Station, station_container, t
from tests.support import Api

SEGMENTS = ("active", "low_active", "at_risk", "lost", "never")
AUG31 = "2026-08-31T12:00:00+00:00"
EARLY = "2025-01-01T00:00:00+00:00"


def segments_of(api: Api, **params: Any) -> dict[str, str]:
    """client id -> segment, read through the paginated client lists of every segment."""
    out: dict[str, str] = {}
    for segment in SEGMENTS:
        page = api.ok("GET", "/v1/reports/segments",
                      params={**params, "segment": segment, "limit": 500}, as_="analyst")
        assert page["clients"]["next_cursor"] is None
        out.update({cid: segment for cid in page["clients"]["items"]})
    return out


@pytest.fixture
def august(sqlite_settings: Settings) -> Iterator[tuple[Api, dict[str, UUID]]]:
    """Clients c1..c12, each with a last activity on a boundary of AUG31 or of July 31."""
    with station_container(sqlite_settings, "2026-10-01T00:00:00+00:00") as (container, _c):
        s = Station(container)
        c = {f"c{i}": s.client(EARLY) for i in range(1, 10)}
        c["c10"] = s.client("2026-09-15T00:00:00+00:00")  # registered after `at`
        c["c11"] = s.client(EARLY)
        c["c12"] = s.client("2026-08-10T00:00:00+00:00")  # new in August
        s.visit(c["c1"], "2025-10-01T10:00:00+00:00", "250.00")
        s.visit(c["c1"], "2026-02-28T10:00:00+00:00", "300.00")
        s.visit(c["c2"], "2026-02-27T10:00:00+00:00", "100.00")
        s.visit(c["c3"], "2025-08-31T10:00:00+00:00", "2500.00")
        for day in ("01", "05", "10", "30"):
            s.visit(c["c4"], f"2025-08-{day}T10:00:00+00:00", "1250.00")
        s.visit(c["c5"], "2025-07-31T10:00:00+00:00", "499.99")
        s.visit(c["c6"], "2025-07-30T10:00:00+00:00", "800.00")
        s.contact(c["c7"], "2026-03-01T10:00:00+00:00")
        s.visit(c["c8"], "2026-01-15T10:00:00+00:00", "1000.00")
        s.contact(c["c8"], "2026-06-15T10:00:00+00:00")  # a visit exists: contacts don't count
        order = s.open(c["c11"], "2026-08-30T10:00:00+00:00")
        s.close(order, "2026-09-02T10:00:00+00:00")  # closed after `at`
        s.contact(c["c12"], "2026-08-11T10:00:00+00:00")
        s.settled()
        yield Api(container), c


def test_segments_at_a_month_end_follow_the_clamped_calendar_months(
        august: tuple[Api, dict[str, UUID]]) -> None:
    api, c = august
    report = api.ok("GET", "/v1/reports/segments", params={"at": AUG31}, as_="analyst")
    assert report["date"] == "2026-08-31"
    assert report["boundaries"] == {"active_from": "2026-02-28", "low_active_from": "2025-08-31",
                                    "at_risk_from": "2025-07-31"}
    assert report["counts"] == {"active": 3, "low_active": 3, "at_risk": 2, "lost": 1,
                                "never": 2}
    assert report["total"] == 11
    name_of = {str(v): k for k, v in c.items()}
    assert {name_of[cid]: seg for cid, seg in segments_of(api, at=AUG31).items()} == {
        "c1": "active", "c2": "low_active", "c3": "low_active", "c4": "at_risk",
        "c5": "at_risk", "c6": "lost", "c7": "active", "c8": "low_active", "c9": "never",
        "c11": "never", "c12": "active"}


def test_transitions_compare_with_the_same_day_a_month_earlier(
        august: tuple[Api, dict[str, UUID]]) -> None:
    api, _c = august
    moves = api.ok("GET", "/v1/reports/segments", params={"at": AUG31})["transitions"]
    # July 31: active >= Jan 31 2026, low_active >= Jul 31 2025, at_risk >= Jun 30 2025 (clamped).
    assert moves == {"from_date": "2026-07-31", "to_date": "2026-08-31", "items": [
        {"from": None, "to": "active", "clients": 1},
        {"from": "active", "to": "active", "clients": 2},
        {"from": "active", "to": "low_active", "clients": 1},
        {"from": "low_active", "to": "low_active", "clients": 2},
        {"from": "low_active", "to": "at_risk", "clients": 2},
        {"from": "at_risk", "to": "lost", "clients": 1},
        {"from": "never", "to": "never", "clients": 2}]}


def test_loyalty_value_matrix_counts_visits_and_revenue_over_thirteen_months(
        august: tuple[Api, dict[str, UUID]]) -> None:
    api, _c = august
    matrix = api.ok("GET", "/v1/reports/segments", params={"at": AUG31})["matrix"]
    assert matrix["window"] == {"from": "2025-07-31", "to": "2026-08-31"}
    assert matrix["currency"] == "EUR"
    assert [b["label"] for b in matrix["visit_bands"]] == ["0", "1", "2-3", "4+"]
    assert matrix["revenue_bands"][1] == {"label": "500-2000", "min": "500", "below": "2000"}
    assert matrix["clients"] == [
        [5, 0, 0, 0],   # c6 (visit before the window), c7, c9, c11, c12
        [2, 1, 1, 0],   # c2 100, c5 499.99 | c8 1000 | c3 2500
        [0, 1, 0, 0],   # c1: 2 visits, 550
        [0, 0, 0, 1]]   # c4: 4 visits, exactly 5000
    custom = api.ok("GET", "/v1/reports/segments", params={
        "at": AUG31, "visit_bands": "2", "revenue_bands": "1000"})["matrix"]
    assert [b["label"] for b in custom["revenue_bands"]] == ["0-1000", "1000+"]
    # 0-1 visits: under 1000 c2 c5 c6 c7 c9 c11 c12, from 1000 c3 and c8 (exactly 1000);
    # 2+ visits: c1 550, c4 5000.
    assert custom["clients"] == [[7, 2], [1, 1]]


def test_segment_client_lists_are_paginated(august: tuple[Api, dict[str, UUID]]) -> None:
    api, c = august
    ids: list[str] = []
    cursor = None
    for _page in range(4):
        params = {"at": AUG31, "segment": "active", "limit": 1,
                  **({"cursor": cursor} if cursor else {})}
        page = api.ok("GET", "/v1/reports/segments", params=params)["clients"]
        assert len(page["items"]) <= 1
        ids += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert ids == sorted(str(c[n]) for n in ("c1", "c7", "c12"))


# One client per last visit; segments expected at four month ends, computed by hand.
VISITS = ("2026-04-29", "2026-04-30", "2027-01-28", "2027-01-29", "2027-08-28", "2027-08-29",
          "2028-02-27", "2028-02-28", "2028-02-29")
N, A, L, R, X = "never", "active", "low_active", "at_risk", "lost"
EXPECTED = {
    # at          -6m         -12m        -13m
    "2026-10-31": [L, A, N, N, N, N, N, N, N],   # 2026-04-30  2025-10-31  2025-09-30
    "2028-02-29": [X, X, X, R, L, A, A, A, A],   # 2027-08-29  2027-02-28  2027-01-29
    "2028-08-31": [X, X, X, X, R, R, L, L, A],   # 2028-02-29  2027-08-31  2027-07-31
    "2029-02-28": [X, X, X, X, X, X, R, L, L],   # 2028-08-28  2028-02-28  2028-01-28
}


def test_month_ends_february_and_leap_years_shift_the_boundaries(
        sqlite_settings: Settings) -> None:
    with station_container(sqlite_settings, "2029-06-01T00:00:00+00:00") as (container, _c):
        s = Station(container)
        clients = [s.client("2026-01-01T00:00:00+00:00") for _ in VISITS]
        for client, day in zip(clients, VISITS, strict=True):
            s.visit(client, f"{day}T10:00:00+00:00")
        late_evening = s.client("2026-01-01T00:00:00+00:00")
        s.visit(late_evening, "2026-04-29T23:30:00+00:00")  # April 30, 01:30 in Berlin
        s.settled()
        api = Api(container)
        for day, expected in EXPECTED.items():
            found = segments_of(api, at=f"{day}T12:00:00+00:00")
            assert [found[str(cid)] for cid in clients] == expected, day
        oct31 = "2026-10-31T12:00:00+00:00"
        assert segments_of(api, at=oct31)[str(late_evening)] == "low_active"
        assert segments_of(api, at=oct31, tz="Europe/Berlin")[str(late_evening)] == "active"


def test_as_of_ignores_later_records_and_counts_late_entries_once_recorded(
        any_settings: Settings) -> None:
    with station_container(any_settings, "2026-03-01T09:00:00+00:00") as (container, clock):
        s = Station(container)
        client = s.client(EARLY)
        s.visit(client, "2025-01-10T10:00:00+00:00")
        clock.set(t("2026-03-05T09:00:00+00:00"))
        s.visit(client, "2026-02-01T10:00:00+00:00")  # late entry: occurred a month earlier
        s.settled()
        api = Api(container)
        at = "2026-03-01T12:00:00+00:00"

        def counts(as_of: str) -> dict[str, int]:
            return api.ok("GET", "/v1/reports/segments",  # type: ignore[no-any-return]
                          params={"at": at, "as_of": as_of})["counts"]

        assert counts("2026-03-01T08:59:59+00:00") == dict.fromkeys(SEGMENTS, 0)
        assert counts("2026-03-01T09:00:00+00:00") == {**dict.fromkeys(SEGMENTS, 0), "lost": 1}
        assert counts("2026-03-05T08:59:59+00:00")["lost"] == 1
        assert counts("2026-03-05T09:00:00+00:00") == {**dict.fromkeys(SEGMENTS, 0),
                                                        "active": 1}


def test_revenue_needs_a_currency_when_the_window_holds_several(
        sqlite_settings: Settings) -> None:
    with station_container(sqlite_settings, "2026-06-01T00:00:00+00:00") as (container, _c):
        s = Station(container)
        s.visit(s.client(EARLY), "2026-05-01T10:00:00+00:00", "900.00", "EUR")
        s.visit(s.client(EARLY), "2026-05-02T10:00:00+00:00", "900.00", "USD")
        s.settled()
        api = Api(container)
        at = "2026-05-31T00:00:00+00:00"
        ambiguous = api.get("/v1/reports/segments", params={"at": at})
        assert ambiguous.status_code == 422
        assert "EUR, USD" in ambiguous.json()["detail"]
        assert ambiguous.json()["errors"][0]["field"] == "query.currency"
        usd = api.ok("GET", "/v1/reports/segments", params={"at": at, "currency": "USD"})
        # Both visited once; only the USD visit counts as revenue in the USD matrix.
        assert usd["matrix"]["clients"][1] == [1, 1, 0, 0]
        for params in ({"visit_bands": "2,1"}, {"revenue_bands": "0"}, {"segment": "gold"},
                       {"at": "2026-05-31"}, {"cursor": "nope"},
                       {"as_of": "0001-01-01T00:00:00+00:00"}):
            assert api.get("/v1/reports/segments", params=params).status_code == 422, params
        assert api.get("/v1/reports/segments", as_=None).status_code == 401
