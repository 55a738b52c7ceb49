"""Replay projections from the store beside the live tables and compare (used by `crm replay`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from infra.bootstrap import Container
from infra.db import scratch_target
from infra.eventstore import notification_reader, read_model_url
from projections.base import Projection
from projections.personal import Personal
from projections.registry import all_projections
from projections.replay import (
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


def replay_and_compare(container: Container, names: Sequence[str] | None = None,
                       progress: Callable[[str, int], None] | None = None
                       ) -> list[ReplayOutcome]:
    """Rebuild each projection into fresh tables up to the live copy's position, compare the
    digests, name the first differing row on a mismatch, and store a receipt."""
    outcomes = []
    reader = notification_reader(container.app)
    for projection in select(names, container.keyring):
        position, live = live_snapshot(container.engine, projection)
        with scratch_target(read_model_url(container.settings)) as target:
            step = (lambda n, name=projection.name: progress(name, n)) if progress else None
            receipt = rebuild(projection, reader, target, stop=position, progress=step)
            difference = None
            if receipt.state_digest != live:
                with container.engine.connect() as left, target.connect() as right:
                    difference = first_difference(left, right, projection.tables)
        save_receipt(container.engine, receipt, container.clock())
        outcomes.append(ReplayOutcome(receipt, position, live, difference))
    return outcomes
