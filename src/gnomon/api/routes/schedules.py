"""/v1/schedules: change, delete, upcoming fire times, slots not run, backfill."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import FireStatus, Principal
from gnomon.service import Service
from gnomon.specs import BackfillSpec, SchedulePatch

router = APIRouter(tags=["schedules"], responses=schemas.ERRORS)


@router.get("/v1/schedules", response_model=schemas.SchedulePage)
async def list_schedules(
    job: str | None = Query(None, max_length=26),
    space: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=26),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    items, nxt = await svc.schedules.list(who, job_id=job, space=space, cursor=cursor, limit=limit)
    return JSON(present.page(items, nxt, present.schedule))


@router.get("/v1/schedules/{schedule_id}", response_model=schemas.Schedule)
async def get_schedule(
    schedule_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.schedule(await svc.schedules.get(who, schedule_id)))


@router.patch("/v1/schedules/{schedule_id}", response_model=schemas.Schedule)
async def update_schedule(
    schedule_id: str,
    patch: SchedulePatch,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    return JSON(present.schedule(await svc.schedules.update(who, schedule_id, patch)))


@router.delete("/v1/schedules/{schedule_id}", status_code=204)
async def delete_schedule(
    schedule_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> Response:
    await svc.schedules.delete(who, schedule_id)
    return present.no_content()


@router.post(
    "/v1/schedules/{schedule_id}/backfill",
    status_code=201,
    response_model=schemas.Backfill,
    responses={200: {"model": schemas.Backfill, "description": "A dry run: nothing queued."}},
)
async def backfill(
    schedule_id: str,
    spec: BackfillSpec,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Run the schedule's slots in [start, end) now; slots that already have a run are left
    alone, so a backfill can be repeated safely. `dry_run` lists the slots only."""
    out = await svc.schedules.backfill(who, schedule_id, spec)
    body = {**out, "times": [present.iso(t) for t in out["times"]]}
    return JSON(body, status_code=200 if spec.dry_run else 201)


@router.get("/v1/schedules/{schedule_id}/next", response_model=schemas.NextTimes)
async def next_fire_times(
    schedule_id: str,
    n: int = Query(10, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    row = await svc.schedules.get(who, schedule_id)
    times = await svc.schedules.upcoming(who, schedule_id, n)
    return JSON(
        {
            "schedule_id": schedule_id,
            "timezone": row["timezone"],
            "times": [present.iso(t.timestamp()) for t in times],
        }
    )


@router.get("/v1/schedules/{schedule_id}/fires", response_model=schemas.Fires)
async def fires(
    schedule_id: str,
    status: FireStatus | None = None,
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Slots that did not become runs: missed (older than the catch-up window), coalesced
    (folded into a later slot) or skipped (overlap=skip/buffer_one)."""
    rows = await svc.schedules.fires(who, schedule_id, status.value if status else None, limit)
    return JSON({"items": [present.fire(r) for r in rows]})
