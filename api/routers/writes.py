"""Every write route of §4, declared as a table: path, command, status, roles, summary.

Each route validates its body (the command minus the ids in its path), runs the command through
the application with the caller's Idempotency-Key and If-Match, and answers id, version and
position. One generic endpoint serves them all, so every write behaves the same way.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Response
from pydantic import BaseModel, ConfigDict, create_model, field_validator

from api.deps import ADMINISTER, OPERATE, Principal, ServicesDep, require
from api.schemas import PROBLEM_RESPONSES, WriteResult
from commands import activity as act
from commands import clients as cl
from commands import money as mo
from commands import reference as ref
from commands import service as sv
from commands import situations as si
from commands.application import Actor, Receipt
from commands.base import Command, not_a_boolean
from domain.values import Role


@dataclass(frozen=True)
class Write:
    method: str
    path: str
    command: type[Command]
    status: int
    summary: str
    tag: str
    roles: tuple[Role, ...] = OPERATE


WRITES: tuple[Write, ...] = (
    Write("POST", "/clients", cl.RegisterClient, 201, "Register a client", "clients"),
    Write("PATCH", "/clients/{client_id}", cl.UpdateClient, 200,
          "Update a client's profile or reassign its specialist", "clients"),
    Write("POST", "/clients/{client_id}/interests", cl.NoteInterest, 201,
          "Note an interest of the client not in its formal data", "clients"),
    Write("POST", "/clients/{client_id}/contact-persons", cl.AddContactPerson, 201,
          "Add a contact person", "clients"),
    Write("PATCH", "/clients/{client_id}/contact-persons/{person_id}", cl.UpdateContactPerson,
          200, "Update a contact person", "clients"),
    Write("DELETE", "/clients/{client_id}/contact-persons/{person_id}", cl.RemoveContactPerson,
          200, "Remove a contact person", "clients"),
    Write("POST", "/clients/{client_id}/erase", cl.EraseClient, 200,
          "Erase a client's personal data (admin)", "clients", ADMINISTER),
    Write("POST", "/clients/{client_id}/contacts", act.LogContact, 201,
          "Log a contact (an emergency purpose opens a situation)", "activity"),
    Write("POST", "/clients/{client_id}/planned-contacts", act.PlanContact, 201,
          "Plan a contact", "activity"),
    Write("POST", "/planned-contacts/{planned_contact_id}/cancel", act.CancelPlannedContact, 200,
          "Cancel a planned contact", "activity"),
    Write("POST", "/clients/{client_id}/agreements", act.MakeAgreement, 201,
          "Record an agreement made with the client", "activity"),
    Write("POST", "/agreements/{agreement_id}/fulfil", act.FulfilAgreement, 200,
          "Mark an agreement kept", "activity"),
    Write("POST", "/agreements/{agreement_id}/break", act.BreakAgreement, 200,
          "Mark an agreement broken", "activity"),
    Write("POST", "/clients/{client_id}/works", act.AssignWork, 201, "Assign work for a client",
          "activity"),
    Write("POST", "/works/{work_id}/complete", act.CompleteWork, 200, "Complete work",
          "activity"),
    Write("POST", "/works/{work_id}/feedback", act.GiveFeedback, 200,
          "Record the client's feedback on completed work", "activity"),
    Write("POST", "/work-orders", sv.OpenWorkOrder, 201, "Open a work order (a visit)",
          "service"),
    Write("POST", "/work-orders/{work_order_id}/close", sv.CloseWorkOrder, 200,
          "Close a work order", "service"),
    Write("POST", "/surveys", sv.StartSurvey, 201,
          "Start a satisfaction survey (every question ticked)", "service"),
    Write("POST", "/surveys/{survey_id}/ticks", sv.SetTick, 200,
          "Tick or untick one question", "service"),
    Write("POST", "/surveys/{survey_id}/complete", sv.CompleteSurvey, 200,
          "Complete a survey (unticked questions open a situation)", "service"),
    Write("POST", "/complaints", sv.RegisterComplaint, 201,
          "Register a complaint (opens a situation)", "service"),
    Write("POST", "/wishes", sv.RegisterWish, 201, "Register a wish", "service"),
    Write("POST", "/situations", si.OpenSituation, 201, "Open a situation by hand",
          "situations"),
    Write("POST", "/situations/{situation_id}/acknowledge", si.AcknowledgeSituation, 200,
          "Acknowledge a situation (a first reaction)", "situations"),
    Write("POST", "/situations/{situation_id}/pause", si.PauseSituation, 200,
          "Pause a situation's clock while waiting on the client", "situations"),
    Write("POST", "/situations/{situation_id}/resume", si.ResumeSituation, 200,
          "Resume a paused situation", "situations"),
    Write("POST", "/situations/{situation_id}/resolve", si.ResolveSituation, 200,
          "Resolve a situation", "situations"),
    Write("POST", "/situations/{situation_id}/reopen", si.ReopenSituation, 200,
          "Reopen a resolved situation", "situations"),
    Write("POST", "/invoices", mo.IssueInvoice, 201, "Issue an invoice", "money"),
    Write("POST", "/invoices/{invoice_id}/act-sent", mo.SendAct, 200,
          "Record the act sent to the client", "money"),
    Write("POST", "/invoices/{invoice_id}/act-returned", mo.ReturnAct, 200,
          "Record the signed act returned", "money"),
    Write("POST", "/payments", mo.ReceivePayment, 201, "Record a payment received", "money"),
    Write("PUT", "/plans/{specialist_id}/{month}", ref.SetPaymentPlan, 200,
          "Set a specialist's payment plan for a month (admin)", "reference", ADMINISTER),
    Write("POST", "/specialists", ref.RegisterSpecialist, 201, "Register a specialist (admin)",
          "reference", ADMINISTER),
    Write("POST", "/survey-templates", ref.DefineSurveyTemplate, 201,
          "Define a survey template, or its next version (admin)", "reference", ADMINISTER),
    Write("PUT", "/calendars/{calendar}", ref.SetCalendar, 200,
          "Set a business calendar; each change is a new version (admin)", "reference",
          ADMINISTER),
    Write("PUT", "/sla-targets/{situation_kind}", ref.SetSlaTarget, 200,
          "Set the reaction and resolution targets of a situation kind (admin)", "reference",
          ADMINISTER),
)


def body_model(command: type[Command], path_names: set[str]) -> type[BaseModel]:
    """The request body of a command: its fields less those given by the path."""
    fields: dict[str, Any] = {name: (info.annotation, info)
                              for name, info in command.model_fields.items()
                              if name not in path_names}
    config = ConfigDict(extra="forbid")
    if getattr(command, "AT_LEAST_ONE_CHANGE", False):
        # "give at least one field to change", as a schema: some field besides occurred_at
        # (not as an anyOf of requireds: generated clients would make the body a union).
        config["json_schema_extra"] = {"minProperties": 1, "not": {
            "required": ["occurred_at"], "maxProperties": 1}}
    refuse_booleans: Any = field_validator("*", mode="before")(classmethod(not_a_boolean))
    model: type[BaseModel] = create_model(
        command.__name__ + "Body", __config__=config,
        __validators__={"_numbers_are_not_booleans": refuse_booleans}, **fields)
    model.__doc__ = command.__doc__
    return model


# A version, as an ETag gives it ("3") or bare (3), optionally weak (W/"3").
IF_MATCH_PATTERN = r'^\s*(W/)?"?\d{1,9}"?\s*$'


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    match = re.fullmatch(r'\s*(?:W/)?"?(\d{1,9})"?\s*', value)
    if match is None:
        from commands.errors import CommandError

        raise CommandError("If-Match must be a version number, e.g. \"3\"", field="If-Match")
    return int(match.group(1))


def respond(receipt: Receipt, response: Response, status: int) -> WriteResult:
    first = receipt.results[0]
    response.status_code = status
    response.headers["ETag"] = f'"{first.version}"'
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return WriteResult(id=first.id, version=first.version, position=receipt.position,
                       links=first.links)


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1,
                                              max_length=200)]
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=40)]


def _endpoint(spec: Write) -> Any:
    path_names = re.findall(r"{(\w+)}", spec.path)
    body_cls = body_model(spec.command, set(path_names))
    body_required = (any(f.is_required() for f in body_cls.model_fields.values())
                     or getattr(spec.command, "AT_LEAST_ONE_CHANGE", False))

    def endpoint(svc: Any, who: Principal, response: Response, idempotency_key: str | None,
                 if_match: str | None, body: BaseModel | None = None, **path: Any) -> WriteResult:
        data = body.model_dump(exclude_unset=True) if body is not None else {}
        command = spec.command.model_validate({**data, **path})
        receipt = svc.app.execute([command], Actor(who.user_id, str(who.role)),
                                  idempotency_key=idempotency_key,
                                  expected_versions=[parse_if_match(if_match)])
        svc.marks.note(who, receipt.position)
        return respond(receipt, response, spec.status)

    P = inspect.Parameter
    params = [
        P("svc", P.KEYWORD_ONLY, annotation=ServicesDep),
        P("who", P.KEYWORD_ONLY, annotation=Annotated[Principal, Depends(require(*spec.roles))]),
        P("response", P.KEYWORD_ONLY, annotation=Response),
        P("idempotency_key", P.KEYWORD_ONLY, annotation=IdempotencyKey, default=None),
        P("if_match", P.KEYWORD_ONLY, annotation=IfMatch, default=None),
    ]
    for name in path_names:
        # The field's own constraints (a month's pattern) check the path and show in OpenAPI.
        info = spec.command.model_fields[name]
        params.append(P(name, P.KEYWORD_ONLY, annotation=Annotated[
            info.annotation, *info.metadata, Path(description=info.description)]))
    if body_required:
        params.append(P("body", P.KEYWORD_ONLY, annotation=Annotated[body_cls, Body()]))
    else:
        params.append(P("body", P.KEYWORD_ONLY, annotation=Annotated[body_cls | None, Body()],
                        default=None))
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = spec.command.NAME
    endpoint.__doc__ = spec.summary
    return endpoint


def router() -> APIRouter:
    r = APIRouter()
    for spec in WRITES:
        r.add_api_route(spec.path, _endpoint(spec), methods=[spec.method],
                        status_code=spec.status, response_model=WriteResult,
                        summary=spec.summary, tags=[spec.tag], responses=PROBLEM_RESPONSES,
                        operation_id=spec.command.NAME)
    return r
