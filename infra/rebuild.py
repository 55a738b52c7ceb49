"""Replay projections from the store beside the live tables and compare (used by `crm replay`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from infra.bootstrap import Container
from infra.db import scratch_target
from infra.eventstore import notification_reader, read_model_url
from projections.base import Projection
from projections.personal import Personal
from projections.registry import all_projections
from projections.replay import (
    EventFailed,
    Receipt,
    first_difference,
    live_snapshot,
    rebuild,
    save_receipt,
)


@dataclass(frozen=True)
class ReplayOutcome:
    receipt: Receipt
    live_position: int
    live_digest: str
    difference: str | None  # the first differing row, when the digests differ
    # events the projection could not apply on replay (parked in the scratch copy, named here)
    parked: tuple[EventFailed, ...] = field(default=())

    @property
    def matches(self) -> bool:
        return self.receipt.state_digest == self.live_digest


def select(names: Sequence[str] | None, personal: Personal) -> list[Projection]:
    """Fresh instances of the named projections (all when none are named)."""
    projections = all_projections(personal)
    if not names:
        return projections
    known = {p.name: p for p in projections}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown projection {unknown[0]!r}; known: {', '.join(known)}")
    return [known[n] for n in names]


def naming_reader(app: Any) -> Callable[[int, int], Sequence[tuple[int, Any]]]:
    """The store's notification reader; an event that cannot be read (decoded, upcast,
    unsealed) raises EventFailed naming its position, type and stream."""
    read = notification_reader(app)

    def checked(start: int, limit: int) -> Sequence[tuple[int, Any]]:
        try:
            return read(start, limit)
        except Exception:
            for notification in app.recorder.select_notifications(start=start, limit=limit):
                try:
                    read(notification.id, 1)
                except Exception as single:
                    topic = str(notification.topic)
                    raise EventFailed(notification.id, topic.rsplit(".", 1)[-1].split(":")[-1],
                                      str(notification.originator_id), single) from single
            raise

    return checked


def replay_and_compare(container: Container, names: Sequence[str] | None = None,
                       progress: Callable[[str, int], None] | None = None, *,
                       to_head: bool = False) -> list[ReplayOutcome]:
    """Rebuild each projection into fresh tables up to the live copy's position (`to_head`: to
    the store's head, when the live copy could not get there), compare the digests, name the
    first differing row on a mismatch, and store a receipt. An event that cannot be read raises
    EventFailed naming it; one a projection cannot apply is parked, as live, and named in its
    outcome."""
    outcomes = []
    reader = naming_reader(container.app)
    for projection in select(names, container.keyring):
        position, live = live_snapshot(container.engine, projection)
        with scratch_target(read_model_url(container.settings)) as target:
            step = (lambda n, name=projection.name: progress(name, n)) if progress else None
            parked: dict[int, EventFailed] = {}  # by position: a retried page parks again

            def note(failed: EventFailed, found: dict[int, EventFailed] = parked) -> None:
                found.setdefault(failed.position, failed)

            receipt = rebuild(projection, reader, target, stop=None if to_head else position,
                              progress=step, on_park=note)
            difference = None
            if receipt.state_digest != live:
                with container.engine.connect() as left, target.connect() as right:
                    difference = first_difference(left, right, projection.tables)
        save_receipt(container.engine, receipt, container.clock())
        outcomes.append(ReplayOutcome(receipt, position, live, difference,
                                      tuple(sorted(parked.values(), key=lambda f: f.position))))
    return outcomes
