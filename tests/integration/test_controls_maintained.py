"""Issue 16.1/16.2 for the controls: the report read from maintained state (SQL counts and keyset
pages over the activity tables and the controls facts) equals a full recomputation (every row
read, every client's completeness folded, filtered in Python: `controls_reference`) on the demo
history, at 20 random moments with random filters, on SQLite and PostgreSQL; and the pages walk
every item once, in the order asked."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import Connection, func, select

from domain.errors import InvalidValueError
from infra.bootstrap import Container, build
from infra.export import import_lines
from infra.settings import Settings
from projections.activity import contacts
from projections.clients import client_facts
from projections.control_facts import control_assignments
from projections.controls import SECTIONS, SORTS, control_section, controls_reference
from tests.support import fresh_pg_database

FIXTURES = Path(__file__).parent.parent / "fixtures"
MASTER_KEY = (FIXTURES / "demo_history.master.key").read_text().strip()
EVERYTHING = 10 ** 6


@pytest.fixture(scope="module",
                params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def demo(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    def load(url: str) -> Iterator[Container]:
        container = build(Settings(database_url=url, master_key=MASTER_KEY),
                          start_follower=False)
        try:
            with gzip.open(FIXTURES / "demo_history.jsonl.gz") as lines:
                import_lines(container, lines)
            container.runner.catch_up()
            yield container
        finally:
            container.close()

    if request.param == "sqlite":
        yield from load(f"sqlite:///{tmp_path_factory.mktemp('controls')}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield from load(url)


def _moments(conn: Connection, rng: random.Random, n: int) -> list[dict[str, Any]]:
    """`n` random (at, as_of, specialist, thresholds) over the history's span."""
    k = contacts.c
    first, last = conn.execute(select(func.min(k.occurred_at), func.max(k.occurred_at))).one()
    r_first, r_last = conn.execute(select(func.min(k.recorded_at),
                                          func.max(k.recorded_at))).one()
    specialists = sorted({s for (s,) in conn.execute(
        select(control_assignments.c.specialist_id).distinct()) if s is not None}, key=str)

    def between(a: datetime, b: datetime) -> datetime:
        return a + (b - a) * rng.random()

    out = []
    for i in range(n):
        at = between(first, last + timedelta(days=30))
        as_of = None if i % 4 == 0 else between(r_first, r_last)
        out.append({"at": at, "as_of": as_of,
                    "specialist_id": None if i % 3 == 0 else rng.choice(specialists),
                    "late_entry_hours": rng.choice([0.001, 1, 24, 24 * 7]),
                    "period": timedelta(days=rng.choice([7, 30, 90, 366])),
                    "feedback_days": rng.choice([0, 7, 30])})
    return out


def test_maintained_sections_equal_a_full_recomputation_at_20_random_moments(
        demo: Container) -> None:
    rng = random.Random(16)
    seen = dict.fromkeys(SECTIONS, 0)
    with demo.engine.connect() as conn:
        for options in _moments(conn, rng, 20):
            expected = controls_reference(conn, **options)
            later = _erased_after(conn, options["as_of"])
            for name in SECTIONS:
                got = control_section(conn, name, limit=EVERYTHING, **options)
                items = got["items"]
                if name == "card_completeness" and later:
                    # Erased after as_of: the old fold read the scrubbed facts (every personal
                    # field missing); the versions keep what was known then.
                    items = [i for i in items if i["client_id"] not in later]
                    expected[name] = [i for i in expected[name] if i["client_id"] not in later]
                    got["count"] = len(items)
                assert got["count"] == len(expected[name]), (name, options)
                assert items == expected[name], (name, options)
                assert (got["truncated"], got["next_cursor"]) == (False, None)
                seen[name] += len(expected[name])
    assert all(seen.values()), seen  # every section had items to compare


def _erased_after(conn: Connection, as_of: datetime | None) -> set[UUID]:
    if as_of is None:
        return set()
    f = client_facts.c
    return set(conn.execute(select(f.client_id).where(f.type == "ClientErased",
                                                      f.recorded_at > as_of)).scalars())


