"""API keys are cached per process (issue 16.4): a revocation by another process is honoured
within `CACHE_SECONDS`, one through this process at once; both backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, event

from domain.values import Role
from infra.db import make_engine
from infra.eventstore import read_model_url
from infra.keys import CACHE_SECONDS, KeyStore
from infra.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _queries(engine: Engine) -> list[str]:
    seen: list[str] = []
    event.listen(engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: seen.append(statement))
    return seen


@pytest.fixture
def engine(any_settings: Settings) -> Iterator[Engine]:
    built = make_engine(read_model_url(any_settings))
    yield built
    built.dispose()


def test_a_cached_key_costs_no_query_until_the_cache_expires(engine: Engine) -> None:
    clock = Clock()
    keys = KeyStore(engine, clock=clock)
    token = keys.create("ann", Role.OPERATOR, datetime.now(UTC))
    queries = _queries(engine)
    assert keys.verify(token) is not None
    assert keys.verify(token) is not None
    assert len(queries) == 1
    clock.now += CACHE_SECONDS
    assert keys.verify(token) is not None
    assert len(queries) == 2


def test_a_revocation_elsewhere_is_honoured_once_the_cache_second_passes(
        engine: Engine) -> None:
    clock = Clock()
    serving = KeyStore(engine, clock=clock)
    elsewhere = KeyStore(engine)  # another process: `crm keys revoke`, another replica
    token = serving.create("ann", Role.OPERATOR, datetime.now(UTC))
    assert serving.verify(token) is not None
    assert elsewhere.revoke(token.split("_")[1], datetime.now(UTC)) is True
    clock.now += CACHE_SECONDS * 0.5
    assert serving.verify(token) is not None  # still within the cached second
    clock.now += CACHE_SECONDS * 0.5
    assert serving.verify(token) is None


def test_a_revocation_through_this_process_is_honoured_at_once(engine: Engine) -> None:
    clock = Clock()
    keys = KeyStore(engine, clock=clock)
    token = keys.create("ann", Role.ADMIN, datetime.now(UTC))
    assert keys.verify(token) is not None
    assert keys.revoke(token.split("_")[1], datetime.now(UTC)) is True
    assert keys.verify(token) is None


def test_a_wrong_secret_is_refused_even_when_the_key_is_cached(engine: Engine) -> None:
    keys = KeyStore(engine, clock=Clock())
    token = keys.create("ann", Role.OPERATOR, datetime.now(UTC))
    assert keys.verify(token) is not None
    prefix, key_id, _secret = token.split("_", 2)
    assert keys.verify(f"{prefix}_{key_id}_not-the-secret") is None
    assert keys.verify(token) is not None


def test_an_unknown_key_becomes_valid_once_created_here(engine: Engine) -> None:
    keys = KeyStore(engine, clock=Clock())
    token = "crm_abcdef0123456789_" + "s" * 43
    assert keys.verify(token) is None  # cached as unknown
    keys.create("bob", Role.ANALYST, datetime.now(UTC), token=token)
    found = keys.verify(token)
    assert found is not None and found.role == Role.ANALYST


def test_the_event_loop_check_answers_only_from_the_cache(engine: Engine) -> None:
    """`verify_cached` is what the API's async dependency calls on the event loop: it never
    queries; a miss sends the request to `verify` in the thread pool."""
    clock = Clock()
    keys = KeyStore(engine, clock=clock)
    token = keys.create("ann", Role.OPERATOR, datetime.now(UTC))
    queries = _queries(engine)
    assert keys.verify_cached(token) == (False, None)
    assert keys.verify_cached("not a key") == (True, None)
    assert keys.verify(token) is not None
    hit, found = keys.verify_cached(token)
    assert hit and found is not None and found.user_id == "ann"
    prefix, key_id, _secret = token.split("_", 2)
    assert keys.verify_cached(f"{prefix}_{key_id}_wrong") == (True, None)
    clock.now += CACHE_SECONDS
    assert keys.verify_cached(token) == (False, None)
    assert len(queries) == 1
