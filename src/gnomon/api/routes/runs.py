"""/v1/runs: the ledger, logs, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Depends, Query
from starlette.responses import PlainTextResponse, StreamingResponse

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import FINAL_STATES, Principal, RunState
from gnomon.errors import Invalid
from gnomon.service import Service
from gnomon.vocabulary import WAITING_STATES

router = APIRouter(tags=["runs"], responses=schemas.ERRORS)
STATES = {s.value for s in RunState}
ENDED = {s.value for s in FINAL_STATES}


@router.get("/v1/runs", response_model=schemas.RunPage)
async def list_runs(
    job: str | None = Query(None, max_length=26),
    schedule: str | None = Query(None, max_length=26),
    state: str | None = Query(None, max_length=200, description="Comma-separated states."),
    site: str | None = Query(None, max_length=64),
    executor: str | None = Query(None, max_length=80),
    space: str | None = Query(None, max_length=64),
    since: str | None = Query(None, max_length=40, description="RFC 3339: created at or after."),
    cursor: str | None = Query(None, max_length=26),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    states = [s for s in state.split(",") if s] if state else None
    if states and (bad := [s for s in states if s not in STATES]):
        raise Invalid("state", f"unknown state {bad[0]!r}; one of {', '.join(sorted(STATES))}")
    items, nxt = await svc.runs.list(
        who,
        space=space,
        job_id=job,
        schedule_id=schedule,
        states=states,
        executor=f"site:{site}" if site else executor,
        since=present.parse_time(since, "since"),
        cursor=cursor,
        limit=limit,
    )
    return JSON(present.page(items, nxt, present.run))


@router.get("/v1/runs/{run_id}", response_model=schemas.Run)
async def get_run(
    run_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.run(await svc.runs.get(who, run_id)))


@router.get("/v1/runs/{run_id}/events", response_model=schemas.Events)
async def run_events(
    run_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON({"items": [present.event(e) for e in await svc.runs.history(who, run_id)]})


@router.post("/v1/runs/{run_id}/cancel", response_model=schemas.Run)
async def cancel_run(
    run_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.run(await svc.runs.cancel(who, run_id)))


@router.get("/v1/runs/{run_id}/log", response_class=PlainTextResponse)
async def run_log(
    run_id: str,
    follow: bool = False,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
):
    run = await svc.runs.get(who, run_id, output=True)
    if not follow:
        return PlainTextResponse(run["output"])
    return StreamingResponse(_follow(svc, who, run), media_type="text/plain; charset=utf-8")


async def _follow(svc: Service, who: Principal, run: dict) -> AsyncIterator[bytes]:
    """The log so far, then new output as it arrives, until the run ends."""
    sent = 0
    attempt = run["attempt"]
    while True:
        tail = run["output"].encode()
        size = run["output_size"]
        # A retry's row keeps the previous attempt's log until the next attempt is claimed.
        restarted = run["attempt"] != attempt and run["state"] not in WAITING_STATES
        if restarted or (run["attempt"] == attempt and size < sent):
            attempt, sent = run["attempt"], 0
            yield f"\n--- attempt {attempt} ---\n".encode()
        if size > sent:
            fresh = size - sent
            if fresh > len(tail):
                yield f"[… {fresh - len(tail)} bytes not kept …]\n".encode()
                fresh = len(tail)
            yield tail[len(tail) - fresh :]
            sent = size
        if run["state"] in ENDED:
            return
        await svc.signals.events.wait(0.25)
        await asyncio.sleep(0)
        run = await svc.runs.get(who, run["id"], output=True)
