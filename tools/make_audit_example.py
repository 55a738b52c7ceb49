"""Make the worked example of docs/audit-format.md: a three-event export by the product.

    .venv/bin/python tools/make_audit_example.py tests/fixtures/audit-example.jsonl

Fixed clock, ids, master key and signing key; personal fields are sealed with random nonces, so
each run gives new ciphertext and hashes (the document quotes the committed file, and
tests/integration/test_audit_format.py checks that they agree).
"""

from __future__ import annotations

import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

from commands.application import Actor
from commands.clients import NoteInterest, RegisterClient, UpdateClient
from domain.values import ClientForm, ClientKind
from infra.bootstrap import build
from infra.clock import ManualClock
from infra.export import export_lines
from infra.settings import Settings

MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="  # the tests' key: never in use
SIGNING_KEY = "ZXhhbXBsZSBzaWduaW5nIGtleSwgdGVzdHMgb25seSE="  # "example signing key, tests only!"


def main(out: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, 30, tzinfo=UTC))
    ids = iter(UUID(int=0x1000 + n) for n in range(1000))
    with tempfile.TemporaryDirectory() as folder:
        container = build(Settings(database_url=f"sqlite:///{folder}/crm.db",
                                   master_key=MASTER_KEY, signing_key=SIGNING_KEY),
                          clock=clock, new_id=lambda: next(ids), start_follower=False)
        try:
            desk = Actor("desk.anna", "operator")
            client = container.app.execute([RegisterClient(
                kind=ClientKind.CUSTOMER, form=ClientForm.PERSON, name="Jana Novak",
                tags=["fleet"])], desk).results[0].id
            clock.advance(timedelta(minutes=5))
            container.app.execute([UpdateClient(client_id=client, tags=["fleet", "vip"])], desk)
            clock.advance(timedelta(minutes=5))
            container.app.execute([NoteInterest(client_id=client, text="asks about winter "
                                                                       "tyres")], desk)
            clock.advance(timedelta(minutes=1))
            out.write_bytes(b"".join(line + b"\n" for line in export_lines(container)))
        finally:
            container.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