def _walk(conn: Connection, name: str, sort: str, limit: int,
          options: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    items: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        page = control_section(conn, name, sort=sort, cursor=cursor, limit=limit, **options)
        pages += 1
        assert len(page["items"]) <= limit
        items += page["items"]
        assert page["truncated"] == (page["next_cursor"] is not None)
        cursor = page["next_cursor"]
        if cursor is None:
            return items, page["count"]


def _key(name: str, sort: str, item: dict[str, Any], position: dict[UUID, int]) -> Any:
    if name == "card_completeness":
        return position[item["client_id"]]
    if name == "late_data_entry":
        ties = (str(item["entity_id"]), item["type"])
        if sort == "-delay_seconds":
            return (-item["delay_seconds"], item["occurred_at"], *ties)
        return (item["occurred_at"], *ties)
    time = {"overdue_planned_contacts": "due_at", "overdue_agreements": "due_at",
            "work_without_feedback": "completed_at"}[name]
    ident = {"overdue_planned_contacts": "planned_contact_id",
             "overdue_agreements": "agreement_id", "work_without_feedback": "work_id"}[name]
    return (item[time], str(item[ident]))


def test_pages_walk_every_item_once_in_each_order(demo: Container) -> None:
    rng = random.Random(162)
    with demo.engine.connect() as conn:
        for options in _moments(conn, rng, 4):
            options["specialist_id"] = None
            expected = controls_reference(conn, **options)
            for name in SECTIONS:
                # registration order = the order of the reference list
                position = {item["client_id"]: i for i, item in
                            enumerate(expected["card_completeness"])}
                for sort in SORTS[name]:
                    items, count = _walk(conn, name, sort, 7, options)
                    assert count == len(expected[name]) == len(items)
                    descending = sort.startswith("-") and sort != "-delay_seconds"
                    keys = [_key(name, sort, i, position) for i in items]
                    assert keys == sorted(keys, reverse=descending), (name, sort)
                    if name == "card_completeness":  # figures: see the test above
                        assert sorted(str(i["client_id"]) for i in items) == sorted(
                            str(i["client_id"]) for i in expected[name])
                    else:
                        assert sorted(map(repr, items)) == sorted(map(repr, expected[name]))


def test_a_specialist_filter_splits_the_sections_between_specialists(demo: Container) -> None:
    """Per client section, the pages of every specialist (and of nobody) add up to the whole."""
    with demo.engine.connect() as conn:
        at = conn.execute(select(func.max(contacts.c.occurred_at))).scalar_one()
        specialists = {s for (s,) in conn.execute(
            select(control_assignments.c.specialist_id).distinct()) if s is not None}
        for name in ("late_data_entry", "card_completeness", "overdue_agreements",
                     "work_without_feedback"):
            whole = control_section(conn, name, at=at, as_of=None, limit=EVERYTHING,
                                    late_entry_hours=0.001, period=timedelta(days=400))
            parts = [control_section(conn, name, at=at, as_of=None, specialist_id=s,
                                     limit=EVERYTHING, late_entry_hours=0.001,
                                     period=timedelta(days=400))["items"]
                     for s in sorted(specialists, key=str)]
            assigned = [i for part in parts for i in part]
            assert len(assigned) == len({repr(i) for i in assigned})  # no item twice
            assert {repr(i) for i in assigned} <= {repr(i) for i in whole["items"]}


def test_bad_sort_and_cursor_name_their_field(demo: Container) -> None:
    with demo.engine.connect() as conn:
        at = conn.execute(select(func.max(contacts.c.occurred_at))).scalar_one()
        with pytest.raises(InvalidValueError) as bad:
            control_section(conn, "overdue_agreements", at=at, as_of=None, sort="-delay_seconds")
        assert bad.value.field == "sort"
        with pytest.raises(InvalidValueError) as bad:
            control_section(conn, "overdue_agreements", at=at, as_of=None,
                            cursor="bm90IGEgY3Vyc29y")
        assert bad.value.field == "cursor"
