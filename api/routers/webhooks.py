"""Webhook subscribers as a resource (admin only): add, list, read, change, remove; a signed
test delivery; parked deliveries listed and sent again; replay from a position.

The dispatcher (`crm webhooks run`) delivers; these routes manage what it delivers to. The
signing secret is generated (or given, 32+ characters), shown once in the answer that set it,
and kept wrapped by the master key (consumers.webhooks, infra.crypto.SealedSecrets).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.deps import Admin, ServicesDep
from api.schemas import PROBLEM_RESPONSES
from commands.base import not_a_boolean
from consumers import webhooks as hooks
from consumers.webhook_alerts import ALERT_TYPES, ALL_ALERTS
from domain.catalogue import EVENT_TYPES
from domain.errors import InvalidTransitionError, InvalidValueError

router = APIRouter(prefix="/webhooks", tags=["webhooks"], responses=PROBLEM_RESPONSES)

Name = Annotated[str, Path(pattern=hooks.NAME_PATTERN, examples=["billing"],
                           description="The subscriber's name.")]
# ASCII only (an international domain name in its xn-- form): http.client sends it as is; a
# host first (no '/', '?' or '#' right after the scheme).
Url = Annotated[str, Field(pattern=r'^https?://[!"$-.0->@-~]+[!-~]*$', max_length=2000,
                           examples=["https://billing.example.com/hooks/crm"])]
# A name (PaymentReceived) or a CloudEvents type of it this code reads (crm.PaymentReceived.v1;
# older versions too); or an alert's CloudEvents type (crm.alert.reception.v1), or crm.alert.*.
EventType = Annotated[str, Field(max_length=100, json_schema_extra={"enum": sorted(
    [*EVENT_TYPES, *(f"crm.{name}.v{v}" for name, cls in EVENT_TYPES.items()
                     for v in range(1, int(getattr(cls, "class_version", 1)) + 1)),
     *ALERT_TYPES, ALL_ALERTS])})]
EventTypes = Annotated[list[EventType], Field(
    max_length=200, description="Event type names (`PaymentReceived`) or CloudEvents types "
                                "(`crm.PaymentReceived.v1`), and alert CloudEvents types "
                                "(`crm.alert.reception.v1`; `crm.alert.*`: every alert); "
                                "empty: every event and no alert.")]
Secret = Annotated[str, Field(min_length=hooks.MIN_SECRET, max_length=200, description=(
    f"The signing secret, at least {hooks.MIN_SECRET} characters; omitted: one is "
    "generated and shown once in the answer."))]


class _Body(BaseModel):
    """A request body: no unknown fields, and no JSON true/false where a number is due."""

    model_config = ConfigDict(extra="forbid")
    _numbers_are_not_booleans = field_validator("*", mode="before")(classmethod(not_a_boolean))


class WebhookCreate(_Body):
    name: str = Field(pattern=hooks.NAME_PATTERN, examples=["billing"])
    url: Url
    event_types: EventTypes = []
    start_position: int | None = Field(default=None, ge=0, description=(
        "Deliver the events after this store position; omitted: the current one (events "
        "from now on); 0: the whole history."))
    secret: Secret | None = None


class WebhookUpdate(_Body):
    url: Url | None = None
    event_types: EventTypes | None = None
    position: int | None = Field(default=None, ge=0, description=(
        "Move the subscriber: the next delivery is the first wanted event after it (earlier "
        "positions are sent again, parked ones included)."))
    secret: Secret | None = None
    new_secret: bool = Field(default=False, description=(
        "Generate a new secret (shown once in the answer)."))


class LastDelivery(BaseModel):
    position: int | None = Field(description="The event's store position; null for an alert.")
    event_id: str
    at: datetime


class Webhook(BaseModel):
    name: str
    url: str
    event_types: list[str]
    position: int = Field(description="The last store position delivered, parked or passed.")
    alert_position: datetime | None = Field(description=(
        "Where it is in the alert logs: when the newest alert it passed (or found when none "
        "of its kinds was pending) was logged; null when it asks for no alert."))
    created_at: datetime
    last_delivery: LastDelivery | None
    failures: int = Field(description="Failed attempts in a row (0 after a delivery).")
    last_error: str | None
    last_error_at: datetime | None
    parked: int = Field(description="Deliveries parked after repeated failure.")


class WebhookWithSecret(Webhook):
    secret: str | None = Field(description="The signing secret when this answer set it (shown "
                                            "once; only a wrapped copy is stored), else null.")


class WebhookList(BaseModel):
    items: list[Webhook]


class PingResult(BaseModel):
    delivered: bool
    event_id: str = Field(description="Id of the test CloudEvent (type crm.webhook.ping.v1).")
    error: str | None


class ParkedDelivery(BaseModel):
    position: int = Field(description="The event's store position; for an alert (which has "
                                      "none) -1, -2... in the order parked.")
    event_id: str
    type: str
    error: str
    attempts: int
    parked_at: datetime


class ParkedList(BaseModel):
    items: list[ParkedDelivery]


class ResendResult(BaseModel):
    resent: list[int] = Field(description="Positions delivered now (an alert's negative).")
    still_failing: dict[str, str] = Field(description="Position -> the error; still parked.")


class ReplayRequest(_Body):
    from_position: int = Field(ge=1, description="Send every wanted event from here again.")


@contextmanager
def _managed(name: str | None = None) -> Iterator[None]:
    """Subscriber errors as problems: 422 naming the field (409 for a name in use), 404."""
    try:
        yield
    except hooks.SubscriberExistsError as error:
        raise InvalidTransitionError(str(error), field=error.field) from None
    except hooks.SubscriberError as error:
        raise InvalidValueError(str(error), field=error.field) from None
    except (hooks.UnknownSubscriberError, KeyError):
        raise HTTPException(404, f"no webhook subscriber {name!r}") from None


def _one(svc: ServicesDep, name: str) -> dict[str, Any]:
    found = hooks.status(svc.engine, name)
    if not found:
        raise HTTPException(404, f"no webhook subscriber {name!r}")
    return found[0]


def _clock(svc: ServicesDep) -> Callable[[], datetime]:
    return svc.clock


@router.get("", operation_id="list_webhooks", response_model=WebhookList)
def list_webhooks(svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Every subscriber with its position, last delivery, failures and parked count."""
    return {"items": hooks.status(svc.engine)}


