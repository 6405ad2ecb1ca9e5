"""/v1/templates: the job templates of the configuration file, and triggering them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel, ConfigDict, Field

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import Principal
from gnomon.service import Service

router = APIRouter(tags=["templates"], responses=schemas.ERRORS)
NAME = Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")


class TemplateRun(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(default_factory=dict)


class TemplateList(BaseModel):
    items: list[dict[str, Any]]


@router.get("/v1/templates", response_model=TemplateList)
async def list_templates(
    who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON({"items": [svc.templates.shown(who, t) for t in svc.templates.list(who)]})


@router.get("/v1/templates/{name}")
async def get_template(
    name: str = NAME, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(svc.templates.shown(who, svc.templates.get(who, name)))


@router.post("/v1/templates/{name}/runs", status_code=201, response_model=schemas.Run)
async def trigger_template(
    body: TemplateRun,
    name: str = NAME,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    run = await svc.templates.trigger(who, name, body.params)
    return JSON(present.run(run), status_code=201)
