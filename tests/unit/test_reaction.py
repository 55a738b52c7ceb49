"""The reaction-time clocks: what starts, stops and pauses them, figures, deadlines, percentiles."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from uuid import UUID, uuid5
from zoneinfo import ZoneInfo

from domain.business_calendar import BusinessCalendar, WorkingHours
from domain.reaction import (
    ACKNOWLEDGED,
    CONTACT,
    HALTED,
    OPENED,
    PAUSED,
    REOPENED,
    RESOLVED,
    RESUMED,
    RUNNING,
    STOPPED,
    ClockEvent,
    Target,
    figure,
    figure_evidence,
    nearest_rank,
    timeline,
)

BERLIN = ZoneInfo("Europe/Berlin")
CALENDAR = BusinessCalendar.default("Europe/Berlin")
SITUATION = UUID("00000000-0000-0000-0000-00000000000a")
CONTACT_STREAM = UUID("00000000-0000-0000-0000-00000000000c")
ONE_HOUR = Target(3600, business_hours=True, warn_ratio=Decimal("0.8"))


def berlin(month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=BERLIN)


class Story:
    """Builds a situation's clock events in stream order (positions rise as they are added)."""

    def __init__(self) -> None:
        self.events: list[ClockEvent] = []
        self.version = 0

    def add(self, kind: str, occurred_at: datetime) -> Story:
        position = len(self.events) + 1
        if kind == CONTACT:
            stream, version = uuid5(CONTACT_STREAM, str(position)), 1
        else:
            self.version += 1
            stream, version = SITUATION, self.version
        self.events.append(ClockEvent(uuid5(stream, str(version)), kind, occurred_at,
                                      occurred_at, position, stream, version))
        return self


def measure(story: Story, at: datetime, clock: str = "first_reaction",
            calendar: BusinessCalendar = CALENDAR, target: Target | None = None):
    found = timeline(story.events, at)
    assert found is not None
    return figure(found.clock(clock), calendar, target)


def test_complaint_friday_1730_answered_monday_0915_is_45_business_minutes() -> None:
    story = Story().add(OPENED, berlin(3, 6, 17, 30)).add(CONTACT, berlin(3, 9, 9, 15))
    fig = measure(story, at=berlin(3, 10, 12))
    assert fig.clock.state == STOPPED
    assert fig.business_seconds == 2700
    assert fig.wall_seconds == 229_500  # 63h45m


def test_monday_holiday_moves_the_answer_to_tuesday_and_still_gives_45_minutes() -> None:
    calendar = BusinessCalendar("Europe/Berlin", WorkingHours.standard(),
                                frozenset({date(2026, 3, 9)}))
    story = Story().add(OPENED, berlin(3, 6, 17, 30)).add(ACKNOWLEDGED, berlin(3, 10, 9, 15))
    fig = measure(story, at=berlin(3, 11, 12), calendar=calendar)
    assert fig.business_seconds == 2700
    assert fig.wall_seconds == 87 * 3600 + 45 * 60


def test_paused_time_is_excluded_from_wall_clock_and_business_figures() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 16)).add(PAUSED, berlin(3, 9, 17))
             .add(RESUMED, berlin(3, 10, 10)).add(ACKNOWLEDGED, berlin(3, 10, 11)))
    fig = measure(story, at=berlin(3, 10, 12))
    # Monday 16-17 and Tuesday 10-11 count; without the pause business would be 4 h.
    assert (fig.wall_seconds, fig.business_seconds) == (7200, 7200)
    assert [(s.start, s.end) for s in fig.segments] == [
        (berlin(3, 9, 16), berlin(3, 9, 17)), (berlin(3, 10, 10), berlin(3, 10, 11))]


def test_reopen_resumes_the_resolution_clock_and_does_not_restart_the_first_reaction() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 10)).add(ACKNOWLEDGED, berlin(3, 9, 10, 30))
             .add(RESOLVED, berlin(3, 9, 12)).add(REOPENED, berlin(3, 10, 10))
             .add(ACKNOWLEDGED, berlin(3, 10, 10, 5)).add(RESOLVED, berlin(3, 10, 11)))
    at = berlin(3, 11, 9)
    assert measure(story, at).business_seconds == 1800
    resolution = measure(story, at, "resolution")
    assert resolution.clock.stop is not None and resolution.clock.stop.at == berlin(3, 10, 11)
    assert (resolution.wall_seconds, resolution.business_seconds) == (3 * 3600, 3 * 3600)
    assert [s.reason for s in resolution.clock.stoppages] == ["resolved"]


