"""Read consistency (§4, issue 21): every read of the read models reflects, by default, every
write acknowledged to the same API key before it (session consistency).

- `session_read` (a dependency of every read router) waits, bounded by
  `CRM_READ_WAIT_SECONDS`, until the read models include the caller's last acknowledged write
  (`api.deps.WriteMarks`), then the route runs; past the bound the answer is 503 with
  Retry-After. `?consistency=eventual` skips that wait (dashboards that prefer speed).
- `?min_position=N` (a write's `position`, possibly acknowledged to another key) is waited for
  whatever the consistency asked.
- A client's events are read from the store itself (api.routers.clients), never waited for.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Depends, HTTPException, Query
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import Principal, ServicesDep, principal

RETRY_AFTER_SECONDS = 1


class Consistency(StrEnum):
    SESSION = "session"
    EVENTUAL = "eventual"


ConsistencyParam = Annotated[Consistency, Query(description=(
    "`session` (default): the answer reflects every write acknowledged to this API key "
    "before the request (waits, bounded, for the read models; 503 with Retry-After if they "
    "cannot catch up in time). `eventual`: answer from the read models as they are, "
    "without waiting."))]
MinPosition = Annotated[int | None, Query(ge=0, description=(
    "Also wait (bounded) until the read models include this store position: a write's "
    "`position`, e.g. one acknowledged to another key or process."))]


def _wait(svc: ServicesDep, target: int) -> None:
    if target and not svc.wait_for(target, svc.read_wait_seconds):
        raise HTTPException(503, f"the read models have not reached position {target} yet; "
                                 "retry shortly, or read with ?consistency=eventual",
                            headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def wait_until(svc: ServicesDep, min_position: int | None,
               _who: Principal | None = None) -> None:
    """Wait (bounded) until the read models include `min_position` (the caller's own writes
    are waited for by `session_read`)."""
    if not min_position:
        return
    head = svc.head()
    if min_position > head:
        raise RequestValidationError([{
            "loc": ("query", "min_position"), "type": "less_than_equal",
            "msg": f"no event has been stored at position {min_position} (last is {head})"}])
    _wait(svc, min_position)


async def session_read(svc: ServicesDep, who: Annotated[Principal, Depends(principal)],
                       consistency: ConsistencyParam = Consistency.SESSION) -> Consistency:
    """Wait until the read models include every write acknowledged to this key (unless
    `eventual`). On the event loop while nothing blocks (the mark is in memory and already
    applied: the usual case); the database read of a shared mark and a real wait run in the
    thread pool."""
    if consistency is Consistency.SESSION:
        if svc.marks.shared:
            target = await run_in_threadpool(svc.marks.of, who)
        else:
            target = svc.marks.of(who)
        if target and not svc.wait_for(target, 0.0):
            await run_in_threadpool(_wait, svc, target)
    return consistency


SESSION_READ = Depends(session_read)
