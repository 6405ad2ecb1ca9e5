"""/v1/stats: the ledger summed up, for dashboards."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import Principal
from gnomon.service import Service

router = APIRouter(tags=["stats"], responses=schemas.ERRORS)


@router.get("/v1/stats")
async def stats(
    space: str | None = Query(None, max_length=64),
    window_s: int = Query(3600, ge=60, le=7 * 86400, description="Throughput window."),
    buckets: int = Query(12, ge=1, le=288, description="Throughput buckets in the window."),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Runs by state, queue depth per executor and per site, finished runs per bucket over the
    window with the failure rate, and the latest missed schedule slots."""
    s = await svc.stats.summary(who, space=space, window_s=window_s, buckets=buckets)
    return JSON(
        {
            **s,
            "at": present.iso(s["at"]),
            "throughput": [{**b, "start": present.iso(b["start"])} for b in s["throughput"]],
            "missed": [
                {
                    "schedule_id": m["schedule_id"],
                    "job_id": m["job_id"],
                    "space": m["space"],
                    **present.fire(m),
                }
                for m in s["missed"]
            ],
        }
    )
