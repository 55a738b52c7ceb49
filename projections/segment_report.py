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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_FLOOR, Decimal
from itertools import pairwise
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Connection,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union,
    union_all,
)

from domain.errors import InvalidValueError
from domain.months import Segment, add_months, segment_at
from projections.base import UtcDateTime
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
                    currency: str | None = None, in_sql: bool = True) -> dict[str, Any]:
    """The whole report; with `segment`, also one page of that segment's client ids.

    `in_sql` classifies and counts in the database (a few rows come back); False loads every
    client and classifies in Python with domain.months.segment_at (the reference the tests
    compare the SQL with)."""
    _check_bands(visit_bands, revenue_bands)
    if segment is not None and segment not in SEGMENTS:
        raise InvalidValueError(f"unknown segment {segment!r}", field="segment")
    frame = _Frame.of(at, as_of, tz)
    report: dict[str, Any] = {
        "date": frame.today,
        "boundaries": {"active_from": add_months(frame.today, -6),
                       "low_active_from": add_months(frame.today, -12),
                       "at_risk_from": add_months(frame.today, -WINDOW_MONTHS)},
    }
    if in_sql:
        report.update(_report_in_sql(conn, frame, visit_bands, revenue_bands, currency))
        if segment is not None:
            ids = segment_members(conn, at=at, as_of=as_of, tz=tz, segment=segment,
                                  after=after, limit=limit + 1)
            report["clients"] = _page(segment, ids, limit)
        return report
    zone, today, before = frame.zone, frame.today, frame.before
    clients = _clients(conn, at, as_of, frame.before_end, frame.window_start)
    # A client of a date: registered by then, or with activity by then (a back-dated import
    # registers today and records older visits).
    current = {cid: segment_at(_last_day(c.latest, zone), today) for cid, c in clients.items()
               if c.registered_at <= at or c.latest}
    previous = {cid: segment_at(_last_day(c.latest_before, zone), before)
                for cid, c in clients.items()
                if c.registered_at < frame.before_end or c.latest_before}
    counts = Counter(current.values())
    report.update({
        "total": len(current),
        "counts": {str(s): counts.get(s, 0) for s in SEGMENTS},
        "matrix": _matrix([clients[cid] for cid in current], today, visit_bands,
                          revenue_bands, currency),
        "transitions": _transitions(current, previous, before, today),
    })
    if segment is not None:
        ids = sorted(cid for cid, s in current.items() if s == segment
                     and (after is None or cid > after))
        report["clients"] = _page(segment, ids, limit)
    return report


def segment_members(conn: Connection, *, at: datetime, as_of: datetime, tz: str, segment: str,
                    after: UUID | None = None, limit: int | None = None) -> list[UUID]:
    """The ids of the clients in `segment` at `at` (as of `as_of`), in id order, after `after`,
    at most `limit` of them: the report's page of clients, and the client list's filter."""
    if segment not in SEGMENTS:
        raise InvalidValueError(f"unknown segment {segment!r}", field="segment")
    classified = _classified(_Frame.of(at, as_of, tz)).subquery()
    query = select(classified.c.client_id).where(classified.c.now == segment)
    if after is not None:
        query = query.where(classified.c.client_id > after)
    query = query.order_by(classified.c.client_id)
    if limit is not None:
        query = query.limit(limit)
    return list(conn.execute(query).scalars())


def _page(segment: str, ids: list[UUID], limit: int) -> dict[str, Any]:
    return {"segment": segment, "items": ids[:limit],
            "next_cursor": ids[limit - 1] if len(ids) > limit else None}


@dataclass(frozen=True)
class _Frame:
    """The report's moments: `at`, `as_of`, the local date D of `at`, the earlier day D - 1
    month and where it ends, and where the 13-month window starts."""

    at: datetime
    as_of: datetime
    zone: Any
    today: date
    before: date
    before_end: datetime
    window_start: datetime

    @classmethod
    def of(cls, at: datetime, as_of: datetime, tz: str) -> _Frame:
        zone = zone_of(tz)
        today = local_date(at, zone)
        before = add_months(today, -1)
        return cls(at, as_of, zone, today, before, day_end(before, zone),
                   day_start(add_months(today, -WINDOW_MONTHS), zone))


