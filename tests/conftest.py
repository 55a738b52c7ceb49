"""Shared fixtures: settings per backend (SQLite file, PostgreSQL database), container, API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.support import TEST_MASTER_KEY, Api, fresh_pg_database


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{tmp_path}/crm.db")


@pytest.fixture
def pg_settings() -> Iterator[Settings]:
    with fresh_pg_database() as url:
        yield Settings(database_url=url, master_key=TEST_MASTER_KEY)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """The same test against both backends (contract tests)."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path}/crm.db")
    else:
        with fresh_pg_database() as url:
            yield Settings(database_url=url, master_key=TEST_MASTER_KEY)


@pytest.fixture
def container(sqlite_settings: Settings) -> Iterator[Container]:
    built = build(sqlite_settings)
    yield built
    built.close()


@pytest.fixture
def any_container(any_settings: Settings) -> Iterator[Container]:
    built = build(any_settings)
    yield built
    built.close()


@pytest.fixture
def api(container: Container) -> Api:
    return Api(container)


@pytest.fixture
def any_api(any_container: Container) -> Api:
    return Api(any_container)
