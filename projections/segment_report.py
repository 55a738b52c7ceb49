"""The segments report at a business date: counts and clients per segment, the loyalty-value
matrix, and month-on-month transitions, all with the calendar-month arithmetic of domain.months.

Definitions (D = the local calendar date of `at` in the report's time zone; only events recorded
at or before `as_of` and occurred at or before `at` count; days are local calendar days):
- last activity: the local date of the client's last closed work order (WorkOrderClosed
  occurred_at); for a client without any closed work order, of its last ContactLogged.
  Segment = domain.months.segment_at(last activity, D).
- the clients of a date: registered by then (business time), or with activity by then (a
  back-dated import registers today and records older visits).
- matrix: closed work orders with a local date in [add_months(D, -13), D], the same lower bound
  as `at_risk`. Visits = their count, revenue = the sum of their amounts in the report currency
  (the only currency seen, or the one asked for). Bands are lower-inclusive thresholds:
  visits `1,2,4` gives 0 | 1 | 2-3 | 4+; revenue `500,2000,5000` gives [0, 500) | [500, 2000) |
  [2000, 5000) | [5000, ...). Rows are visit bands, columns revenue bands, cells client counts.
- transitions: segment on add_months(D, -1) (whole day) -> segment at `at`, per client of the
  later date; `from` is null for a client not yet a client on the earlier date.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, func, select

from domain.errors import InvalidValueError
from domain.months import Segment, add_months, segment_at
from projections.report_time import day_end, day_start, local_date, zone_of
from projections.segments import segment_activity, segment_clients

WINDOW_MONTHS = 13
DEFAULT_VISIT_BANDS = (1, 2, 4)
DEFAULT_REVENUE_BANDS = (Decimal(500), Decimal(2000), Decimal(5000))
SEGMENTS = tuple(Segment)


@dataclass
class _Client:
    """What the report needs of one client: latest activity instants and window totals."""

    registered_at: datetime
    latest: dict[str, datetime] = field(default_factory=dict)  # kind -> by `at`
    latest_before: dict[str, datetime] = field(default_factory=dict)  # by the earlier day
    visits: int = 0
    revenue: dict[str | None, Decimal] = field(default_factory=dict)


def _last_day(latest: dict[str, datetime], zone: Any) -> date | None:
    """The last visit's local date, or without visits the last contact's."""
    instant = latest.get("visit") or latest.get("contact")
    return None if instant is None else local_date(instant, zone)


def segments_report(conn: Connection, *, at: datetime, as_of: datetime, tz: str,
                    segment: str | None = None, after: UUID | None = None, limit: int = 100,
                    visit_bands: tuple[int, ...] = DEFAULT_VISIT_BANDS,
                    revenue_bands: tuple[Decimal, ...] = DEFAULT_REVENUE_BANDS,
                    currency: str | None = None) -> dict[str, Any]:
    """The whole report; with `segment`, also one page of that segment's client ids."""
    _check_bands(visit_bands, revenue_bands)
    if segment is not None and segment not in SEGMENTS:
        raise InvalidValueError(f"unknown segment {segment!r}", field="segment")
    zone = zone_of(tz)
    today = local_date(at, zone)
    before = add_months(today, -1)
    before_end = day_end(before, zone)
    clients = _clients(conn, at, as_of, before_end, day_start(add_months(today, -WINDOW_MONTHS),
                                                              zone))
    # A client of a date: registered by then, or with activity by then (a back-dated import
    # registers today and records older visits).
    current = {cid: segment_at(_last_day(c.latest, zone), today) for cid, c in clients.items()
               if c.registered_at <= at or c.latest}
    previous = {cid: segment_at(_last_day(c.latest_before, zone), before)
                for cid, c in clients.items()
                if c.registered_at < before_end or c.latest_before}
    counts = Counter(current.values())
    report: dict[str, Any] = {
        "date": today,
        "boundaries": {"active_from": add_months(today, -6),
                       "low_active_from": add_months(today, -12),
                       "at_risk_from": add_months(today, -WINDOW_MONTHS)},
        "total": len(current),
        "counts": {str(s): counts.get(s, 0) for s in SEGMENTS},
        "matrix": _matrix([clients[cid] for cid in current], today, visit_bands,
                          revenue_bands, currency),
        "transitions": _transitions(current, previous, before, today),
    }
    if segment is not None:
        ids = sorted(cid for cid, s in current.items() if s == segment
                     and (after is None or cid > after))
        report["clients"] = {"segment": segment, "items": ids[:limit],
                             "next_cursor": ids[limit - 1] if len(ids) > limit else None}
    return report


