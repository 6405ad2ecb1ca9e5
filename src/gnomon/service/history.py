"""A job's history by numbered page, and the state a job takes from its latest run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from gnomon.domain import Principal, RunState
from gnomon.errors import NotFound
from gnomon.store import history as store

if TYPE_CHECKING:
    from gnomon.service import Service

PAGE_MAX = 5000


class History:
    def __init__(self, svc: Service):
        self.svc = svc

    async def schedule_of(self, who: Principal, job_id: str, schedule_id: str) -> dict[str, Any]:
        """One of the job's live schedules; NotFound also when it belongs to another job."""
        job = await self.svc.jobs.get(who, job_id)
        row = await self.svc.schedules.get(who, schedule_id)
        if row["job_id"] != job["id"]:
            raise NotFound(f"schedule '{schedule_id}' not found for job '{job_id}'")
        return row

    async def page(
        self,
        who: Principal,
        job_id: str,
        *,
        schedule_id: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], int]:
        """A page of the job's runs (of one of its schedules, if given), in the order they
        start; and how many there are in all. A schedule's run is not there before its slot
        (runs are made a little ahead of it)."""
        if schedule_id is None:
            await self.svc.jobs.get(who, job_id)
        else:
            await self.schedule_of(who, job_id, schedule_id)
        async with self.svc.db.read() as conn:
            return await store.page(
                conn,
                job_id=job_id,
                schedule_id=schedule_id,
                offset=max(0, offset),
                limit=max(1, min(limit, PAGE_MAX)),
                now=time.time(),
            )

    async def job_states(self, job_ids: list[str]) -> dict[str, RunState | None]:
        """Each job's state: that of its latest run (a schedule's from its slot on), or None
        when it never ran. Callers have read the jobs already (and checked access to them)."""
        async with self.svc.db.read() as conn:
            latest = await store.latest(conn, job_ids, now=time.time())
        return {j: RunState(latest[j]["state"]) if j in latest else None for j in job_ids}
