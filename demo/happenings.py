"""Demo history, remote service: what else happens to an organisation in a month."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from commands.activity import LogContact
from commands.base import Command
from commands.clients import (
    AddContactPerson,
    NoteInterest,
    RemoveContactPerson,
    UpdateClient,
    UpdateContactPerson,
)
from commands.situations import OpenSituation
from demo import words
from demo.world import Alias, minutes
from domain.values import Channel, ContactPurpose, ContactRole, Direction, SituationKind

if TYPE_CHECKING:
    from demo.remote import OrgStory

P = ContactPurpose


def happenings(story: OrgStory, m: int, lo: datetime, hi: datetime) -> None:
    """What else may happen to an organisation in a month: emergencies, low usage, questions,
    interests, moves, people changes, reassignments."""
    rng, w = story.rng, story.world
    span = (hi - lo).days

    def when() -> datetime:
        return story.moment(w.day_of(lo) + timedelta(days=rng.randrange(span)), lo)

    if story.kind == "customer" and story.chance("emergency", 0.015):
        _emergency(story, m, when())
    if story.kind == "customer" and story.chance("low_usage", 0.03):
        at = when()
        cmds: list[Command] = [LogContact(
            occurred_at=at, id=w.id("contact", story.index, "low", m), client_id=story.client_id,
            channel=Channel.PHONE, direction=Direction.OUTBOUND, purpose=P.LOW_USAGE,
            topic="Portal logins dropped", contact_person_id=story.person("contact",
                                                                          "decision_maker"))]
        situation = w.id("situation", story.index, "low", m)
        if rng.random() < 0.35 or "low_usage" in story.force:
            cmds.append(OpenSituation(
                occurred_at=minutes(at, 5), id=situation, client_id=story.client_id,
                kind=SituationKind.LOW_USAGE, description="Portal use halved over two months."))
        if story.emit(at, story.actor, *cmds) and len(cmds) > 1 and story.spec is not None:
            story.handle_situation(situation, minutes(at, 5), "low_usage", story.spec)
    if story.chance("question", 0.15 if story.kind != "supplier" else 0.3):
        at = when()
        topic = {"supplier": "Delivery dates for next week's parts",
                 "partner": "Referral of a new client"}.get(
            story.kind, rng.choice(words.QUESTION_TOPICS))
        story.emit(at, story.actor, LogContact(
            occurred_at=at, id=w.id("contact", story.index, "q", m), client_id=story.client_id,
            channel=rng.choice((Channel.CHAT, Channel.EMAIL, Channel.PHONE, Channel.PORTAL)),
            direction=Direction.INBOUND, topic=topic,
            contact_person_id=story.person("contact", "decision_maker")))
    if story.chance("interest", 0.006):
        at = when()
        story.emit(at, story.actor, NoteInterest(occurred_at=at, client_id=story.client_id,
                                               text=rng.choice(words.INTERESTS_ORG)))
    if story.chance("moved", 0.002):
        at = when()
        address, _code = words.address(rng)
        if address != story.address:
            story.address = address
            story.emit(at, story.actor, UpdateClient(occurred_at=at, client_id=story.client_id,
                                                   address=address))
    _people_changes(story, m, when)
    if (story.spec is not None and story.chance("reassign", 0.002)
            and not lo <= w.leave_at < hi):
        choices = [s for s in story.team if s != story.spec and s != w.staff[w.leaver]]
        story.reassign(when(), rng.choice(choices))


def _emergency(story: OrgStory, m: int, at: datetime) -> None:
    """A churn threat, competitor threat or complaint: a situation opens; some clients leave."""
    rng, w = story.rng, story.world
    assert story.spec is not None
    kind = rng.choices(("churn_threat", "competitor_threat", "complaint"), (45, 25, 30))[0]
    topic, summary = words.EMERGENCIES[kind]
    contact = w.id("contact", story.index, "emergency", m)
    alias = w.id("alias", "emergency", contact)
    if not story.emit(at, story.actor, LogContact(
            occurred_at=at, id=contact, client_id=story.client_id,
            channel=rng.choice((Channel.PHONE, Channel.EMAIL)), direction=Direction.INBOUND,
            purpose=P(kind), topic=topic, summary=summary,
            contact_person_id=story.person("decision_maker")),
            aliases=(Alias(0, "situation_id", alias),)):
        return
    react = None
    if rng.random() < 0.5:
        react = LogContact(
            id=w.id("contact", story.index, "follow-up", m), client_id=story.client_id,
            channel=Channel.MEETING, direction=Direction.OUTBOUND,
            topic=f"Follow-up: {topic[0].lower()}{topic[1:]}", situation_id=alias,
            contact_person_id=story.person("decision_maker"))
    story.handle_situation(alias, at, kind, story.spec, react)
    if kind == "churn_threat" and rng.random() < 0.3 and not story.force:
        left = story.moment(w.day_of(at) + timedelta(days=rng.randint(10, 25)))
        story.tags = [*story.tags, "former-client"]
        if story.emit(left, story.actor, UpdateClient(occurred_at=left, client_id=story.client_id,
                                                    tags=story.tags)):
            story.churn_at = left


def _people_changes(story: OrgStory, m: int, pick: Callable[[], datetime]) -> None:
    rng, w = story.rng, story.world
    if story.chance("person_update", 0.005) and story.people.get("decision_maker"):
        at = pick()
        story.emit(at, story.actor, UpdateContactPerson(
            occurred_at=at, client_id=story.client_id,
            person_id=story.people["decision_maker"][0], phones=[words.mobile(rng)],
            notes="New mobile number."))
    if story.chance("person_leaves", 0.004) and story.people.get("user"):
        # Only users leave: contacts name the contact person and the decision maker.
        at = pick()
        gone = story.people["user"].pop(0)
        first, last = words.name(rng)
        newcomer = w.id("person", story.index, "new", m)
        story.people["user"].append(newcomer)
        story.emit(at, story.actor, RemoveContactPerson(
            occurred_at=at, client_id=story.client_id, person_id=gone), AddContactPerson(
            occurred_at=minutes(at, 1), client_id=story.client_id, id=newcomer,
            name=f"{first} {last}", role=ContactRole.USER, phones=[words.mobile(rng)],
            notes="Replaces a colleague who left."))
