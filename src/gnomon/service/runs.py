"""Runs: submit (group-committed), read, cancel. The execution side is service/execution.py."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from gnomon.config import Settings
from gnomon.domain import Principal, Role, cancel, merge_params, new_run
from gnomon.errors import Conflict
from gnomon.ids import new_ids
from gnomon.service import executors, reads
from gnomon.service.access import require
from gnomon.service.commits import GroupCommit
from gnomon.service.execution import Execution
from gnomon.service.signals import Signals
from gnomon.specs import RunRequest
from gnomon.store import events as event_store
from gnomon.store import ledger
from gnomon.store import runs as store
from gnomon.store._sql import Rows
from gnomon.store.db import Database
from gnomon.vocabulary import HELD_STATES, WAITING_STATES, site_of

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from gnomon.service.jobs import Jobs
    from gnomon.service.reservations import Reservations


class Runs:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        signals: Signals,
        execution: Execution,
        jobs: Jobs,
        reservations: Reservations,
    ):
        self.db = db
        self.settings = settings
        self.signals = signals
        self.execution = execution
        self.jobs = jobs
        self.reservations = reservations
        self.commits: GroupCommit[tuple[Rows, str]] = GroupCommit(self._write_new, "runs")

    # --- submit ---------------------------------------------------------------------------

    async def submit(
        self,
        who: Principal,
        job_id: str,
        requests: Sequence[RunRequest],
        *,
        owners: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """New runs of a job, durable when this returns; the runs as rows. `owners`: further
        identities a site's reservation may name for the caller (Reservations.check)."""
        job, rows = await self.prepare(who, job_id, requests, owners=owners)
        await self.commits.add((ledger.new_rows(rows), job["executor"]))
        return rows

    async def prepare(
        self,
        who: Principal,
        job_id: str,
        requests: Sequence[RunRequest],
        *,
        owners: Sequence[str] = (),
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The job and new runs of it, checked (the caller's role, a site's reservations)
        and built but not written: `submit`, or `write_in` a transaction of the caller's."""
        job = await self.jobs.cached(who, job_id, Role.developer)
        if (site := site_of(job["executor"])) is not None:
            await self.reservations.check(who, site, owners=owners)
        now = time.time()
        rows = [
            new_run(run_id, job, r.params, now, not_before=r.at.timestamp() if r.at else None)
            for run_id, r in zip(new_ids(len(requests)), requests, strict=True)
        ]
        return job, rows

    async def write_in(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert runs from `prepare` with their first events, in the caller's transaction;
        `announce` them once it has committed."""
        await ledger.insert(conn, rows)

    def announce(self, rows: Sequence[dict[str, Any]]) -> None:
        """Wake the executors of runs written by `write_in`, and the event streams."""
        self.signals.runs_queued.fire({r["executor"] for r in rows})
        self.signals.events.fire()

    async def submit_many(
        self, who: Principal, job_id: str, requests: Sequence[RunRequest]
    ) -> list[str]:
        """Like `submit`, for big batches: the runs are built as one template and its
        variations (id, params, not_before), never as a row each; returns their ids."""
        job = await self.jobs.cached(who, job_id, Role.developer)
        if (site := site_of(job["executor"])) is not None:
            await self.reservations.check(who, site)
        now = time.time()
        ids = new_ids(len(requests))
        defaults = job["params"]
        rows = ledger.new_rows_like(
            new_run("", job, None, now),
            ids,
            [merge_params(defaults, r.params) for r in requests],
            [r.at.timestamp() if r.at else now for r in requests],
        )
        await self.commits.add((rows, job["executor"]))
        return ids

    async def _write_new(self, parts: Sequence[tuple[Rows, str]]) -> None:
        """Insert new runs with their first events, in one transaction; wake their executors."""
        await ledger.insert_new(self.db, Rows.join([rows for rows, _ in parts]))
        self.signals.runs_queued.fire({executor for _, executor in parts})
        self.signals.events.fire()

    # --- read -----------------------------------------------------------------------------

    async def get(self, who: Principal, run_id: str, *, output: bool = False) -> dict[str, Any]:
        run = await reads.one(self.db, store.get, run_id, "run", who, output=output)
        return executors.annotate(self.settings, run)

    async def list(
        self,
        who: Principal,
        *,
        space: str | None = None,
        job_id: str | None = None,
        schedule_id: str | None = None,
        states: list[str] | None = None,
        executor: str | None = None,
        since: float | None = None,
        cursor: str | None = None,
        limit: int = 100,
    ) -> tuple[list[dict[str, Any]], str | None]:
        items, nxt = await reads.listing(
            self.db,
            store.list_,
            who,
            space=space,
            cursor=cursor,
            limit=limit,
            job_id=job_id,
            schedule_id=schedule_id,
            states=states,
            executor=executor,
            # Times are shown to the microsecond: "since" a shown time includes that run.
            since=None if since is None else since - 5e-7,
        )
        return [executors.annotate(self.settings, r) for r in items], nxt

    async def history(self, who: Principal, run_id: str) -> list[dict[str, Any]]:
        await self.get(who, run_id)
        async with self.db.read() as conn:
            return await event_store.for_run(conn, run_id)

    # --- cancel ---------------------------------------------------------------------------

    async def cancel(self, who: Principal, run_id: str) -> dict[str, Any]:
        run = await self.get(who, run_id)
        require(who, run["space"], Role.developer)
        now = time.time()
        if run["state"] in WAITING_STATES:
            done = await self.execution.apply([cancel(run_id, now, f"cancelled by {who.name}")])
            run = await self.get(who, run_id)
            if done:
                return run
        if run["state"] in HELD_STATES:
            async with self.db.write() as conn:
                await self.execution.request_cancel(conn, [run_id], now)
            return await self.get(who, run_id)
        raise Conflict(f"run '{run_id}' already ended ({run['state']})")
