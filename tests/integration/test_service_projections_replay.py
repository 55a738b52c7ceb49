"""Survey and segment projections: redelivery changes nothing, a rebuild gives the same rows."""

from __future__ import annotations

from infra.db import scratch_target
from infra.eventstore import read_model_url
from infra.settings import Settings
from projections.base import Runner
from projections.replay import state_digest
from projections.segments import Segments
from projections.surveys import ServiceSurveys
from tests.integration.service_story import Station, snapshot, station_container


def _history(s: Station) -> None:
    """Every event kind the two projections read: visits, surveys, complaints, contacts, moves."""
    p1, p2 = s.specialist("Petra"), s.specialist("Paul")
    client = s.client("2026-01-01T00:00:00+00:00", specialist=p1)
    other = s.client("2026-01-02T00:00:00+00:00")
    template = s.template()
    order = s.visit(client, "2026-02-01T10:00:00+00:00", "120.50")
    s.survey(order, template, "2026-02-04T10:00:00+00:00", untick=("q2",))
    s.survey(s.visit(other, "2026-02-02T10:00:00+00:00"), template,
             "2026-02-05T10:00:00+00:00", outcome="unreachable")
    s.open(other, "2026-02-03T10:00:00+00:00")
    s.complaint(client, "2026-02-06T10:00:00+00:00", stage="repair", order=order)
    s.contact(other, "2026-02-07T10:00:00+00:00")
    s.reassign(client, p2, "2026-02-08T10:00:00+00:00")


def test_an_event_delivered_twice_leaves_the_tables_unchanged(any_settings: Settings) -> None:
    with station_container(any_settings, "2026-03-01T00:00:00+00:00") as (container, _c):
        s = Station(container)
        _history(s)
        s.settled()
        before = snapshot(container.engine)
        assert {name: len(rows) for name, rows in before.items()} == {
            "svc_work_orders": 3, "svc_surveys": 2, "svc_survey_questions": 1,
            "svc_complaints": 1, "svc_assignments": 3,
            "seg_clients": 2, "seg_activity": 3}
        page = container.runner.reader(1, 10_000)
        assert page[-1][0] == container.store_position()
        # Redelivery through the runner: the tracked positions recognise every event.
        container.runner.apply_page(page)
        assert snapshot(container.engine) == before
        # And each apply is idempotent on its own, without the tracking table's help.
        projections = (ServiceSurveys(), Segments())
        with container.engine.begin() as conn:
            for position, event in page:
                for projection in projections:
                    projection.apply(conn, event, position)
        assert snapshot(container.engine) == before


def test_a_rebuild_from_the_store_gives_the_same_rows(any_settings: Settings) -> None:
    with station_container(any_settings, "2026-03-01T00:00:00+00:00") as (container, _c):
        _history(Station(container))
        Station(container).settled()
        live = snapshot(container.engine)
        with scratch_target(read_model_url(any_settings)) as fresh:
            rebuilt = Runner(fresh, [ServiceSurveys(), Segments()], container.runner.reader,
                             page_size=7)
            # Fresh tables start from nothing: every stored event is applied again.
            assert rebuilt.catch_up() == len(container.runner.reader(1, 10_000))
            assert snapshot(fresh) == live
            tables = [*ServiceSurveys.tables, *Segments.tables]
            with container.engine.connect() as a, fresh.connect() as b:
                assert state_digest(a, tables) == state_digest(b, tables)
