"""Fuzzing the live OpenAPI with schemathesis, with a key of every role: no 500, answers match
the schema, and a rejected request never appends an event. A bounded budget keeps it fast."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.support import Api

# SSE streams never end by themselves: they are tested on their own, with a bounded read.
SKIPPED_PATHS = ("/v1/alerts/stream",)


@pytest.fixture(scope="module")
def fuzz_container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    container = build(Settings(database_url=f"sqlite:///{folder}/crm.db",
                               rate_limit_per_minute=0, read_wait_seconds=0.2))
    yield container
    container.close()


@pytest.fixture(scope="module")
def fuzz_api(fuzz_container: Container) -> Api:
    api = Api(fuzz_container)
    # Something to find: ids the fuzzer may hit by chance are mostly unknown (404/422).
    api.ok("POST", "/v1/clients", {"kind": "customer", "form": "person", "name": "Seed"})
    return api


def test_fuzzed_requests_never_fail_the_server_nor_write_when_rejected(fuzz_api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_api.client.app)
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [o for o in operations if o.path not in SKIPPED_PATHS]
    assert len(operations) > 40  # every route is described and fuzzed
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=10, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz(case: Any) -> None:
            before = fuzz_api.store_position()
            response = case.call(headers=fuzz_api.headers("admin"))
            case.validate_response(response, checks=[
                not_a_server_error, status_code_conformance, content_type_conformance,
                response_schema_conformance])
            if response.status_code >= 400:
                assert fuzz_api.store_position() == before, (case.method, case.path,
                                                            response.text)

        @given(case=operation.as_strategy())
        @settings(max_examples=3, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def fuzz_as_every_role(case: Any) -> None:
            for role in ("operator", "manager", "auditor", "analyst"):
                before = fuzz_api.store_position()
                response = case.call(headers=fuzz_api.headers(role))
                case.validate_response(response, checks=[not_a_server_error,
                                                         content_type_conformance])
                if response.status_code >= 400:
                    assert fuzz_api.store_position() == before, (role, case.path)

        for run in (fuzz, fuzz_as_every_role):
            try:
                run()
            except Exception as error:
                failures.append(f"{operation.method.upper()} {operation.path}: "
                                f"{str(error).splitlines()[0:12]}")
    assert not failures, "\n".join(failures)
