"""Every projection the system maintains, in the order they are applied."""

from __future__ import annotations

from projections.base import Projection
from projections.card import ClientCard
from projections.history import ClientHistory


def all_projections() -> list[Projection]:
    # One line per projection; keep names unique (they key the tracking table and receipts).
    return [
        ClientHistory(),
        ClientCard(),
    ]
