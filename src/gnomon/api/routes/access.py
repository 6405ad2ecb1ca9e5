"""/v1/spaces and /v1/tokens."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.responses import Response

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.domain import Principal
from gnomon.service import Service
from gnomon.specs import MemberSpec, SpaceSpec, TokenSpec

router = APIRouter(tags=["access"], responses=schemas.ERRORS)


@router.get("/v1/spaces", response_model=schemas.Spaces)
async def list_spaces(who: Principal = Depends(principal), svc: Service = Depends(service)) -> JSON:
    return JSON({"items": [present.space(s) for s in await svc.access.list_spaces(who)]})


@router.post("/v1/spaces", status_code=201, response_model=schemas.Space)
async def create_space(
    spec: SpaceSpec, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.space(await svc.access.create_space(who, spec)), status_code=201)


@router.get("/v1/spaces/{name}", response_model=schemas.Space)
async def get_space(
    name: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.space(await svc.access.get_space(who, name)))


@router.put("/v1/spaces/{name}/members/{token_id}", response_model=schemas.Space)
async def set_member(
    name: str,
    token_id: str,
    spec: MemberSpec,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    await svc.access.set_member(who, name, token_id, spec.role)
    return JSON(present.space(await svc.access.get_space(who, name)))


@router.delete("/v1/spaces/{name}/members/{token_id}", status_code=204)
async def remove_member(
    name: str,
    token_id: str,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> Response:
    await svc.access.remove_member(who, name, token_id)
    return present.no_content()


@router.post("/v1/tokens", status_code=201, response_model=schemas.NewToken)
async def create_token(
    spec: TokenSpec, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    row, secret = await svc.access.create_token(who, spec)
    return JSON({**present.token(row), "token": secret}, status_code=201)


@router.get("/v1/tokens", response_model=schemas.Tokens)
async def list_tokens(who: Principal = Depends(principal), svc: Service = Depends(service)) -> JSON:
    return JSON({"items": [present.token(t) for t in await svc.access.list_tokens(who)]})


@router.delete("/v1/tokens/{token_id}", status_code=204)
async def revoke_token(
    token_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> Response:
    await svc.access.revoke_token(who, token_id)
    return present.no_content()


@router.get("/v1/whoami")
async def whoami(who: Principal = Depends(principal)) -> JSON:
    return JSON(who.model_dump(mode="json"))
