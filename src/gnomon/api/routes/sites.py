"""/v1/sites: pull queues for remote agents, their reports, reservations, live updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request
from sse_starlette import EventSourceResponse
from starlette.responses import Response

from gnomon.api import present, schemas
from gnomon.api.deps import principal, service
from gnomon.api.present import JSON
from gnomon.api.streams import Stream, caller_check, slot
from gnomon.domain import Principal
from gnomon.service import Service
from gnomon.specs import SITE, ClaimSpec, HeartbeatSpec, ReportSpec, ReservationSpec

MAX_ID = 2**63 - 1
router = APIRouter(tags=["sites"], responses=schemas.ERRORS)
SitePath = Path(max_length=63, pattern=SITE, description="The site: executor `site:<name>`.")


@router.post("/v1/sites/{site}/claim", response_model=schemas.Claimed)
async def claim(
    spec: ClaimSpec,
    site: str = SitePath,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Take up to `max` due runs of the site, each delivered to exactly one agent, with a
    lease; wait up to `wait_s` for one when none is due. Keep the lease with reports or
    heartbeats."""
    runs = await svc.sites.claim(who, site, max=spec.max, wait_s=spec.wait_s, agent=spec.agent)
    return JSON({"runs": [present.claimed_run(r) for r in runs]})


@router.post("/v1/sites/{site}/heartbeat", response_model=schemas.Heartbeat)
async def heartbeat(
    spec: HeartbeatSpec,
    site: str = SitePath,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Extend every lease the agent holds; `cancel` lists its runs asked to stop."""
    beat = await svc.sites.heartbeat(who, site, spec.agent)
    return JSON({**beat, "lease_expires_at": present.iso(beat["lease_expires_at"])})


@router.post("/v1/runs/{run_id}/report", response_model=schemas.Run)
async def report(
    run_id: str,
    spec: ReportSpec,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Status, ETA, output, exit code of a run the caller's agent holds; extends its lease."""
    return JSON(present.run(await svc.sites.report(who, run_id, spec)))


@router.get("/v1/sites", response_model=schemas.Sites)
async def list_sites(who: Principal = Depends(principal), svc: Service = Depends(service)) -> JSON:
    """Every site: queue depth, runs held, agents and their last contact, current holder."""
    return JSON({"items": [present.site(s) for s in await svc.sites.view(who)]})


@router.get("/v1/sites/{site}", response_model=schemas.Site)
async def get_site(
    site: str = SitePath, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    return JSON(present.site((await svc.sites.view(who, site))[0]))


@router.post("/v1/sites/{site}/reservations", response_model=schemas.Reservation, status_code=201)
async def reserve(
    spec: ReservationSpec,
    site: str = SitePath,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    """Hold the site for a window; windows of a site never overlap (409). While it holds,
    only its owner (or an admin) may queue work for the site."""
    row = await svc.reservations.reserve(who, site, spec)
    return JSON(present.reservation(row), status_code=201)


@router.get("/v1/sites/{site}/reservations", response_model=schemas.Reservations)
async def reservations(
    site: str = SitePath,
    past: bool = Query(False, description="Include reservations that are over."),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> JSON:
    rows = await svc.reservations.listing(who, site, past=past)
    return JSON({"items": [present.reservation(r) for r in rows]})


@router.delete("/v1/sites/{site}/reservations/{reservation_id}", status_code=204)
async def unreserve(
    reservation_id: str = Path(max_length=26),
    site: str = SitePath,
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> Response:
    await svc.reservations.unreserve(who, site, reservation_id)
    return present.no_content()


@router.post("/v1/sites/{site}/key", response_model=schemas.SiteKey, status_code=201)
async def set_key(
    site: str = SitePath, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> JSON:
    """A new key for the site, replacing any; shown this once. The site's software shows it
    to the Photon Ranch face as the `X-Site-Key` header or the `key` query parameter. Needs
    the manager role in a space that uses the site, or admin."""
    row = await svc.sites.set_key(who, site)
    return JSON(present.site_key(row), status_code=201)


@router.delete("/v1/sites/{site}/key", status_code=204)
async def delete_key(
    site: str = SitePath, who: Principal = Depends(principal), svc: Service = Depends(service)
) -> Response:
    """Remove the site's key: the face's site routes are open to it again, unless keys are
    required."""
    await svc.sites.delete_key(who, site)
    return present.no_content()


@router.get("/v1/sites/{site}/events")
async def site_events(
    request: Request,
    site: str = SitePath,
    after: int | None = Query(None, ge=0, le=MAX_ID, description="Resume after this event id."),
    who: Principal = Depends(principal),
    svc: Service = Depends(service),
) -> EventSourceResponse:
    """Server-sent events, one per change of a run of the site: `event: jobs`, data
    `{"topic": "jobs", "site", "data": run}` (the run as that change left it). Limited and
    ended like /v1/events."""
    resume = request.headers.get("last-event-id", "")
    if after is None and resume.isdigit() and int(resume) <= MAX_ID:
        after = int(resume)
    check = caller_check(svc, request, who, ticket=False)
    feed = await svc.sites.changes(who, site, after, check)
    release = slot(svc, request, who)

    async def stream() -> AsyncIterator[dict[str, str]]:
        async with aclosing(feed):
            async for event, run in feed:
                data = {"topic": "jobs", "site": site, "data": present.run(run)}
                yield {
                    "id": str(event["id"]),
                    "event": "jobs",
                    "data": orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS).decode(),
                }

    return Stream(stream(), release)
