"""/v1/apps: execution contexts for jobs."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query
from starlette.responses import Response

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import Principal
from gnomon.service import Service
from gnomon.specs import AppSpec

router = APIRouter(tags=["apps"], responses=schemas.ERRORS)


@router.post("/v1/apps", status_code=201, response_model=schemas.App)
async def register_app(
    spec: AppSpec, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.app(await svc.apps.create(who, spec)), status_code=201)


@router.get("/v1/apps", response_model=schemas.AppPage)
async def list_apps(
    space: str | None = Query(None, max_length=64),
    cursor: str | None = Query(None, max_length=36),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    items, nxt = await svc.apps.list(who, space=space, cursor=cursor, limit=limit)
    return JSON(present.page(items, nxt, present.app))


@router.get("/v1/apps/{app_id}", response_model=schemas.App)
async def get_app(
    app_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.app(await svc.apps.get(who, app_id)))


@router.delete("/v1/apps/{app_id}", status_code=204)
async def delete_app(
    app_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> Response:
    await svc.apps.delete(who, app_id)
    return present.no_content()
