"""/v1/events: server-sent events of run transitions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse

from gnomon.api import present
from gnomon.api.deps import principal, principal_of, service
from gnomon.api.present import JSON, iso
from gnomon.api.streams import Stream, caller_check, slot
from gnomon.domain import Principal
from gnomon.service import Service

MAX_ID = 2**63 - 1
CLOSED = orjson.dumps({"reason": "the token was revoked or its roles changed"}).decode()
router = APIRouter(tags=["events"])


async def caller(
    request: Request,
    ticket: str | None = Query(
        None,
        max_length=200,
        description="From POST /v1/events/ticket, for clients that "
        "cannot send an Authorization header (EventSource).",
    ),
) -> Principal:
    if ticket is not None:
        return await request.app.state.svc.access.redeem_ticket(ticket)
    return await principal_of(request)


@router.post("/v1/events/ticket", status_code=201)
async def events_ticket(
    who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    """A ticket for `GET /v1/events?ticket=…` as this token, valid for a minute (only to open
    the stream: an open stream stays open while the token is valid)."""
    ticket, expires = await svc.access.issue_ticket(who)
    return JSON({"ticket": ticket, "expires_at": iso(expires)}, status_code=201)


@router.get("/v1/events")
async def events(
    request: Request,
    space: str | None = Query(None, max_length=64),
    job: str | None = Query(None, max_length=26),
    run: str | None = Query(None, max_length=26),
    site: str | None = Query(None, max_length=64),
    after: int | None = Query(None, ge=0, le=MAX_ID, description="Resume after this event id."),
    who: Principal = Depends(caller),
    svc: Service = Depends(service),
) -> EventSourceResponse:
    """Each event: `id` (resume with Last-Event-ID), `event: run`, data = the transition.

    Open streams are limited per token and in all (429/503 with Retry-After). A stream ends
    when its token is revoked or its roles change (within GNOMON_TOKEN_CACHE_S + 1 s), after
    a last `event: closed`."""
    resume = request.headers.get("last-event-id", "")
    if after is None and resume.isdigit() and int(resume) <= MAX_ID:
        after = int(resume)
    release = slot(svc, request, who)
    try:
        # "From now" is fixed before the answer starts, so nothing after it can be missed.
        feed = await svc.events.open_for(
            who,
            space=space,
            after=after,
            job_id=job,
            run_id=run,
            site=site,
            check=caller_check(svc, request, who, "ticket" in request.query_params),
        )
    except BaseException:
        release()
        raise

    async def stream() -> AsyncIterator[dict[str, str]]:
        try:
            async for row in feed:
                data = orjson.dumps(present.event(row), option=orjson.OPT_NON_STR_KEYS).decode()
                yield {"id": str(row["id"]), "event": "run", "data": data}
            yield {"event": "closed", "data": CLOSED}
        finally:
            feed.close()

    def done() -> None:
        feed.close()
        release()

    return Stream(stream(), done)
