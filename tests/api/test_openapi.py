"""The served OpenAPI is typed and exact (issue 22.1): every body has a named schema, errors are
problem+json with the Problem schema, operation ids are readable, instants are date-time, creates
link to their reads, and real answers over a demo history conform to the declared schemas."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from demo import Loader, generate
from domain.values import ContactPurpose
from infra.bootstrap import Container, build
from infra.settings import Settings
from tests.support import Api

PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("openapi")
    container: Container = build(Settings(database_url=f"sqlite:///{folder}/crm.db",
                                          rate_limit_per_minute=0))
    Loader(container.app, batch=200).load(generate(seed=7, clients=40, months=14,
                                                   start=date(2025, 5, 1)))
    container.follower.run_once()
    yield Api(container)
    container.close()


@pytest.fixture(scope="module")
def spec(world: Api) -> dict[str, Any]:
    return world.client.get("/openapi.json").json()  # type: ignore[no-any-return]


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_operation_has_a_readable_stable_id(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for _p, _m, op in _operations(spec)]
    assert len(ids) == len(set(ids)) > 60
    bad = [i for i in ids if not re.fullmatch(r"[a-z]+(_[a-z0-9]+)*", i) or "v1" in i
           or i.endswith(("_get", "_post", "_put", "_patch", "_delete"))]
    assert not bad
    assert {"get_client_card", "get_client_brief", "list_clients", "list_client_events",
            "list_audit_events", "get_event_schema", "get_payments_report"} <= set(ids)


def test_every_success_body_is_a_named_schema(spec: dict[str, Any]) -> None:
    untyped = []
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            for media, body in (response.get("content") or {}).items():
                if status.startswith("2") and media.endswith("json"):
                    ref = (body.get("schema") or {}).get("$ref", "")
                    if not ref.startswith("#/components/schemas/"):
                        untyped.append((method, path, status, media))
        request = (op.get("requestBody") or {}).get("content", {}).get("application/json")
        if request is not None:
            schema = request["schema"]
            refs = [schema.get("$ref")] + [s.get("$ref") for s in schema.get("anyOf", [])]
            assert any(r for r in refs), (method, path)
    assert not untyped
    schema_200 = spec["paths"]["/v1/schemas/{event_type}"]["get"]["responses"]["200"]
    assert schema_200["content"] == {"application/schema+json": {
        "schema": {"$ref": "#/components/schemas/JsonSchemaDocument"}}}


def test_errors_are_problem_json_with_the_problem_schema(spec: dict[str, Any]) -> None:
    for path, method, op in _operations(spec):
        for status, response in op["responses"].items():
            if status[0] in "45" and not (path == "/readyz" and status == "503"):
                assert response.get("content") == {"application/problem+json": PROBLEM}, (
                    method, path, status)
        if path != "/healthz":
            assert {"401", "403", "422", "429"} <= set(op["responses"]), (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_instants_are_date_time(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    for name, fields in (("EventOut", ("occurred_at", "recorded_at")),
                         ("ClientCard", ("at", "registered_at")),
                         ("AuditEvent", ("time", "recordedtime"))):
        for field in fields:
            declared = schemas[name]["properties"][field]
            formats = [declared.get("format")] + [s.get("format")
                                                  for s in declared.get("anyOf", [])]
            assert "date-time" in formats, (name, field)


def test_creates_link_to_their_reads(spec: dict[str, Any]) -> None:
    links = spec["paths"]["/v1/clients"]["post"]["responses"]["201"]["links"]
    assert links["get_client_card"] == {
        "operationId": "get_client_card", "parameters": {"client_id": "$response.body#/id"},
        "description": links["get_client_card"]["description"]}
    assert {"list_client_events", "get_client_brief", "log_contact"} <= set(links)
    complaint = spec["paths"]["/v1/complaints"]["post"]["responses"]["201"]["links"]
    assert complaint["get_situation_evidence"]["parameters"] == {
        "situation_id": "$response.body#/links/situation_id"}
    ids = {op["operationId"] for _p, _m, op in _operations(spec)}
    for path, method, op in _operations(spec):
        for link in op["responses"].get("201", {}).get("links", {}).values():
            assert link["operationId"] in ids
        if method == "post" and "201" in op["responses"] and path not in (
                "/v1/survey-templates", "/v1/specialists"):
            assert op["responses"]["201"].get("links"), path


_formats = FormatChecker()


@_formats.checks("date-time", raises=ValueError)
def _is_instant(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        raise ValueError(value)
    return datetime.fromisoformat(value).tzinfo is not None


@_formats.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or bool(date.fromisoformat(value))


def conforms(spec: dict[str, Any], operation_id: str, response: Any) -> None:
    """The answer's media type and body are those the operation declares for its status."""
    op = next(op for _p, _m, op in _operations(spec) if op["operationId"] == operation_id)
    declared = op["responses"][str(response.status_code)]
    media = response.headers["content-type"].split(";")[0]
    assert media in declared["content"], (operation_id, response.status_code, media)
    schema = declared["content"][media]["schema"]
    validator = Draft202012Validator({**schema, "components": spec["components"]},
                                     format_checker=_formats)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in
              validator.iter_errors(response.json())]
    assert not errors, (operation_id, errors[:5])


