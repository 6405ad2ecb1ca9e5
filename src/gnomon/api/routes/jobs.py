"""/v1/jobs, job runs and job schedules."""

from __future__ import annotations

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import Response

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import Principal
from gnomon.service import Service
from gnomon.specs import JobPatch, JobSpec, RunBatch, RunRequest, ScheduleSpec

router = APIRouter(tags=["jobs"], responses=schemas.ERRORS)


@router.post("/v1/jobs", status_code=201, response_model=schemas.Job)
async def create_job(
    spec: JobSpec, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.job(await svc.jobs.create(who, spec)), status_code=201)


@router.get("/v1/jobs", response_model=schemas.JobPage)
async def list_jobs(
    space: str | None = Query(None, max_length=64),
    name: str | None = Query(None, max_length=200),
    q: str | None = Query(None, max_length=200, description="Search in names."),
    executor: str | None = Query(None, max_length=80),
    cursor: str | None = Query(None, max_length=26),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    items, nxt = await svc.jobs.list(
        who, space=space, name=name, search=q, executor=executor, cursor=cursor, limit=limit
    )
    return JSON(present.page(items, nxt, present.job))


@router.get("/v1/jobs/{job_id}", response_model=schemas.Job)
async def get_job(
    job_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.job(await svc.jobs.get(who, job_id)))


@router.patch("/v1/jobs/{job_id}", response_model=schemas.Job)
async def update_job(
    job_id: str,
    patch: JobPatch,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    return JSON(present.job(await svc.jobs.update(who, job_id, patch)))


@router.delete("/v1/jobs/{job_id}", status_code=204)
async def delete_job(
    job_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> Response:
    await svc.jobs.delete(who, job_id)
    return present.no_content()


@router.post("/v1/jobs/{job_id}/runs", status_code=201, tags=["runs"], response_model=schemas.Run)
async def run_job(
    job_id: str,
    req: RunRequest | None = Body(None),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    rows = await svc.runs.submit(who, job_id, [req or RunRequest()])
    return JSON(present.run(rows[0]), status_code=201)


@router.post("/v1/runs:batch", status_code=201, tags=["runs"], response_model=schemas.RunIds)
async def run_batch(
    batch: RunBatch, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    ids = await svc.runs.submit_many(who, batch.job, batch.runs)
    return JSON({"ids": ids}, status_code=201)


@router.post(
    "/v1/jobs/{job_id}/schedules",
    status_code=201,
    tags=["schedules"],
    response_model=schemas.Schedule,
)
async def create_schedule(
    job_id: str,
    spec: ScheduleSpec,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    return JSON(present.schedule(await svc.schedules.create(who, job_id, spec)), status_code=201)


@router.get("/v1/jobs/{job_id}/schedules", tags=["schedules"], response_model=schemas.SchedulePage)
async def job_schedules(
    job_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    await svc.jobs.get(who, job_id)
    items, nxt = await svc.schedules.list(who, job_id=job_id, limit=1000)
    return JSON(present.page(items, nxt, present.schedule))
