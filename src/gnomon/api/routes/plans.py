"""/v1/plans: generate, keep, revise, compare and dispatch instrument plans; /v1/policies."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Query
from starlette.responses import PlainTextResponse

from gnomon.api import schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON, iso
from gnomon.domain import Principal
from gnomon.errors import Invalid
from gnomon.plans import policy as policies
from gnomon.plans.requests import DispatchSpec, PlanRevision, PlanSpec
from gnomon.service import Service

router = APIRouter(tags=["plans"], responses=schemas.ERRORS)


def block(b: dict[str, Any]) -> dict[str, Any]:
    return {**b, "t0": iso(b["t0"]), "t1": iso(b["t1"])}


def plan(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "space": row["space"],
        "policy": row["policy"],
        "t0": iso(row["t0"]),
        "t1": iso(row["t1"]),
        "parent_id": row["parent_id"],
        "revision": row["revision"],
        "verified": row["verified"],
        "verification": row["verification"],
        "dispatches": [{**d, "at": iso(d["at"])} for d in row["dispatches"]],
        "created_at": iso(row["created_at"]),
    }
    if "blocks" in row:
        out["config"] = row["config"]
        out["blocks"] = [block(b) for b in row["blocks"]]
        out["commands"] = row["commands"]
    else:
        out["verification"] = {k: v for k, v in row["verification"].items() if k != "problems"}
    return out


@router.get("/v1/policies")
async def list_policies(who: Principal = Depends(principal)) -> JSON:
    items = [{"name": n, "defaults": policies.get(n).defaults()} for n in policies.names()]
    return JSON({"items": items})


@router.post("/v1/plans", status_code=201)
async def create_plan(
    spec: PlanSpec, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(plan(await svc.plans.create(who, spec)), status_code=201)


@router.get("/v1/plans")
async def list_plans(
    space: str | None = Query(None, max_length=64),
    parent: str | None = Query(None, max_length=26, description="Revisions of this plan."),
    cursor: str | None = Query(None, max_length=26),
    limit: int = Query(100, ge=1, le=1000),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    items, nxt = await svc.plans.list(
        who, space=space, parent_id=parent, cursor=cursor, limit=limit
    )
    return JSON({"items": [plan(i) for i in items], "next_cursor": nxt})


@router.get("/v1/plans/{plan_id}")
async def get_plan(
    plan_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(plan(await svc.plans.get(who, plan_id)))


@router.get("/v1/plans/{plan_id}/commands", response_class=PlainTextResponse)
async def plan_commands(
    plan_id: str, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> PlainTextResponse:
    return PlainTextResponse((await svc.plans.get(who, plan_id))["commands"])


@router.post("/v1/plans/{plan_id}/revisions", status_code=201)
async def revise_plan(
    plan_id: str,
    rev: PlanRevision | None = Body(None),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    made = await svc.plans.revise(who, plan_id, rev or PlanRevision())
    return JSON(plan(made), status_code=201)


def _diff(d: dict[str, Any]) -> dict[str, Any]:
    return {
        **d,
        "added": [block(b) for b in d["added"]],
        "removed": [block(b) for b in d["removed"]],
        "moved": [{"from": block(m["from"]), "to": block(m["to"])} for m in d["moved"]],
    }


@router.get("/v1/plans/{plan_id}/diff/{other_id}")
async def diff_plans(
    plan_id: str,
    other_id: str,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """How `other_id` differs from `plan_id`: blocks added, removed and moved."""
    return JSON(_diff(await svc.plans.diff(who, plan_id, other_id)))


@router.get("/v1/plans/{plan_id}/diff")
async def diff_against(
    plan_id: str,
    against: str | None = Query(None, max_length=26, description="Default: the parent."),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """How this plan differs from `against` (by default the plan it was revised from)."""
    if against is None:
        parent = (await svc.plans.get(who, plan_id))["parent_id"]
        if parent is None:
            raise Invalid("against", "this plan has no parent; name the plan to compare with")
        against = parent
    return JSON(_diff(await svc.plans.diff(who, against, plan_id)))


@router.post(
    "/v1/plans/{plan_id}/dispatch",
    status_code=201,
    responses={200: {"description": "Dispatched to that target before: nothing queued."}},
)
async def dispatch_plan(
    plan_id: str,
    spec: DispatchSpec,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Queue a verified plan at a site or a job, once per target: 201 with the runs queued;
    a plan dispatched to that target before answers 200 with that dispatch (`created`
    false) and queues nothing."""
    done = await svc.plans.dispatch(who, plan_id, spec)
    where = f"site {done['site']}" if done["site"] else f"job {done['job_id']}"
    runs = f"{len(done['run_ids'])} run{'s' if len(done['run_ids']) != 1 else ''}"
    if done["created"]:
        message = f"dispatched plan {plan_id} to {where}: {runs}"
    else:
        message = (
            f"plan {plan_id} was dispatched to {where} already, at {iso(done['at'])} "
            f"({runs}); nothing new was queued"
        )
    body = {**done, "at": iso(done["at"]), "message": message}
    return JSON(body, status_code=201 if done["created"] else 200)
