"""A client generated from the served OpenAPI by openapi-python-client (issue 22.2): a round trip
through it parses every answer, errors included, into its typed model (no untyped wrappers, no
`parsed=None`)."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import Api

PACKAGE = "crm_generated_client"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Generate the client from a spec served by an app (module-scoped: generating takes ~2 s)."""
    folder = tmp_path_factory.mktemp("generated")
    from infra.bootstrap import build
    from infra.settings import Settings

    container = build(Settings(database_url=f"sqlite:///{folder}/spec.db"))
    try:
        spec = Api(container).client.get("/openapi.json").json()
    finally:
        container.close()
    (folder / "openapi.json").write_text(json.dumps(spec))
    (folder / "config.yaml").write_text("post_hooks: []\n")
    tool = Path(sys.executable).parent / "openapi-python-client"
    done = subprocess.run(
        [str(tool), "generate", "--path", str(folder / "openapi.json"), "--meta", "none",
         "--config", str(folder / "config.yaml"), "--output-path", str(folder / PACKAGE)],
        capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(folder))
    try:
        yield folder / PACKAGE
    finally:
        sys.path.remove(str(folder))
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


class Generated:
    """Calls operations of the generated client by operation id, as a role of the test API."""

    def __init__(self, api: Api, root: Path) -> None:
        self.api = api
        self.models = importlib.import_module(f"{PACKAGE}.models")
        client_module = importlib.import_module(f"{PACKAGE}.client")
        self._client_cls = client_module.Client
        self.operations: dict[str, ModuleType] = {}
        for tag in pkgutil.iter_modules([str(root / "api")]):
            for op in pkgutil.iter_modules([str(root / "api" / tag.name)]):
                self.operations[op.name] = importlib.import_module(
                    f"{PACKAGE}.api.{tag.name}.{op.name}")
        self.seen: dict[str, set[int]] = {}

    def client(self, as_: str | None) -> Any:
        http = TestClient(self.api.client.app, base_url="http://testserver",
                          headers=self.api.headers(as_), raise_server_exceptions=False)
        return self._client_cls(base_url="http://testserver").set_httpx_client(http)

    def body(self, operation_id: str, data: dict[str, Any]) -> Any:
        name = "".join(p.title() for p in operation_id.split("_")) + "Body"
        return getattr(self.models, name).from_dict(data)

    def call(self, operation_id: str, status: int, *, as_: str | None = "operator",
             model: str | None = None, **kwargs: Any) -> Any:
        """Run one operation; the answer has `status` and parses into `model`."""
        if "body" in kwargs and isinstance(kwargs["body"], dict):
            kwargs["body"] = self.body(operation_id, kwargs["body"])
        response = self.operations[operation_id].sync_detailed(client=self.client(as_),
                                                               **kwargs)
        assert response.status_code == status, (operation_id, response.content[:500])
        parsed = response.parsed
        assert parsed is not None, (operation_id, status, response.content[:300])
        expected = model or ("Problem" if status >= 400 else None)
        if expected is not None:
            assert type(parsed).__name__ == expected, (operation_id, type(parsed))
        assert type(parsed).__module__.startswith(f"{PACKAGE}.models."), type(parsed)
        self.seen.setdefault(operation_id, set()).add(status)
        return parsed


def test_no_untyped_wrappers_are_generated(generated: Path) -> None:
    names = [p.stem for p in (generated / "models").glob("*.py")]
    assert not [n for n in names if "_v1_" in n or "response" in n or n.endswith("_get")]