def test_real_answers_conform_to_the_declared_schemas(world: Api, spec: dict[str, Any]) -> None:
    def check(operation_id: str, path: str, **params: Any) -> Any:
        response = world.get(path, as_="admin", params=params)
        conforms(spec, operation_id, response)
        return response.json()

    clients = check("list_clients", "/v1/clients", limit=500)["items"]
    assert len(clients) == 40
    for item in clients:
        cid = item["client_id"]
        check("get_client_card", f"/v1/clients/{cid}/card")
        check("list_client_events", f"/v1/clients/{cid}/events", limit=500)
    for purpose in ContactPurpose:
        for item in clients[:12]:
            check("get_client_brief", f"/v1/clients/{item['client_id']}/brief",
                  purpose=str(purpose))
    situations = check("list_situations", "/v1/situations", limit=500)["items"]
    assert situations
    for s in situations:
        check("get_situation_evidence", f"/v1/situations/{s['situation_id']}/evidence")
    check("list_work_orders", "/v1/work-orders", limit=500)
    check("get_satisfaction_report", "/v1/reports/satisfaction")
    by_segment = check("get_satisfaction_report", "/v1/reports/satisfaction", by_segment="true")
    assert [g["segment"] for g in by_segment["by_segment"]] == [
        "active", "low_active", "at_risk", "lost", "never"]
    check("get_satisfaction_report", "/v1/reports/satisfaction", segment="lost")
    assert check("list_specialists", "/v1/specialists")["items"]
    assert check("list_survey_templates", "/v1/survey-templates")["items"]
    assert check("list_calendars", "/v1/calendars")["items"]
    assert check("list_sla_targets", "/v1/sla-targets")["items"]
    assert check("list_plans", "/v1/plans", month="2026-01")["items"]
    for segment in ("active", "low_active", "at_risk", "lost", "never"):
        check("get_segments_report", "/v1/reports/segments", segment=segment)
    check("get_reaction_times_report", "/v1/reports/reaction-times", all_ids=True)
    for month in ("2025-06", "2026-01", "2026-06"):
        check("get_payments_report", "/v1/reports/payments", month=month)
    paged = check("get_payments_report", "/v1/reports/payments", period="2026-Q3", limit=1,
                  debtors_sort="oldest_due", at="2026-08-01T00:00:00Z")
    assert paged["debtors"]["total"] > 1 and paged["debtors"]["next_cursor"], paged["debtors"]
    assert paged["acts_not_returned"]["total"] > 1
    check("get_payments_report", "/v1/reports/payments", period="2026-Q3", limit=1,
          debtors_sort="oldest_due", debtors_cursor=paged["debtors"]["next_cursor"])
    check("get_controls_report", "/v1/reports/controls")
    controls = check("get_controls_report", "/v1/reports/controls", limit=1,
                     late_entry_hours=0.001, feedback_days=0)
    paged_sections = 0
    for name in ("overdue_planned_contacts", "late_data_entry", "card_completeness",
                 "overdue_agreements", "work_without_feedback"):
        if controls[name]["next_cursor"]:
            paged_sections += 1
            check("get_controls_section", f"/v1/reports/controls/{name}", limit=1,
                  late_entry_hours=0.001, feedback_days=0, cursor=controls[name]["next_cursor"])
    assert paged_sections
    check("list_audit_events", "/v1/audit/events", limit=1000)
    check("verify_audit_chain", "/v1/audit/verify")
    check("list_replay_receipts", "/v1/audit/receipts")
    for entry in check("list_event_schemas", "/v1/schemas")["items"]:
        check("get_event_schema", entry["url"])
    check("readyz", "/readyz")
    check("healthz", "/healthz")
    # Errors: each kind, as problem+json that the Problem schema describes.
    conforms(spec, "get_client_card", world.get(f"/v1/clients/{clients[0]['client_id']}/card",
                                                as_=None))
    conforms(spec, "get_client_card", world.get(
        "/v1/clients/00000000-0000-4000-8000-000000000000/card", as_="admin"))
    conforms(spec, "get_client_card", world.get("/v1/clients/nope/card", as_="admin"))
    conforms(spec, "list_audit_events", world.get("/v1/audit/events", as_="operator"))
    conforms(spec, "get_event_schema", world.get("/v1/schemas/NoSuchEvent", as_="admin"))
