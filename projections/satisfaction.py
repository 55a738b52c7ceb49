"""The satisfaction report: reach, fully satisfied, % per question and stage, complaints, trend.

Definitions (all over business time, events recorded at or before `as_of`, occurred at or before
`at`, in the period `start <= occurred_at < end`):
- attempted: surveys that ENDED in the period (any outcome); completed: those with outcome
  completed; reach = completed / attempted. A survey still in progress is in no period.
- answers: each question of a completed survey with its final tick (a missing tick reads ticked,
  as every question starts ticked). Per question (keyed by template and question id, text of the
  newest template version answered) and per stage (all answers of the stage's questions).
- fully satisfied: completed surveys with every question ticked.
- complaints: ComplaintRegistered in the period, counted per stage (those without a stage apart).
- months: the local calendar month (report time zone) of completion / of the complaint.
- specialist: the client's specialist when the survey ended / the complaint occurred (before
  the client's registration in business time: the specialist given at registration).
- segment: the client's segment at `at` (active, low_active, at_risk, lost, never; the
  segments report's rules), not at the survey: every surveyed client had a visit days before
  it, so a segment then would say nothing; `by_segment` splits the figures by it.
Percentages: {"satisfied", "answered", "percent"}; percent is the exact ratio rounded half up to
one decimal as a string, null when nothing was answered.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, Select, case, func, literal, select

from domain.months import month_bounds, month_of
from projections.base import UtcDateTime
from projections.report_time import percent
from projections.satisfaction_tallies import Counts, tallied
from projections.segment_report import SEGMENTS, segment_members
from projections.surveys import assignments, complaints, survey_questions, surveys


@dataclass
class _Tally:
    """Counts for one set of ended surveys and complaints; months add up to the period."""

    attempted: int = 0
    completed: int = 0
    fully: int = 0
    # (template id, question id) -> [satisfied, answered, newest version answered]
    questions: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    stages: dict[str, list[int]] = field(default_factory=dict)  # stage -> [satisfied, answered]
    complaints: Counter[str | None] = field(default_factory=Counter)

    def add(self, other: _Tally) -> None:
        self.attempted += other.attempted
        self.completed += other.completed
        self.fully += other.fully
        for key, (sat, ans, version) in other.questions.items():
            mine = self.questions.setdefault(key, [0, 0, 0])
            mine[0] += sat
            mine[1] += ans
            mine[2] = max(mine[2], version)
        for stage, (sat, ans) in other.stages.items():
            theirs = self.stages.setdefault(stage, [0, 0])
            theirs[0] += sat
            theirs[1] += ans
        self.complaints.update(other.complaints)


def satisfaction_report(conn: Connection, *, at: datetime, as_of: datetime, tz: str,
                        start: datetime | None = None, end: datetime | None = None,
                        specialist: UUID | None = None, in_sql: bool = True,
                        segment: str | None = None, by_segment: bool = False,
                        from_tallies: bool = True) -> dict[str, Any]:
    """The report (see the module docstring). Without a specialist or segment, complaints are
    counted per stage and local month in SQL (`in_sql`; False counts them row by row in
    Python, the reference the tests compare with). `segment` keeps the clients in that segment
    at `at` (projections.segment_report); `by_segment` adds the figures per segment. Without a
    segment the counts come from the tallies kept by projections.satisfaction_tallies;
    `from_tallies=False` counts the surveys one by one (the reference the tests compare
    with)."""
    segment_of = (_segments(conn, at=at, as_of=as_of, tz=tz)
                  if segment is not None or by_segment else None)
    if segment is not None:
        assert segment_of is not None
        segment_of = {c: s for c, s in segment_of.items() if s == segment}
        kept = segment_of
        report = _report(conn, at=at, as_of=as_of, tz=tz, start=start, end=end,
                         specialist=specialist, in_sql=False,
                         keep=lambda client_id: client_id in kept)
    else:
        report = _report(conn, at=at, as_of=as_of, tz=tz, start=start, end=end,
                         specialist=specialist, in_sql=in_sql, keep=None,
                         from_tallies=from_tallies)
    if by_segment:
        assert segment_of is not None
        groups = segment_of
        report["by_segment"] = []
        for name in SEGMENTS:
            if segment is not None and name != segment:
                continue
            members = {c for c, s in groups.items() if s == name}
            part = _report(conn, at=at, as_of=as_of, tz=tz, start=start, end=end,
                           specialist=specialist, in_sql=False, keep=members.__contains__)
            report["by_segment"].append({
                "segment": str(name), "surveys": part["surveys"],
                "fully_satisfied": part["fully_satisfied"], "stages": part["stages"],
                "complaints": part["complaints"]})
    return report


def _segments(conn: Connection, *, at: datetime, as_of: datetime,
              tz: str) -> dict[UUID, str]:
    """Each client's segment at `at` as known at `as_of` (the segments report's rules)."""
    found: dict[UUID, str] = {}
    for name in SEGMENTS:
        for client_id in segment_members(conn, at=at, as_of=as_of, tz=tz, segment=name):
            found[client_id] = str(name)
    return found


def _report(conn: Connection, *, at: datetime, as_of: datetime, tz: str,
            start: datetime | None, end: datetime | None, specialist: UUID | None,
            in_sql: bool, keep: Callable[[UUID], bool] | None,
            from_tallies: bool = True) -> dict[str, Any]:
    ended = select(surveys.c.client_id, surveys.c.template_id, surveys.c.template_version,
                   surveys.c.outcome, surveys.c.completed_at, surveys.c.final_ticks).where(
        surveys.c.outcome.is_not(None), surveys.c.completed_at <= at,
        surveys.c.completed_recorded_at <= as_of)
    filed = select(complaints.c.client_id, complaints.c.stage, complaints.c.occurred_at).where(
        complaints.c.occurred_at <= at, complaints.c.recorded_at <= as_of)
    if start is not None:
        ended = ended.where(surveys.c.completed_at >= start)
        filed = filed.where(complaints.c.occurred_at >= start)
    if end is not None:
        ended = ended.where(surveys.c.completed_at < end)
        filed = filed.where(complaints.c.occurred_at < end)
    asked = {(str(r.template_id), r.template_version): r.questions
             for r in conn.execute(select(survey_questions))}
    months: dict[str, _Tally] = defaultdict(_Tally)
    if keep is None and from_tallies:
        counted = tallied(conn, at=at, as_of=as_of, tz=tz, start=start, end=end,
                          specialist=specialist, asked=asked)
        for month, counts in counted.items():
            tally = _from_counts(counts, asked)
            if tally.attempted or sum(tally.complaints.values()):
                months[month] = tally
        return _whole(months, asked)
    assigned = _specialist_lookup(conn, as_of) if specialist is not None else None
    for row in conn.execute(ended):
        if keep is not None and not keep(row.client_id):
            continue
        if assigned is None or assigned(row.client_id, row.completed_at) == specialist:
            _count_survey(months[month_of(row.completed_at, tz)], row, asked)
    if assigned is None and keep is None and in_sql:
        for month, stage, count in _complaints_by_month(conn, filed, tz):
            months[month].complaints[stage] += count
    else:
        for complaint in conn.execute(filed):
            if keep is not None and not keep(complaint.client_id):
                continue
            if assigned is None or assigned(complaint.client_id,
                                            complaint.occurred_at) == specialist:
                months[month_of(complaint.occurred_at, tz)].complaints[complaint.stage] += 1
    return _whole(months, asked)


def _whole(months: dict[str, _Tally], asked: dict[tuple[str, int], Any]) -> dict[str, Any]:
    total = _Tally()
    for tally in months.values():
        total.add(tally)
    return {**_figures(total, asked),
            "months": [{"month": month, **_figures(months[month], asked)}
                       for month in sorted(months)]}


def _from_counts(counts: Counts, asked: dict[tuple[str, int], Any]) -> _Tally:
    """A month's tally from signed counts (projections.satisfaction_tallies): questions and
    stages from the versions with completed surveys, like `_count_survey` one by one."""
    tally = _Tally()
    for (template_id, version), (attempted, completed, fully, satisfied) in sorted(
            counts.versions.items()):
        tally.attempted += attempted
        tally.completed += completed
        tally.fully += fully
        if completed <= 0:
            continue
        for question in asked[(template_id, version)]:
            ticked = satisfied.get(question["id"], 0)
            entry = tally.questions.setdefault((template_id, question["id"]), [0, 0, 0])
            entry[0] += ticked
            entry[1] += completed
            entry[2] = max(entry[2], version)
            shares = tally.stages.setdefault(question["stage"], [0, 0])
            shares[0] += ticked
            shares[1] += completed
    for stage, n in counts.complaints.items():
        if n:
            tally.complaints[stage] += n
    return tally


def _complaints_by_month(conn: Connection, filed: Select[Any],
                         tz: str) -> list[tuple[str, str | None, int]]:
    """(local month, stage, count) of the complaints `filed` selects: the months between the
    first and the last complaint's are numbered by a CASE on the UTC instants they start at."""
    found = filed.subquery()
    first, last = conn.execute(select(func.min(found.c.occurred_at),
                                      func.max(found.c.occurred_at))).one()
    if first is None:
        return []
    labels, starts = [month_of(first, tz)], []
    while labels[-1] != month_of(last, tz):
        year, number = divmod(int(labels[-1][:4]) * 12 + int(labels[-1][5:]), 12)
        labels.append(f"{year:04d}-{number + 1:02d}")
        starts.append(month_bounds(year, number + 1, tz)[0])
    # A complaint before the k-th month's start falls in the (k-1)-th month.
    month = (case(*((found.c.occurred_at < literal(start, UtcDateTime), k)
                    for k, start in enumerate(starts)), else_=len(starts))
             if starts else literal(0))
    rows = conn.execute(select(month.label("m"), found.c.stage, func.count().label("n"))
                        .group_by(month, found.c.stage))
    return [(labels[r.m], r.stage, r.n) for r in rows]