def _clients(conn: Connection, at: datetime, as_of: datetime, before_end: datetime,
             window_start: datetime) -> dict[UUID, _Client]:
    """Per client, aggregated in SQL: latest activity by `at` and by the earlier day, and the
    window's visits and revenue per currency."""
    act = segment_activity.c
    known = act.recorded_at <= as_of
    clients = {row.client_id: _Client(row.registered_at) for row in conn.execute(
        select(segment_clients.c.client_id, segment_clients.c.registered_at)
        .where(segment_clients.c.recorded_at <= as_of))}
    for until, attribute in ((act.occurred_at <= at, "latest"),
                             (act.occurred_at < before_end, "latest_before")):
        for row in conn.execute(select(act.client_id, act.kind,
                                       func.max(act.occurred_at).label("last"))
                                .where(known, until).group_by(act.client_id, act.kind)):
            if row.client_id in clients:  # an orphan fact (impossible in order) is no client
                getattr(clients[row.client_id], attribute)[row.kind] = row.last
    # SUM of Numeric(18, 4) comes back as a Decimal of scale 4 on both backends.
    for row in conn.execute(select(act.client_id, act.currency, func.count().label("visits"),
                                   func.sum(act.amount).label("revenue"))
                            .where(known, act.kind == "visit", act.occurred_at >= window_start,
                                   act.occurred_at <= at)
                            .group_by(act.client_id, act.currency)):
        client = clients.get(row.client_id)
        if client is not None:
            client.visits += row.visits
            client.revenue[row.currency] = Decimal(row.revenue or 0)
    return clients


def _check_bands(visit_bands: tuple[int, ...], revenue_bands: tuple[Decimal, ...]) -> None:
    for name, bands in (("visit_bands", tuple(map(Decimal, visit_bands))),
                        ("revenue_bands", revenue_bands)):
        if not bands or bands[0] <= 0 or any(b <= a for a, b in pairwise(bands)):
            raise InvalidValueError("give strictly increasing positive thresholds", field=name)


def _matrix(clients: list[_Client], today: date, visit_bands: tuple[int, ...],
            revenue_bands: tuple[Decimal, ...], currency: str | None) -> dict[str, Any]:
    seen = sorted({c for client in clients for c in client.revenue if c is not None})
    if currency is None:
        if len(seen) > 1:
            raise InvalidValueError("the window holds " + ", ".join(seen)
                                    + "; name the revenue currency", field="currency")
        currency = seen[0] if seen else None
    cells = [[0] * (len(revenue_bands) + 1) for _ in range(len(visit_bands) + 1)]
    for client in clients:
        revenue = client.revenue.get(currency, Decimal(0))
        row = bisect.bisect_right(visit_bands, client.visits)
        cells[row][bisect.bisect_right(revenue_bands, revenue)] += 1
    return {"window": {"from": add_months(today, -WINDOW_MONTHS), "to": today},
            "currency": currency, "visit_bands": _visit_labels(visit_bands),
            "revenue_bands": _revenue_labels(revenue_bands), "clients": cells}


def _visit_labels(bands: tuple[int, ...]) -> list[dict[str, Any]]:
    lows = (0, *bands)
    out = []
    for i, low in enumerate(lows):
        high = bands[i] - 1 if i < len(bands) else None
        label = f"{low}+" if high is None else str(low) if high == low else f"{low}-{high}"
        out.append({"label": label, "min": low, "max": high})
    return out


def _revenue_labels(bands: tuple[Decimal, ...]) -> list[dict[str, Any]]:
    lows = (Decimal(0), *bands)
    return [{"label": f"{low}+" if i == len(bands) else f"{low}-{bands[i]}", "min": str(low),
             "below": None if i == len(bands) else str(bands[i])}
            for i, low in enumerate(lows)]


def _transitions(current: dict[UUID, Segment], previous: dict[UUID, Segment], before: date,
                 today: date) -> dict[str, Any]:
    moves = Counter((previous.get(cid), seg) for cid, seg in current.items())
    order: dict[Segment | None, int] = {None: -1, **{s: i for i, s in enumerate(SEGMENTS)}}
    items = [{"from": None if old is None else str(old), "to": str(new), "clients": n}
             for (old, new), n in sorted(moves.items(),
                                         key=lambda m: (order[m[0][0]], order[m[0][1]]))]
    return {"from_date": before, "to_date": today, "items": items}