@router.post("", operation_id="add_webhook", status_code=201,
             response_model=WebhookWithSecret)
def add_webhook(body: WebhookCreate, svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Add a subscriber; the answer shows its secret once."""
    head = svc.head()
    start = head if body.start_position is None else body.start_position
    if start > head:
        raise InvalidValueError(f"no event has been stored at position {start} (last is "
                                f"{head})", field="start_position")
    with _managed(body.name):
        _sub, secret = hooks.register(svc.engine, body.name, body.url,
                                      secrets=svc.webhook_secrets,
                                      event_types=body.event_types, position=start,
                                      secret=body.secret, clock=_clock(svc))
    return {**_one(svc, body.name), "secret": secret}


@router.get("/{name}", operation_id="get_webhook", response_model=Webhook)
def get_webhook(name: Name, svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """One subscriber with its position, last delivery, failures and parked count."""
    return _one(svc, name)


@router.patch("/{name}", operation_id="update_webhook", response_model=WebhookWithSecret)
def update_webhook(name: Name, body: WebhookUpdate, svc: ServicesDep,
                   _who: Admin) -> dict[str, Any]:
    """Change the URL, event types, position or secret (a new one is shown once)."""
    if body.new_secret and body.secret is not None:
        raise InvalidValueError("give a secret or ask for a new one, not both",
                                field="new_secret")
    if body.position is not None and body.position > svc.head():
        raise InvalidValueError(f"no event has been stored at position {body.position}",
                                field="position")
    secret = hooks.new_secret() if body.new_secret else body.secret
    with _managed(name):
        hooks.update_subscriber(svc.engine, name, secrets=svc.webhook_secrets, url=body.url,
                                event_types=body.event_types, secret=secret,
                                position=body.position)
    return {**_one(svc, name), "secret": secret}


@router.delete("/{name}", operation_id="remove_webhook", status_code=204)
def remove_webhook(name: Name, svc: ServicesDep, _who: Admin) -> Response:
    """Remove a subscriber, its secret, status and parked deliveries."""
    with _managed(name):
        hooks.remove_subscriber(svc.engine, name, secrets=svc.webhook_secrets)
    return Response(status_code=204)


@router.post("/{name}/ping", operation_id="ping_webhook", response_model=PingResult)
def ping_webhook(name: Name, svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Send a signed test delivery now (CloudEvent type crm.webhook.ping.v1); the outcome."""
    with _managed(name):
        return hooks.ping(svc.engine, name, secrets=svc.webhook_secrets,
                          transport=svc.webhook_transport, clock=_clock(svc))


@router.get("/{name}/parked", operation_id="list_parked_webhook_deliveries",
            response_model=ParkedList)
def list_parked(name: Name, svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """The subscriber's parked deliveries (after repeated failure), oldest first."""
    _one(svc, name)
    return {"items": hooks.parked(svc.engine, name)}


@router.post("/{name}/parked/resend", operation_id="resend_parked_webhook_deliveries",
             response_model=ResendResult)
def resend_parked(name: Name, svc: ServicesDep, _who: Admin) -> dict[str, Any]:
    """Send every parked delivery again now (same event ids, signed anew)."""
    with _managed(name):
        found = hooks.resend_parked(svc.engine, name, secrets=svc.webhook_secrets,
                                    transport=svc.webhook_transport, clock=_clock(svc))
    return {"resent": found["resent"],
            "still_failing": {str(k): v for k, v in found["still_failing"].items()}}


@router.post("/{name}/replay", operation_id="replay_webhook", response_model=Webhook)
def replay_webhook(name: Name, body: ReplayRequest, svc: ServicesDep,
                   _who: Admin) -> dict[str, Any]:
    """Have the dispatcher send every wanted event from `from_position` again."""
    if body.from_position > svc.head():
        raise InvalidValueError(f"no event has been stored at position {body.from_position}",
                                field="from_position")
    with _managed(name):
        hooks.replay(svc.engine, name, body.from_position)
    return _one(svc, name)
