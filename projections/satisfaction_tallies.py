"""Satisfaction counted as surveys end (issue 16.1): tallies per UTC hour of the end x hour of
recording x specialist x template version, and complaints per hour x hour x specialist x stage.

The satisfaction report (projections.satisfaction) reads the tallies of the whole hours of its
window and single items only where an hour is cut (the period's ends, `at`, a local month start
in a half-hour zone, the hour `as_of` falls in); a reassignment folded after items it
re-attributes records a move per item, known from its record time. As for the payment sums
(projections.payment_sums), exact as long as record times follow the store's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    String,
    Table,
    Uuid,
    and_,
    or_,
    select,
)

from domain.client import Client
from domain.months import month_of
from domain.service import Complaint
from domain.survey import Survey
from projections.base import UtcDateTime, metadata
from projections.fold import FoldProjection, Need, Rows
from projections.payment_sums import HOUR, NOBODY, hour_of
from projections.payments import Assignments

sat_survey_hours = Table(
    "sat_survey_hours", metadata,
    Column("hour", UtcDateTime, primary_key=True),
    Column("recorded_hour", UtcDateTime, primary_key=True),
    Column("specialist_id", Uuid, primary_key=True),
    Column("template_id", Uuid, primary_key=True),
    Column("template_version", Integer, primary_key=True, autoincrement=False),
    Column("attempted", Integer, nullable=False),
    Column("completed", Integer, nullable=False),
    Column("fully", Integer, nullable=False),
    Column("satisfied", JSON, nullable=False),  # question id -> completed surveys ticking it
)

sat_complaint_hours = Table(
    "sat_complaint_hours", metadata,
    Column("hour", UtcDateTime, primary_key=True),
    Column("recorded_hour", UtcDateTime, primary_key=True),
    Column("specialist_id", Uuid, primary_key=True),
    Column("stage", String(60), primary_key=True),  # "" for a complaint without a stage
    Column("complaints", Integer, nullable=False),
)

# Each ended survey and each complaint, for the cut hours and for moves.
sat_items = Table(
    "sat_items", metadata,
    Column("item_id", Uuid, primary_key=True),
    Column("kind", String(10), nullable=False),  # survey | complaint
    Column("client_id", Uuid, nullable=False, index=True),
    Column("first_specialist_id", Uuid, nullable=False),
    Column("specialist_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False, index=True),
    Column("recorded_at", UtcDateTime, nullable=False, index=True),
    Column("template_id", Uuid),
    Column("template_version", Integer),
    Column("outcome", String(20)),
    Column("final_ticks", JSON),
    Column("stage", String(60)),
)

sat_moves = Table(
    "sat_moves", metadata,
    Column("item_id", Uuid, primary_key=True),
    Column("position", BigInteger, primary_key=True, autoincrement=False),
    Column("from_specialist_id", Uuid, nullable=False),
    Column("to_specialist_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("known_at", UtcDateTime, nullable=False),
    Index("ix_sat_moves_occurred", "occurred_at"),
)

sat_started = Table(
    "sat_started", metadata,
    Column("survey_id", Uuid, primary_key=True),
    Column("template_id", Uuid, nullable=False),
    Column("template_version", Integer, nullable=False),
    Column("questions", JSON, nullable=False),  # ids of the questions asked
)

sat_assignments = Table(
    "sat_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("specialist_id", Uuid),
    Column("occurred_at", UtcDateTime, nullable=False),
)


class SatisfactionTallies(FoldProjection):
    """Surveys and complaints counted per hour, specialist and template version or stage."""

    name = "satisfaction_tallies"
    tables = (sat_survey_hours, sat_complaint_hours, sat_items, sat_moves, sat_started,
              sat_assignments)
    keeps = (sat_survey_hours, sat_complaint_hours, sat_items, sat_started, sat_assignments)
    shared = (sat_survey_hours, sat_complaint_hours)  # every client's (docs/bus.md, "Partitions")

    def needs(self, event: Any) -> Iterator[Need]:
        if isinstance(event, Survey.SurveyCompleted):
            yield Need(sat_started, "survey_id", event.originator_id)
            yield Need(sat_survey_hours, "hour", hour_of(event.occurred_at))
            if event.client_id is not None:
                yield Need(sat_assignments, "client_id", event.client_id)
        elif isinstance(event, Complaint.ComplaintRegistered):
            yield Need(sat_complaint_hours, "hour", hour_of(event.occurred_at))
            if event.client_id is not None:
                yield Need(sat_assignments, "client_id", event.client_id)
        elif isinstance(event, (Client.ClientRegistered, Client.ClientReassigned)):
            yield Need(sat_assignments, "client_id", event.originator_id)
            yield Need(sat_items, "client_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        if isinstance(event, Survey.SurveyStarted):
            rows.put(sat_started, {
                "survey_id": event.originator_id, "template_id": event.template_id,
                "template_version": event.template_version,
                "questions": [q["id"] for q in event.questions]})
        elif isinstance(event, Survey.SurveyCompleted):
            self._ended(rows, event)
        elif isinstance(event, Complaint.ComplaintRegistered):
            self._complaint(rows, event)
        elif isinstance(event, (Client.ClientRegistered, Client.ClientReassigned)):
            self._assigned(rows, event, position)

    @staticmethod
    def _specialist(rows: Rows, client_id: UUID | None, e: Any) -> UUID:
        if client_id is None:
            return NOBODY
        changes = sorted((r["occurred_at"], r["version"], r["specialist_id"])
                         for r in rows.where(sat_assignments, "client_id", client_id))
        return Assignments({client_id: changes}).at(client_id, e.occurred_at) or NOBODY

    def _ended(self, rows: Rows, e: Survey.SurveyCompleted) -> None:
        started = rows.get(sat_started, e.originator_id)
        if started is None:  # a completion without its start cannot be counted
            return
        spec = self._specialist(rows, e.client_id, e)
        ticks = dict(e.final_ticks)
        rows.put(sat_items, {
            "item_id": e.originator_id, "kind": "survey", "client_id": e.client_id or NOBODY,
            "first_specialist_id": spec, "specialist_id": spec,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp,
            "template_id": started["template_id"],
            "template_version": started["template_version"], "outcome": e.outcome,
            "final_ticks": ticks, "stage": None})
        key = (hour_of(e.occurred_at), hour_of(e.timestamp), spec, started["template_id"],
               started["template_version"])
        found = rows.get(sat_survey_hours, *key)
        tally = dict(found) if found else {
            "hour": key[0], "recorded_hour": key[1], "specialist_id": spec,
            "template_id": key[3], "template_version": key[4], "attempted": 0,
            "completed": 0, "fully": 0, "satisfied": {}}
        tally["attempted"] += 1
        if e.outcome == "completed":
            ticked = [q for q in started["questions"] if ticks.get(q, True)]
            satisfied = dict(tally["satisfied"])
            for question in ticked:
                satisfied[question] = satisfied.get(question, 0) + 1
            tally.update(completed=tally["completed"] + 1, satisfied=satisfied,
                         fully=tally["fully"] + (len(ticked) == len(started["questions"])))
        rows.put(sat_survey_hours, tally)

    def _complaint(self, rows: Rows, e: Complaint.ComplaintRegistered) -> None:
        spec = self._specialist(rows, e.client_id, e)
        rows.put(sat_items, {
            "item_id": e.originator_id, "kind": "complaint", "client_id": e.client_id or NOBODY,
            "first_specialist_id": spec, "specialist_id": spec,
            "occurred_at": e.occurred_at, "recorded_at": e.timestamp, "template_id": None,
            "template_version": None, "outcome": None, "final_ticks": None,
            "stage": e.stage})
        key = (hour_of(e.occurred_at), hour_of(e.timestamp), spec, e.stage or "")
        found = rows.get(sat_complaint_hours, *key)
        rows.put(sat_complaint_hours, {
            "hour": key[0], "recorded_hour": key[1], "specialist_id": spec, "stage": key[3],
            "complaints": (found["complaints"] if found else 0) + 1})

    def _assigned(self, rows: Rows, e: Any, position: int) -> None:
        client_id = e.originator_id
        rows.put(sat_assignments, {"client_id": client_id, "version": e.originator_version,
                                   "specialist_id": e.specialist_id,
                                   "occurred_at": e.occurred_at})
        changes = sorted((r["occurred_at"], r["version"], r["specialist_id"])
                         for r in rows.where(sat_assignments, "client_id", client_id))
        history = Assignments({client_id: changes})
        for item in rows.where(sat_items, "client_id", client_id):
            now = history.at(client_id, item["occurred_at"]) or NOBODY
            if now == item["specialist_id"]:
                continue
            rows.put(sat_moves, {
                "item_id": item["item_id"], "position": position,
                "from_specialist_id": item["specialist_id"], "to_specialist_id": now,
                "occurred_at": item["occurred_at"],
                "known_at": max(e.timestamp, item["recorded_at"])})
            rows.update(sat_items, item["item_id"], specialist_id=now)


@dataclass
class Counts:
    """Signed counts of one month: per (template id, version) [attempted, completed, fully,
    {question: satisfied}], and complaints per stage (None: without one)."""

    versions: dict[tuple[str, int], list[Any]] = field(default_factory=dict)
    complaints: dict[str | None, int] = field(default_factory=dict)

    def survey(self, template_id: str, version: int, attempted: int, completed: int,
               fully: int, satisfied: dict[str, int], sign: int = 1) -> None:
        entry = self.versions.setdefault((template_id, version), [0, 0, 0, {}])
        entry[0] += sign * attempted
        entry[1] += sign * completed
        entry[2] += sign * fully
        for question, n in satisfied.items():
            entry[3][question] = entry[3].get(question, 0) + sign * n

    def complaint(self, stage: str | None, n: int) -> None:
        self.complaints[stage] = self.complaints.get(stage, 0) + n


def tallied(conn: Connection, *, at: datetime, as_of: datetime, tz: str,
            start: datetime | None, end: datetime | None, specialist: UUID | None,
            asked: dict[tuple[str, int], Any]) -> dict[str, Counts]:
    """Per local month (`tz`) the counts of the surveys that ended and the complaints made in
    [start, end), by `at`, known at `as_of` (for `specialist`: attributed to them then)."""
    step = timedelta(microseconds=1)
    last = at if end is None else min(at, end - step)
    out: dict[str, Counts] = {}
    if start is not None and start > last:
        return out
    w0 = None if start is None else start if hour_of(start) == start else hour_of(start) + HOUR
    w1 = last + step if hour_of(last + step) == last + step else hour_of(last)
    cut = hour_of(as_of)
    split: set[datetime] = set()  # hours a local month start cuts (half-hour zones)

    def month(when: datetime) -> Counts:
        return out.setdefault(month_of(when, tz), Counts())

    def whole(hour: datetime) -> bool:
        if month_of(hour, tz) != month_of(hour + HOUR - step, tz):
            split.add(hour)
            return False
        return True

    spec = None if specialist is None else specialist
    for table in (sat_survey_hours, sat_complaint_hours):
        c = table.c
        query = select(table).where(c.hour < w1, c.recorded_hour < cut)
        if w0 is not None:
            query = query.where(c.hour >= w0)
        if spec is not None:
            query = query.where(c.specialist_id == spec)
        for row in conn.execute(query):
            if not whole(row.hour):
                continue
            if table is sat_survey_hours:
                month(row.hour).survey(str(row.template_id), row.template_version,
                                       row.attempted, row.completed, row.fully, row.satisfied)
            else:
                month(row.hour).complaint(row.stage or None, row.complaints)
    i = sat_items.c
    edges = [i.occurred_at >= w1, i.recorded_at >= cut,
             *[and_(i.occurred_at >= h, i.occurred_at < h + HOUR) for h in sorted(split)]]
    if w0 is not None:
        edges.append(i.occurred_at < w0)
    single = select(sat_items).where(i.occurred_at <= last, i.recorded_at <= as_of, or_(*edges))
    if start is not None:
        single = single.where(i.occurred_at >= start)
    if spec is not None:
        single = single.where(i.first_specialist_id == spec)
    for item in conn.execute(single):
        _count(month(item.occurred_at), item, asked, 1)
    if spec is not None:
        m = sat_moves.c
        moved = (select(sat_items, m.from_specialist_id, m.to_specialist_id)
                 .select_from(sat_moves.join(sat_items, sat_items.c.item_id == m.item_id))
                 .where(m.occurred_at <= last, m.known_at <= as_of,
                        or_(m.from_specialist_id == spec, m.to_specialist_id == spec)))
        if start is not None:
            moved = moved.where(m.occurred_at >= start)
        for item in conn.execute(moved):
            sign = (item.to_specialist_id == spec) - (item.from_specialist_id == spec)
            if sign:
                _count(month(item.occurred_at), item, asked, sign)
    return out


def _count(counts: Counts, item: Any, asked: dict[tuple[str, int], Any], sign: int) -> None:
    if item.kind == "complaint":
        counts.complaint(item.stage, sign)
        return
    questions = [q["id"] for q in asked[(str(item.template_id), item.template_version)]]
    ticks = item.final_ticks or {}
    completed = item.outcome == "completed"
    ticked = [q for q in questions if ticks.get(q, True)] if completed else []
    counts.survey(str(item.template_id), item.template_version, 1, int(completed),
                  int(completed and len(ticked) == len(questions)), {q: 1 for q in ticked},
                  sign)
