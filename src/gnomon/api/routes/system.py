"""Health, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response

from gnomon.api.deps import principal_of, service
from gnomon.api.present import JSON
from gnomon.service import Service

router = APIRouter(tags=["system"])


@router.get("/healthz")
async def healthz() -> JSON:
    return JSON({"status": "ok"})


@router.get("/readyz")
async def readyz(svc: Service = Depends(service)) -> JSON:
    try:
        current = await svc.db.current_revision()
    except Exception as exc:
        return JSON({"status": "unavailable", "reason": f"database: {exc}"}, status_code=503)
    if fault := await svc.db.probe_write():
        return JSON({"status": "unavailable", "reason": f"database: {fault}"}, status_code=503)
    head = svc.db.head_revision()
    if current != head:
        return JSON(
            {
                "status": "unavailable",
                "reason": f"schema at {current}, needs {head}: run `gnomon db upgrade`",
            },
            status_code=503,
        )
    return JSON({"status": "ready", "schema": current})


@router.get("/metrics")
async def metrics(request: Request, svc: Service = Depends(service)) -> Response:
    if not svc.settings.metrics_public:
        await principal_of(request)
    return Response(await svc.metrics.render(svc.db, svc.stats), media_type=CONTENT_TYPE_LATEST)
