"""The cost of personal-data encryption (§8), isolated: the same events mapped with and without it.

Encoding: the store's mapper (personal fields sealed with AES-GCM under the client's data key,
keys cached as in a running service) against the library's plain mapper (same transcoder) over
the same domain events taken from the benchmark's history. Decoding: unsealing every personal
field (what a read of a client's events does) against leaving them sealed (what projections,
replays and the bus do). Ratios below 1 are the share of throughput left after encryption.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import Mapper

from bench.figures import Row, timer
from infra.bootstrap import Container

SAMPLE = 5_000
ROUNDS = 3


def _rate(work: Any, items: list[Any]) -> float:
    best = 0.0
    for _ in range(ROUNDS):
        with timer() as clock:
            for item in items:
                work(item)
        best = max(best, len(items) / clock.seconds if clock.seconds else 0.0)
    return best


def run(container: Container, backend: str) -> list[Row]:
    app: Any = container.app
    sample = list(app.recorder.select_notifications(start=1, limit=SAMPLE))
    sealing = app.mapper
    clear_all = [sealing.to_domain_event(n) for n in sample]  # unsealed once, keys now cached
    # Erased clients have no data key: sealing their events again would make a new one (the
    # write side refuses such writes), and the originals would no longer unseal.
    keyring = container.keyring
    kept = [i for i, e in enumerate(clear_all)
            if getattr(e, "client_id", None) is None or not keyring.erased(e.client_id)]
    stored = [sample[i] for i in kept]
    clear = [clear_all[i] for i in kept]
    plain: Mapper[Any] = Mapper(transcoder=sealing.transcoder, compressor=sealing.compressor,
                   cipher=sealing.cipher)
    as_stored = sealing.sealed()
    personal = sum(1 for e in clear if type(e).PERSONAL or type(e).PERSONAL_KEYS)
    note = f"{len(clear):,} events of the history, {personal:,} with personal fields"
    return [
        Row("encode events, personal fields sealed vs plain mapper", backend,
            _rate(sealing.to_stored_event, clear), _rate(plain.to_stored_event, clear),
            "events/s", note + "; AES-GCM per field, data keys cached"),
        Row("decode events, personal fields unsealed vs left sealed", backend,
            _rate(sealing.to_domain_event, stored), _rate(as_stored.to_domain_event, stored),
            "events/s", note + "; projections, replays and the bus read them sealed"),
    ]