# Amounts have at most 4 decimals (Numeric(18, 4)): summed as integer ten-thousandths, so the
# revenue bands compare exact sums on SQLite too (which would sum NUMERIC as floating point).
_UNITS = 10_000
_LONG_AGO = datetime(1, 1, 1, tzinfo=UTC)


def _segment(frame: _Frame, last: ColumnElement[Any], day: date) -> ColumnElement[str]:
    """segment_at(local date of `last`, `day`) in SQL: a local date on or after a boundary day
    is an instant at or after that day's local midnight (day_start; the matrix window uses
    the same bound). This holds wherever setting the clocks back stays within one local day;
    a zone setting them back from after midnight to before it would break it."""
    def since(months: int) -> ColumnElement[Any]:
        return literal(day_start(add_months(day, -months), frame.zone), UtcDateTime)

    return case((last.is_(None), str(Segment.NEVER)),
                (last >= since(6), str(Segment.ACTIVE)),
                (last >= since(12), str(Segment.LOW_ACTIVE)),
                (last >= since(WINDOW_MONTHS), str(Segment.AT_RISK)),
                else_=str(Segment.LOST))


def _classified(frame: _Frame) -> CompoundSelect[Any]:
    """(client_id, now, earlier): each client of the date D (registered by then, or with
    activity by then) with its segment on D and on the earlier day (NULL: not a client then).

    Quiet clients (all their activity known by `as_of` and older than the earlier day's end,
    hence than `at`) are classified from the latest instants kept on their row; the others
    from their activity rows."""
    c = segment_clients.c
    be = frame.before_end
    known = c.recorded_at <= frame.as_of
    # NULL reads as long ago; written with coalesce so that SQLite scans the table once
    # instead of walking the last_at index with a lookup per client.
    long_ago = literal(_LONG_AGO, UtcDateTime)
    quiet = and_(func.coalesce(c.last_at, long_ago) < be,
                 func.coalesce(c.activity_recorded_at, long_ago) <= frame.as_of)
    # The others, by two index ranges: active lately, or with activity recorded after as_of.
    lately = union(select(c.client_id).where(c.last_at >= be),
                   select(c.client_id).where(c.activity_recorded_at > frame.as_of)).subquery()
    last = func.coalesce(c.last_visit_at, c.last_contact_at)
    stored = (select(c.client_id, _segment(frame, last, frame.today).label("now"),
                     case((or_(c.registered_at < be, last.is_not(None)),
                           _segment(frame, last, frame.before))).label("earlier"))
              .where(known, quiet, or_(c.registered_at <= frame.at, last.is_not(None))))
    act = segment_activity.c
    visit, contact = act.kind == "visit", act.kind == "contact"
    earlier = act.occurred_at < be  # be <= at: within the rows joined
    grouped = (select(c.client_id, c.registered_at,
                      func.max(case((visit, act.occurred_at))).label("visit"),
                      func.max(case((contact, act.occurred_at))).label("contact"),
                      func.max(case((and_(visit, earlier), act.occurred_at))).label("visit_b"),
                      func.max(case((and_(contact, earlier), act.occurred_at)))
                      .label("contact_b"))
               .select_from(lately.join(segment_clients, c.client_id == lately.c.client_id)
                            .outerjoin(segment_activity, and_(
                                act.client_id == c.client_id, act.recorded_at <= frame.as_of,
                                act.occurred_at <= frame.at)))
               .where(known)
               .group_by(c.client_id, c.registered_at)).subquery()
    g = grouped.c
    now_last = func.coalesce(g.visit, g.contact)
    before_last = func.coalesce(g.visit_b, g.contact_b)
    counted = (select(g.client_id, _segment(frame, now_last, frame.today).label("now"),
                      case((or_(g.registered_at < be, before_last.is_not(None)),
                            _segment(frame, before_last, frame.before))).label("earlier"))
               .where(or_(g.registered_at <= frame.at, now_last.is_not(None))))
    return union_all(stored, counted)


def _in_window(frame: _Frame) -> ColumnElement[bool]:
    act = segment_activity.c
    return and_(act.kind == "visit", act.occurred_at >= frame.window_start,
                act.occurred_at <= frame.at, act.recorded_at <= frame.as_of)