def test_a_reopened_situation_runs_its_resolution_clock_again() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 10)).add(RESOLVED, berlin(3, 9, 12))
             .add(REOPENED, berlin(3, 10, 10)))
    fig = measure(story, berlin(3, 10, 10, 30), "resolution")
    assert fig.clock.state == RUNNING
    assert fig.wall_seconds == 2 * 3600 + 1800


def test_daylight_saving_change_shortens_the_wall_clock_but_not_business_hours() -> None:
    # Europe/Berlin moves from CET to CEST on Sunday 29 March 2026.
    story = Story().add(OPENED, berlin(3, 27, 17)).add(CONTACT, berlin(3, 30, 10))
    fig = measure(story, berlin(3, 31, 9))
    assert fig.business_seconds == 7200
    assert fig.wall_seconds == 64 * 3600  # 65 h on the local clock face, 64 h elapsed


def test_deadline_across_the_daylight_saving_change_is_in_the_new_offset() -> None:
    story = Story().add(OPENED, berlin(3, 27, 16))
    fig = measure(story, berlin(3, 27, 16, 30),
                  target=Target(4 * 3600, business_hours=True, warn_ratio=Decimal("0.5")))
    assert fig.deadline == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)  # Monday 11:00 CEST
    assert fig.breach_at == datetime(2026, 3, 30, 9, 0, 1, tzinfo=UTC)
    assert fig.warn_at == datetime(2026, 3, 27, 17, 0, tzinfo=UTC)  # Friday 18:00 CET


def test_a_running_clock_is_ok_then_warning_then_breached() -> None:
    story = Story().add(OPENED, berlin(3, 9, 10))
    assert measure(story, berlin(3, 9, 10, 47, 59), target=ONE_HOUR).status == "ok"
    assert measure(story, berlin(3, 9, 10, 48), target=ONE_HOUR).status == "warning"
    at_deadline = measure(story, berlin(3, 9, 11), target=ONE_HOUR)
    assert (at_deadline.status, at_deadline.deadline) == ("warning", berlin(3, 9, 11))
    assert measure(story, berlin(3, 9, 11, 0, 1), target=ONE_HOUR).status == "breached"


def test_an_answer_at_the_deadline_meets_the_target_one_second_later_breaches_it() -> None:
    met = Story().add(OPENED, berlin(3, 9, 10)).add(ACKNOWLEDGED, berlin(3, 9, 11))
    late = Story().add(OPENED, berlin(3, 9, 10)).add(ACKNOWLEDGED, berlin(3, 9, 11, 0, 1))
    on_time = measure(met, berlin(3, 9, 12), target=ONE_HOUR)
    assert (on_time.status, on_time.deadline) == ("met", berlin(3, 9, 11))
    fig = measure(late, berlin(3, 9, 12), target=ONE_HOUR)
    assert (fig.status, fig.breach_at) == ("breached", berlin(3, 9, 11, 0, 1))


def test_the_deadline_of_a_running_clock_skips_its_earlier_pause() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 9)).add(PAUSED, berlin(3, 9, 10))
             .add(RESUMED, berlin(3, 9, 12)))
    fig = measure(story, berlin(3, 9, 12, 30), target=Target(7200, False, Decimal("0.5")))
    assert fig.deadline == berlin(3, 9, 13)
    assert fig.warn_at == berlin(3, 9, 10)


def test_a_clock_stopped_early_shows_the_deadline_it_beat() -> None:
    story = (Story().add(OPENED, berlin(3, 6, 17, 30)).add(PAUSED, berlin(3, 6, 17, 40))
             .add(RESUMED, berlin(3, 9, 9)).add(ACKNOWLEDGED, berlin(3, 9, 9, 5)))
    fig = measure(story, berlin(3, 9, 12), target=ONE_HOUR)
    assert (fig.status, fig.business_seconds, fig.deadline) == ("met", 900, berlin(3, 9, 9, 50))


def test_an_answer_during_a_pause_leaves_no_deadline_beyond_it() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 10)).add(PAUSED, berlin(3, 9, 10, 10))
             .add(CONTACT, berlin(3, 9, 11)).add(RESUMED, berlin(3, 9, 12)))
    fig = measure(story, berlin(3, 9, 13), target=ONE_HOUR)
    assert (fig.status, fig.business_seconds, fig.deadline) == ("met", 600, None)


