"""/v1/events: server-sent events of run transitions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Depends, Query, Request
from sse_starlette import EventSourceResponse

from gnomon.api import present
from gnomon.api.deps import principal, service
from gnomon.domain import Principal, Role
from gnomon.service import Service
from gnomon.service.access import require
from gnomon.store import events as store

router = APIRouter(tags=["events"])


@router.get("/v1/events")
async def events(
    request: Request,
    space: str | None = Query(None, max_length=64),
    job: str | None = Query(None, max_length=26),
    run: str | None = Query(None, max_length=26),
    site: str | None = Query(None, max_length=64),
    after: int | None = Query(None, ge=0, description="Resume after this event id."),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> EventSourceResponse:
    """Each event: `id` (resume with Last-Event-ID), `event: run`, data = the transition."""
    spaces = who.visible_spaces()
    if space is not None:
        require(who, space, Role.viewer)
        spaces = [space]
    resume = request.headers.get("last-event-id")
    start = after if after is not None else (int(resume) if resume and resume.isdigit() else None)
    if start is None:
        async with svc.db.read() as conn:
            start = await store.last_id(conn)

    async def stream() -> AsyncIterator[dict]:
        last = start
        while True:
            async with svc.db.read() as conn:
                rows = await store.after(
                    conn,
                    last,
                    spaces=spaces,
                    job_id=job,
                    run_id=run,
                    executor=f"site:{site}" if site else None,
                )
            for row in rows:
                last = row["id"]
                yield {
                    "id": str(row["id"]),
                    "event": "run",
                    "data": orjson.dumps(
                        present.event(row), option=orjson.OPT_NON_STR_KEYS
                    ).decode(),
                }
            if len(rows) < 500:
                await svc.signals.events.wait(0.5)

    return EventSourceResponse(stream(), ping=15)