def _window_currencies(conn: Connection, frame: _Frame) -> list[str]:
    """The currencies of the window's visits, sorted."""
    act = segment_activity.c
    return sorted(c for c in conn.execute(select(act.currency).where(
        _in_window(frame), act.currency.is_not(None)).group_by(act.currency)).scalars())


def _window_cells(conn: Connection, frame: _Frame, visit_bands: tuple[int, ...],
                  thresholds: list[int], currency: str | None) -> list[tuple[int, int, int]]:
    """(visit band, revenue band, clients) of the clients with visits in the 13-month window,
    banded in SQL: a band is the number of thresholds at or below the figure (bisect_right),
    revenue the sum of the report currency's amounts in integer ten-thousandths. A few rows
    come back, however many clients visited."""
    act = segment_activity.c
    units = cast(func.round(act.amount * _UNITS), BigInteger)
    mine = act.currency.is_(None) if currency is None else act.currency == currency
    per_client = (select(func.count().label("visits"),
                         func.coalesce(func.sum(case((mine, units))), 0).label("revenue"))
                  .where(_in_window(frame)).group_by(act.client_id)).subquery()
    v, r = per_client.c.visits, per_client.c.revenue

    def band(figure: Any, limits: Sequence[int]) -> ColumnElement[int]:
        if not limits:
            return literal(0)
        out: ColumnElement[Any] = case((figure >= limits[0], 1), else_=0)
        for limit in limits[1:]:
            out = out + case((figure >= limit, 1), else_=0)
        return out

    row, column = band(v, visit_bands).label("row"), band(r, thresholds).label("col")
    return [(int(g.row), int(g.col), int(g.n)) for g in conn.execute(
        select(row, column, func.count().label("n")).group_by(row, column))]


def _report_in_sql(conn: Connection, frame: _Frame, visit_bands: tuple[int, ...],
                   revenue_bands: tuple[Decimal, ...], currency: str | None) -> dict[str, Any]:
    """Counts and transitions from one GROUP BY over the clients' classifications; the matrix
    from the window's visits (every other client of the date sits in the first cell)."""
    classified = _classified(frame).subquery()
    k = classified.c
    counts: Counter[str] = Counter()
    moves: Counter[tuple[Segment | None, Segment]] = Counter()
    for g in conn.execute(select(k.now, k.earlier, func.count().label("n"))
                          .group_by(k.now, k.earlier)):
        counts[g.now] += g.n
        moves[(None if g.earlier is None else Segment(g.earlier), Segment(g.now))] += g.n
    if currency is None:
        seen = _window_currencies(conn, frame)
        if len(seen) > 1:
            raise InvalidValueError("the window holds " + ", ".join(seen)
                                    + "; name the revenue currency", field="currency")
        currency = seen[0] if seen else None
    # ceil(threshold in units): an integer sum reaches a threshold iff it reaches its ceiling.
    thresholds = [-int((-t * _UNITS).to_integral_value(rounding=ROUND_FLOOR))
                  for t in revenue_bands]
    total = sum(counts.values())
    cells = [[0] * (len(revenue_bands) + 1) for _ in range(len(visit_bands) + 1)]
    in_window = 0
    for row, column, n in _window_cells(conn, frame, visit_bands, thresholds, currency):
        cells[row][column] += n
        in_window += n
    cells[0][0] += total - in_window
    today = frame.today
    return {
        "total": total,
        "counts": {str(s): counts.get(s, 0) for s in SEGMENTS},
        "matrix": {"window": {"from": add_months(today, -WINDOW_MONTHS), "to": today},
                   "currency": currency, "visit_bands": _visit_labels(visit_bands),
                   "revenue_bands": _revenue_labels(revenue_bands), "clients": cells},
        "transitions": _moves(moves, frame.before, today),
    }


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
    return _moves(Counter((previous.get(cid), seg) for cid, seg in current.items()), before,
                  today)


def _moves(moves: Counter[tuple[Segment | None, Segment]], before: date,
           today: date) -> dict[str, Any]:
    order: dict[Segment | None, int] = {None: -1, **{s: i for i, s in enumerate(SEGMENTS)}}
    items = [{"from": None if old is None else str(old), "to": str(new), "clients": n}
             for (old, new), n in sorted(moves.items(),
                                         key=lambda m: (order[m[0][0]], order[m[0][1]]))]
    return {"from_date": before, "to_date": today, "items": items}