def test_a_paused_clock_is_halted_and_has_no_future_deadline() -> None:
    story = Story().add(OPENED, berlin(3, 9, 10)).add(PAUSED, berlin(3, 9, 10, 30))
    fig = measure(story, berlin(3, 12, 10), target=ONE_HOUR)
    assert fig.clock.state == HALTED
    assert (fig.business_seconds, fig.deadline, fig.status) == (1800, None, "ok")


def test_a_situation_resolved_without_a_reaction_halts_the_first_reaction_clock() -> None:
    story = Story().add(OPENED, berlin(3, 9, 10)).add(RESOLVED, berlin(3, 9, 10, 20))
    found = timeline(story.events, berlin(3, 10, 10))
    assert found is not None and found.status == "resolved"
    assert found.first_reaction.state == HALTED
    assert figure(found.first_reaction, CALENDAR, None).wall_seconds == 1200
    assert found.resolution.state == STOPPED


def test_events_after_the_measured_moment_do_not_count() -> None:
    story = Story().add(OPENED, berlin(3, 9, 10)).add(ACKNOWLEDGED, berlin(3, 9, 11))
    assert timeline(story.events, berlin(3, 9, 9)) is None
    fig = measure(story, berlin(3, 9, 10, 30))
    assert (fig.clock.state, fig.wall_seconds) == (RUNNING, 1800)


def test_back_dated_resume_counts_at_the_pause_and_a_reaction_before_opening_counts_zero() -> None:
    story = (Story().add(OPENED, berlin(3, 9, 10)).add(PAUSED, berlin(3, 9, 11))
             .add(RESUMED, berlin(3, 9, 10, 30)).add(CONTACT, berlin(3, 9, 9)))
    found = timeline(story.events, berlin(3, 9, 12))
    assert found is not None
    assert [m.at for m in found.marks if m.event.type == RESUMED] == [berlin(3, 9, 11)]
    assert figure(found.first_reaction, CALENDAR, None).wall_seconds == 0
    assert figure(found.resolution, CALENDAR, None).wall_seconds == 3600 + 3600


def test_evidence_names_the_events_and_spells_out_the_arithmetic() -> None:
    story = (Story().add(OPENED, berlin(3, 6, 17, 30)).add(PAUSED, berlin(3, 6, 17, 45))
             .add(RESUMED, berlin(3, 9, 9)).add(CONTACT, berlin(3, 9, 9, 15)))
    evidence = figure_evidence(measure(story, berlin(3, 9, 12), target=ONE_HOUR))
    assert evidence["start"]["event_id"] == story.events[0].event_id
    assert evidence["stop"]["event_id"] == story.events[3].event_id
    assert [(x["reason"], x["from"]["type"], x["to"]["type"]) for x in evidence["excluded"]] == [
        ("paused", PAUSED, RESUMED)]
    assert evidence["arithmetic"] == {"wall": "900 + 900 = 1800",
                                      "business": "900 + 900 = 1800"}
    assert evidence["status"] == "met"


def test_nearest_rank_percentiles_are_members_of_the_data() -> None:
    values = list(range(10, 0, -1))
    assert nearest_rank(values, 50, key=lambda v: v) == 5
    assert nearest_rank(values, 90, key=lambda v: v) == 9
    assert nearest_rank([7, 3, 5, 1], 50, key=lambda v: v) == 3
    assert nearest_rank([42], 90, key=lambda v: v) == 42
    assert nearest_rank([], 50, key=lambda v: v) is None


def test_a_calendar_without_working_hours_never_reaches_a_business_target() -> None:
    closed = BusinessCalendar("Europe/Berlin", WorkingHours.from_mapping({}))
    story = Story().add(OPENED, berlin(3, 9, 10))
    fig = measure(story, berlin(3, 20, 10), calendar=closed, target=ONE_HOUR)
    assert (fig.business_seconds, fig.deadline, fig.status) == (0, None, "ok")


def test_warning_share_is_rounded_up_to_a_whole_second() -> None:
    assert Target(100, True, Decimal("0.333")).warn_seconds == 34
    assert Target(3600, True, Decimal("0.8")).warn_seconds == 2880
