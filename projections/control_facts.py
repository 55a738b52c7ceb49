"""Controls facts (issue 16): what the controls report counts, kept as events arrive.

The report (projections.controls) answers each section with an exact count and one page, in
SQL, from these tables and the activity tables, so its cost follows what it shows, not the
history:

- `control_completeness`: the card completeness of every client as a series of versions by
  recorded time (`since` <= as_of < `until`; `until` NULL for the current one). A version is
  opened whenever a profile fact changes the score or the missing items, or erases the client.
  "Incomplete clients known at as_of" is a range over this table, not a fold of every client.
  The score is computed by projections.clients.completeness from a presence-only profile (which
  fields hold a value: nothing personal is kept here), so it is the directory's figure.
- `control_entries`: every activity event entered after it occurred (delay > 0 s), with its
  delay in whole seconds (indexed): late data entry is a range over the delay, whatever the
  threshold asked (a threshold is > 0, so an event entered on time never qualifies).
- `control_assignments`: each client's specialist changes (indexed by specialist), so the
  specialist filter reads the candidates of one specialist instead of every client's history.
- `control_profiles` and `control_entities` are working state: the presence profile and the
  current version of each client; the client of each planned contact, agreement and work (the
  later events of those carry no client id).

Rows are keyed by the source (client and recorded time, event type and entity, client and
stream version), so an event applied twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    String,
    Table,
    Uuid,
)

from domain.client import Client
from projections.base import UtcDateTime, metadata
from projections.clients import ClientState, completeness
from projections.fold import FoldProjection, Need, Rows

control_completeness = Table(
    "control_completeness", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("since", UtcDateTime, primary_key=True),  # recorded_at of the fact that opened it
    Column("until", UtcDateTime),  # recorded_at of the next version (NULL: current)
    Column("position", BigInteger, nullable=False),  # the registration's: the report's order
    Column("form", String(20), nullable=False),
    Column("score", String(8)),
    Column("missing", JSON, nullable=False),  # checklist items missing, in checklist order
    Column("incomplete", Boolean, nullable=False),  # missing items, and not erased
    # The incomplete clients in registration order (current ones: one range), counted from
    # the index alone.
    Index("ix_control_completeness_current", "incomplete", "until", "position", "since",
          "client_id"),
)

control_profiles = Table(
    "control_profiles", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("since", UtcDateTime, nullable=False),  # the current version's key
    # Which profile fields hold a value, and each contact person's role and whether it has a
    # phone: all completeness looks at.
    Column("profile", JSON, nullable=False),
)

control_entries = Table(
    "control_entries", metadata,
    Column("type", String(40), primary_key=True),
    Column("entity_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
    Column("delay_seconds", BigInteger, nullable=False),
    Column("actor", String(200), nullable=False),
    # Late entry counted from an index alone: by the period, or by the delay.
    Index("ix_control_entries_delay", "delay_seconds", "occurred_at", "recorded_at",
          "client_id"),
    Index("ix_control_entries_occurred", "occurred_at", "delay_seconds", "recorded_at",
          "client_id"),
)

control_entities = Table(
    "control_entities", metadata,
    Column("entity_id", Uuid, primary_key=True),
    Column("client_id", Uuid, nullable=False),
)

control_assignments = Table(
    "control_assignments", metadata,
    Column("client_id", Uuid, primary_key=True),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("specialist_id", Uuid, index=True),
    Column("occurred_at", UtcDateTime, nullable=False),
    Column("recorded_at", UtcDateTime, nullable=False),
)

# Activity events as late data entry lists them (a completed planned contact is not one: it is
# entered with the ContactLogged that completes it). Creations carry the client id.
CREATIONS = frozenset({"ContactLogged", "ContactPlanned", "AgreementMade", "WorkAssigned"})
CHANGES = frozenset({"PlannedContactCancelled", "AgreementFulfilled", "AgreementBroken",
                     "WorkCompleted", "FeedbackReceived"})
_ENTITIES = frozenset({"ContactPlanned", "AgreementMade", "WorkAssigned"})
_PROFILE = frozenset({"ClientProfileUpdated", "ContactPersonAdded", "ContactPersonUpdated",
                      "ContactPersonRemoved", "ClientErased"})
_PRESENCE = ("name", "tax_id", "phones", "emails", "address")


class ControlFacts(FoldProjection):
    """Completeness versions, entry delays and specialist assignments for the controls."""

    name = "controls"
    tables = (control_completeness, control_profiles, control_entries, control_entities,
              control_assignments)
    # read back by later events (projections.fold)
    keeps = (control_completeness, control_profiles, control_entities)

    def needs(self, event: Any) -> Iterator[Need]:
        kind = type(event).__name__
        if kind in _PROFILE and isinstance(event, Client.Event):
            yield Need(control_profiles, "client_id", event.originator_id)
            yield Need(control_completeness, "client_id", event.originator_id)
        elif kind in CHANGES:
            yield Need(control_entities, "entity_id", event.originator_id)

    def fold(self, rows: Rows, event: Any, position: int) -> None:
        kind = type(event).__name__
        if isinstance(event, Client.Event):
            if isinstance(event, Client.ClientRegistered):
                self._registered(rows, event, position)
            elif isinstance(event, Client.ClientReassigned):
                _assigned(rows, event, event.specialist_id)
            elif kind in _PROFILE:
                self._profile(rows, event)
            return
        if kind in CREATIONS:
            client_id = event.client_id
            if kind in _ENTITIES:
                rows.put(control_entities, {"entity_id": event.originator_id,
                                            "client_id": client_id})
        elif kind in CHANGES:
            entity = rows.get(control_entities, event.originator_id)
            if entity is None:  # its creation is not in this store: nothing to list it under
                return
            client_id = entity["client_id"]
        else:
            return
        delay = int((event.timestamp - event.occurred_at).total_seconds())
        if delay > 0:
            rows.put(control_entries, {
                "type": kind, "entity_id": event.originator_id, "client_id": client_id,
                "occurred_at": event.occurred_at, "recorded_at": event.timestamp,
                "delay_seconds": delay, "actor": event.actor})

    def _registered(self, rows: Rows, e: Client.ClientRegistered, position: int) -> None:
        _assigned(rows, e, e.specialist_id)
        profile = {"form": e.form, "erased": False, "persons": {},
                   **{f: bool(getattr(e, f)) for f in _PRESENCE}}
        rows.put(control_profiles, {"client_id": e.originator_id, "since": e.timestamp,
                                    "profile": profile})
        rows.put(control_completeness, {"client_id": e.originator_id, "since": e.timestamp,
                                        "until": None, "position": position,
                                        **_figures(e.originator_id, profile)})

    def _profile(self, rows: Rows, e: Any) -> None:
        client_id = e.originator_id
        held = rows.get(control_profiles, client_id)
        if held is None:
            return
        profile = _changed(held["profile"], e)
        current = rows.get(control_completeness, client_id, held["since"])
        assert current is not None
        figures = _figures(client_id, profile)
        rows.update(control_profiles, client_id, profile=profile)
        if all(current[k] == v for k, v in figures.items()):
            return
        since = e.timestamp
        if since == current["since"]:  # recorded together: one version
            rows.update(control_completeness, (client_id, since), **figures)
            return
        rows.update(control_completeness, (client_id, current["since"]), until=since)
        rows.put(control_completeness, {"client_id": client_id, "since": since, "until": None,
                                        "position": current["position"], **figures})
        rows.update(control_profiles, client_id, since=since)


def _assigned(rows: Rows, e: Any, specialist_id: UUID | None) -> None:
    rows.put(control_assignments, {"client_id": e.originator_id,
                                   "version": e.originator_version,
                                   "specialist_id": specialist_id,
                                   "occurred_at": e.occurred_at, "recorded_at": e.timestamp})


def _changed(profile: dict[str, Any], e: Any) -> dict[str, Any]:
    """The presence profile after a profile fact (as projections.clients.fold changes the
    state: a value is present when the stored, sealed, value is not empty)."""
    kind = type(e).__name__
    out = {**profile, "persons": dict(profile["persons"])}
    if kind == "ClientProfileUpdated":
        for key, value in e.changes.items():
            if key in _PRESENCE:
                out[key] = bool(value)
            elif key == "form":
                out["form"] = value
    elif kind == "ContactPersonAdded":
        out["persons"][str(e.person_id)] = {"role": e.role, "phones": bool(e.phones)}
    elif kind == "ContactPersonUpdated":
        person = out["persons"].get(str(e.person_id))
        if person is not None:
            person = dict(person)
            if "role" in e.changes:
                person["role"] = e.changes["role"]
            if "phones" in e.changes:
                person["phones"] = bool(e.changes["phones"])
            out["persons"][str(e.person_id)] = person
    elif kind == "ContactPersonRemoved":
        out["persons"].pop(str(e.person_id), None)
    elif kind == "ClientErased":
        out["erased"] = True
    return out


def _figures(client_id: UUID, profile: dict[str, Any]) -> dict[str, Any]:
    """Score and missing items by projections.clients.completeness, from presence alone."""
    state = ClientState(
        client_id, "", profile["form"], profile["name"], profile["tax_id"], profile["phones"],
        profile["emails"], profile["address"], [], None, _EPOCH, 0,
        persons={k: {"role": p["role"], "phones": p["phones"]}
                 for k, p in profile["persons"].items()},
        erased=profile["erased"])
    score = completeness(state)
    return {"form": profile["form"], "score": score["score"], "missing": score["missing"],
            "incomplete": bool(score["missing"]) and not profile["erased"]}


_EPOCH = datetime(1970, 1, 1)
