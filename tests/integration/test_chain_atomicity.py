"""A write whose hash-chain step fails stores nothing: the events and their hashes commit
together or not at all, on both backends (the library commits its PostgreSQL transaction
when anything but a database error escapes the step after the insert)."""

from __future__ import annotations

from typing import Any

import pytest

from commands import clients as cl
from commands.application import Actor
from infra import chain
from infra.chain import verify_store
from tests.support import Api, store_count


def test_a_failing_chain_step_leaves_nothing_written(any_api: Api,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    app = any_api.container.app
    any_api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "First"})
    before = store_count(any_api.container)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise RuntimeError("hashing failed")

    monkeypatch.setattr(chain, "_hashes_for", broken)
    with pytest.raises(RuntimeError, match="hashing failed"):
        app.execute([cl.RegisterClient(kind="customer", form="person", name="Second")],
                    Actor("tester", "operator"))
    monkeypatch.undo()
    assert store_count(any_api.container) == before
    assert verify_store(app).ok
    any_api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Third"})
    assert store_count(any_api.container) == before + 1
    assert verify_store(app).ok
