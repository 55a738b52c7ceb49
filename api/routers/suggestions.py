"""Suggestions (issue 18.6): a client's next actions, and the specialists to take the client,
each ranked with its reasons (rules: domain.suggestions, docs/decisions.md)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request

from api.consistency import SESSION_READ, MinPosition, wait_until
from api.deps import PersonalReader, ServicesDep
from api.routers.clients import existed
from api.routers.read_params import AsOf, At, moments, zone
from api.schemas import PROBLEM_RESPONSES, SuggestedSpecialists, Suggestions, described
from domain.catalogue import jsonable
from projections.clients import client_state
from projections.suggestions import suggested_specialists, suggestions

router = APIRouter(tags=["clients"], responses=PROBLEM_RESPONSES, dependencies=[SESSION_READ])


@router.get("/clients/{client_id}/suggestions", operation_id="get_client_suggestions",
            **described(Suggestions))
def client_suggestions(request: Request, client_id: UUID, svc: ServicesDep,
                       _who: PersonalReader, at: At = None, as_of: AsOf = None,
                       min_position: MinPosition = None) -> dict[str, Any]:
    """The next actions for the client, ranked, each with the rule and facts behind it."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        state = client_state(conn, client_id, as_of_)
        existed(conn, client_id, None if state is None else {"registered_at": state.registered_at},
                at=at_ if at is not None else None, as_of=as_of_)
        found = suggestions(conn, client_id, at=at_, as_of=as_of_)
    return jsonable(found)  # type: ignore[no-any-return]


@router.get("/clients/{client_id}/suggested-specialists",
            operation_id="get_suggested_specialists", **described(SuggestedSpecialists))
def client_specialists(request: Request, client_id: UUID, svc: ServicesDep,
                       _who: PersonalReader, at: At = None, as_of: AsOf = None,
                       min_position: MinPosition = None) -> dict[str, Any]:
    """Specialists ranked by competence for the client's needs and history with the client."""
    wait_until(svc, min_position, _who)
    at_, as_of_ = moments(request, at, as_of)
    with svc.engine.connect() as conn:
        state = client_state(conn, client_id, as_of_)
        existed(conn, client_id, None if state is None else {"registered_at": state.registered_at},
                at=at_ if at is not None else None, as_of=as_of_)
        found = suggested_specialists(conn, client_id, at=at_, as_of=as_of_,
                                      tz=zone(request, None))
    return jsonable(found)  # type: ignore[no-any-return]
