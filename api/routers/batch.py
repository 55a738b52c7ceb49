"""POST /v1/batch: many commands in one all-or-nothing write (imports)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response
from pydantic import ValidationError

from api.deps import OPERATE, Principal, ServicesDep, require
from api.errors import problem, validation_errors
from api.routers.writes import WRITES, IdempotencyKey
from api.schemas import PROBLEM_RESPONSES, BatchRequest, BatchResult, WriteResult
from commands.application import Actor
from commands.base import Command
from commands.registry import COMMANDS

router = APIRouter(tags=["batch"])
ROLES_BY_COMMAND = {spec.command.NAME: spec.roles for spec in WRITES}


@router.post("/batch", response_model=BatchResult, responses=PROBLEM_RESPONSES,
             operation_id="run_batch")
def batch(body: BatchRequest, svc: ServicesDep, response: Response,
          who: Annotated[Principal, Depends(require(*OPERATE))],
          idempotency_key: IdempotencyKey = None) -> BatchResult | Response:
    """Run many commands as one atomic write: all are saved, or none (errors name items.N)."""
    commands: list[Command] = []
    errors = []
    for index, item in enumerate(body.items):
        cls = COMMANDS.get(item.command)
        if cls is None:
            errors.append({"field": f"items.{index}.command",
                           "message": f"unknown command {item.command!r}",
                           "type": "enum"})
            continue
        allowed = ROLES_BY_COMMAND.get(item.command, ())
        if who.role not in allowed:
            # A batch grants nothing its single routes would refuse (e.g. admin-only commands).
            return problem(403, f"the role {who.role} may not run {item.command}; nothing was "
                                "written", errors=[{"field": f"items.{index}.command",
                                                   "message": "not allowed for this role"}])
        try:
            commands.append(cls.model_validate(item.data))
        except ValidationError as error:
            errors.extend(validation_errors(error, prefix=f"items.{index}.data."))
    if errors:
        return problem(422, "the batch is not valid; nothing was written", errors=errors)
    receipt = svc.app.execute(commands, Actor(who.user_id, str(who.role)),
                              idempotency_key=idempotency_key,
                              expected_versions=[i.if_match for i in body.items])
    svc.marks.note(who, receipt.position)
    if receipt.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return BatchResult(results=[WriteResult(id=r.id, version=r.version, position=r.position,
                                            links=r.links) for r in receipt.results],
                       position=receipt.position)