def _count_survey(tally: _Tally, row: Any, asked: dict[tuple[str, int], Any]) -> None:
    tally.attempted += 1
    if row.outcome != "completed":
        return
    tally.completed += 1
    template_id = str(row.template_id)
    ticks = row.final_ticks or {}
    all_ticked = True
    for question in asked[(template_id, row.template_version)]:
        ticked = bool(ticks.get(question["id"], True))  # every question starts ticked
        all_ticked = all_ticked and ticked
        entry = tally.questions.setdefault((template_id, question["id"]), [0, 0, 0])
        entry[0] += ticked
        entry[1] += 1
        entry[2] = max(entry[2], row.template_version)
        stage = tally.stages.setdefault(question["stage"], [0, 0])
        stage[0] += ticked
        stage[1] += 1
    tally.fully += all_ticked


def _figures(tally: _Tally, asked: dict[tuple[str, int], Any]) -> dict[str, Any]:
    """Every figure of the report from one tally."""
    questions = []
    for (template_id, qid), (sat, ans, version) in sorted(tally.questions.items()):
        # Text and stage as the newest template version answered asks them.
        question = next(q for q in asked[(template_id, version)] if q["id"] == qid)
        questions.append({"template_id": template_id, "question_id": qid,
                          "stage": question["stage"], "text": question["text"],
                          **_share(sat, ans)})
    by_stage = {stage: n for stage, n in tally.complaints.items() if stage is not None}
    stage_out = [{"stage": name, **_share(*tally.stages.get(name, (0, 0))),
                  "complaints": by_stage.get(name, 0)}
                 for name in sorted(set(tally.stages) | set(by_stage))]
    ranked = sorted((s for s in stage_out if s["answered"]),
                    key=lambda s: (Fraction(s["satisfied"], s["answered"]), s["stage"]))
    return {
        "surveys": {"attempted": tally.attempted, "completed": tally.completed,
                    "reach_percent": percent(tally.completed, tally.attempted)},
        "fully_satisfied": _share(tally.fully, tally.completed),
        "questions": questions,
        "stages": stage_out,
        "stages_worst_first": ranked,
        "complaints": {"total": sum(tally.complaints.values()),
                       "without_stage": tally.complaints.get(None, 0),
                       "by_stage": dict(sorted(by_stage.items()))},
    }


def _share(satisfied: int, answered: int) -> dict[str, Any]:
    return {"satisfied": satisfied, "answered": answered,
            "percent": percent(satisfied, answered)}


def _specialist_lookup(conn: Connection, as_of: datetime) -> Any:
    """(client, instant) -> the specialist assigned then, from assignments known at as_of."""
    history: dict[UUID, list[tuple[datetime, int, UUID | None]]] = defaultdict(list)
    for row in conn.execute(select(assignments).where(assignments.c.recorded_at <= as_of)):
        history[row.client_id].append((row.occurred_at, row.version, row.specialist_id))
    for changes in history.values():
        changes.sort(key=lambda c: (c[0], c[1]))

    def assigned(client_id: UUID, instant: datetime) -> UUID | None:
        changes = history.get(client_id)
        if not changes:
            return None
        index = bisect.bisect_right([c[0] for c in changes], instant) - 1
        return changes[max(index, 0)][2]

    return assigned