def test_round_trip_through_the_generated_client(api: Api, generated: Path) -> None:
    gen = Generated(api, generated)
    client = gen.call("register_client", 201, model="WriteResult", body={
        "kind": "customer", "form": "person", "name": "Ann Lee", "phones": ["+49 30 1234"]})
    cid = client.id
    assert client.version == 1 and client.position >= 1
    gen.call("log_contact", 201, client_id=cid, body={
        "channel": "phone", "direction": "inbound", "topic": "Invoice question",
        "occurred_at": "2026-11-20T10:00:00+01:00"})
    template = gen.call("define_survey_template", 201, as_="admin", body={
        "name": "after service", "questions": [
            {"id": "q-book", "text": "Booking easy?", "stage": "booking"},
            {"id": "q-fix", "text": "Repair right?", "stage": "repair"}]}).id
    order = gen.call("open_work_order", 201, body={
        "client_id": str(cid), "asset": "VW Golf", "stages": ["booking", "repair"]}).id
    gen.call("close_work_order", 200, work_order_id=order,
             body={"amount": "310.00", "currency": "EUR"})
    survey = gen.call("start_survey", 201, body={
        "work_order_id": str(order), "template_id": str(template), "interviewer": "ivy"}).id
    gen.call("complete_survey", 200, survey_id=survey, body={"outcome": "completed"})
    complaint = gen.call("register_complaint", 201, body={"client_id": str(cid),
                                                         "text": "late"})
    situation = complaint.links["situation_id"]
    gen.call("issue_invoice", 201, body={
        "client_id": str(cid), "number": "2026-0042", "amount": "120.50", "currency": "EUR",
        "due_at": "2099-01-01T00:00:00Z"})
    payment = gen.call("receive_payment", 201, body={
        "client_id": str(cid), "amount": "120.50", "currency": "EUR", "reference": "bank 778"})

    wait = {"min_position": payment.position}
    card = gen.call("get_client_card", 200, model="ClientCard", client_id=cid, **wait)
    assert card.profile.name == "Ann Lee" and card.last_contact.topic == "Invoice question"
    assert card.satisfaction_history[0].survey_id == survey
    assert card.open_situations[0].situation_id == situation
    gen.call("get_client_brief", 200, model="ClientBrief", client_id=cid,
             purpose=gen.models.ContactPurpose("first_meeting"))
    events = gen.call("list_client_events", 200, model="EventPage", client_id=cid, **wait)
    assert [e.type_ for e in events.items][:2] == ["ClientRegistered", "ContactLogged"]
    assert events.items[1].occurred_at.utcoffset() is not None
    listed = gen.call("list_clients", 200, model="ClientList")
    assert listed.items[0].client_id == cid
    gen.call("list_work_orders", 200, model="WorkOrderRegister")
    gen.call("list_situations", 200, model="SituationList", as_="manager")
    gen.call("get_situation_evidence", 200, model="SituationEvidence", situation_id=situation,
             as_="manager")
    for operation, model, extra in (
            ("get_satisfaction_report", "SatisfactionReport", {}),
            ("get_segments_report", "SegmentsReport", {}),
            ("get_reaction_times_report", "ReactionTimesReport", {}),
            ("get_payments_report", "PaymentsReport", {"month": "2026-11"}),
            ("get_payments_report", "PaymentsReport", {"period": "2026-Q4"}),
            ("get_satisfaction_report", "SatisfactionReport", {"by_segment": True}),
            ("list_survey_templates", "SurveyTemplateList", {}),
            ("list_specialists", "SpecialistList", {}),
            ("list_calendars", "CalendarList", {}),
            ("list_sla_targets", "SlaTargetList", {}),
            ("list_plans", "PlanList", {}),
            ("get_controls_report", "ControlsReport", {})):
        gen.call(operation, 200, model=model, as_="manager", **extra)
    audit = gen.call("list_audit_events", 200, model="AuditEventPage", as_="auditor")
    assert audit.items and audit.items[0].specversion == "1.0"
    gen.call("verify_audit_chain", 200, model="ChainReport", as_="auditor")
    gen.call("list_replay_receipts", 200, model="ReceiptList", as_="auditor")
    schemas = gen.call("list_event_schemas", 200, model="SchemaList")
    one = gen.call("get_event_schema", 200, model="JsonSchemaDocument",
                   event_type=schemas.items[0].type_)
    assert one.id.endswith(schemas.items[0].cloudevents_type)
    gen.call("readyz", 200, model="Readiness")
    gen.call("healthz", 200, model="Health", as_=None)

    # Each kind of error parses into Problem, with the offending fields where there are any.
    gen.call("get_client_card", 401, as_=None, client_id=cid)
    gen.call("list_audit_events", 403, as_="operator")
    gen.call("get_client_card", 404, client_id="00000000-0000-4000-8000-000000000000")
    gen.call("resolve_situation", 200, situation_id=situation, body={"resolution": "sorted"})
    again = gen.call("resolve_situation", 409, situation_id=situation,
                     body={"resolution": "sorted"})
    assert again.status == 409
    gen.call("update_client", 200, client_id=cid, if_match="1", body={"name": "Ann B. Lee"})
    stale = gen.call("update_client", 409, client_id=cid, if_match="1",
                     body={"name": "Ann B. Lee"})
    assert stale.current_version and stale.current_version > 1
    invalid = gen.call("log_contact", 422, client_id=cid, body={
        "channel": "phone", "direction": "inbound", "topic": "x",
        "occurred_at": "2026-11-20T10:00:00+01:00", "purpose": "first_meeting"}
        | {"occurred_at": "2999-01-01T00:00:00Z"})
    assert invalid.errors and invalid.errors[0].field
