"""Runs: submit (group-committed), read, cancel, claim, settle, reap lost ones."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from gnomon.domain import (
    FINAL_STATES,
    HELD_STATES,
    Principal,
    RetryPolicy,
    Role,
    RunState,
    merge_params,
    retry_policy,
    should_retry,
)
from gnomon.errors import Conflict
from gnomon.ids import new_ids
from gnomon.service import executors, ledger, reads
from gnomon.service.access import require
from gnomon.service.commits import GroupCommit
from gnomon.specs import RunRequest
from gnomon.store import events as event_store
from gnomon.store import runs as store
from gnomon.store._sql import Rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from gnomon.service import Service

log = structlog.get_logger(__name__)

HELD = tuple(s.value for s in HELD_STATES)
FINAL = frozenset(s.value for s in FINAL_STATES)


def new_run(
    run_id: str,
    job: dict[str, Any],
    params: dict[str, Any] | None,
    now: float,
    *,
    not_before: float | None = None,
    schedule_id: str | None = None,
    scheduled_for: float | None = None,
    state: str = "queued",
) -> dict[str, Any]:
    """A fresh run row for `job` (attempt 1)."""
    return {
        "id": run_id,
        "job_id": job["id"],
        "space": job["space"],
        "executor": job["executor"],
        "schedule_id": schedule_id,
        "scheduled_for": scheduled_for,
        "state": state,
        "status": None,
        "eta_s": None,
        "attempt": 1,
        "max_attempts": job["retry"]["max_attempts"],
        "params": merge_params(job["params"], params),
        "timeout_s": job["timeout_s"],
        "not_before": now if not_before is None else not_before,
        "exit_code": None,
        "message": None,
        "external_id": None,
        "output": "",
        "output_size": 0,
        "worker_id": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "created_at": now,
        "claimed_at": None,
        "started_at": None,
        "finished_at": None,
        "updated_at": now,
    }


def settle(
    run: dict[str, Any], outcome: RunState, policy: RetryPolicy, now: float, **fields: Any
) -> dict[str, Any]:
    """The change that ends an attempt: final, or back to queued for the next attempt."""
    change: dict[str, Any] = {"id": run["id"], "updated_at": now, **fields}
    attempt = run["attempt"]
    if (
        outcome != RunState.cancelled
        and not run.get("cancel_requested")
        and should_retry(policy, outcome, attempt)
    ):
        nxt = attempt + 1
        change.update(
            state=RunState.queued.value,
            attempt=nxt,
            not_before=now + policy.delay_before(nxt),
            worker_id=None,
            lease_expires_at=None,
            finished_at=None,
        )
        change["_states"] = [(outcome.value, attempt), (RunState.queued.value, nxt)]
    else:
        change.update(state=outcome.value, finished_at=now, lease_expires_at=None)
    return change


class Runs:
    def __init__(self, svc: Service):
        self.svc = svc
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
        await self.commits.add((store.new_rows(rows), job["executor"]))
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
        job = await self.svc.jobs.cached(who, job_id, Role.developer)
        if job["executor"].startswith("site:"):
            await self.svc.reservations.check(who, job["executor"][5:], owners=owners)
        now = time.time()
        rows = [
            new_run(run_id, job, r.params, now, not_before=r.at.timestamp() if r.at else None)
            for run_id, r in zip(new_ids(len(requests)), requests, strict=True)
        ]
        return job, rows

    async def write_in(self, conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
        """Insert runs from `prepare` with their first events, in the caller's transaction;
        `announce` them once it has committed."""
        await store.insert(conn, rows)
        events = [ledger.event_for(r, r["state"], r["created_at"]) for r in rows]
        await event_store.append(conn, events)

    def announce(self, rows: Sequence[dict[str, Any]]) -> None:
        """Wake the executors of runs written by `write_in`, and the event streams."""
        self.svc.signals.runs_queued.fire({r["executor"] for r in rows})
        self.svc.signals.events.fire()

    async def submit_many(
        self, who: Principal, job_id: str, requests: Sequence[RunRequest]
    ) -> list[str]:
        """Like `submit`, for big batches: the runs are built as one template and its
        variations (id, params, not_before), never as a row each; returns their ids."""
        job = await self.svc.jobs.cached(who, job_id, Role.developer)
        if job["executor"].startswith("site:"):
            await self.svc.reservations.check(who, job["executor"][5:])
        now = time.time()
        ids = new_ids(len(requests))
        defaults = job["params"]
        rows = store.new_rows_like(
            new_run("", job, None, now),
            ids,
            [merge_params(defaults, r.params) for r in requests],
            [r.at.timestamp() if r.at else now for r in requests],
        )
        await self.commits.add((rows, job["executor"]))
        return ids

    async def _write_new(self, parts: Sequence[tuple[Rows, str]]) -> None:
        """Insert new runs with their first events, in one transaction; wake their executors."""
        await ledger.record_new(self.svc.db, Rows.join([rows for rows, _ in parts]))
        self.svc.signals.runs_queued.fire({executor for _, executor in parts})
        self.svc.signals.events.fire()

    # --- read -----------------------------------------------------------------------------

    async def get(self, who: Principal, run_id: str, *, output: bool = False) -> dict[str, Any]:
        run = await reads.one(self.svc, store.get, run_id, "run", who, output=output)
        return executors.annotate(self.svc.settings, run)

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
            self.svc,
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
        return [executors.annotate(self.svc.settings, r) for r in items], nxt

    async def history(self, who: Principal, run_id: str) -> list[dict[str, Any]]:
        await self.get(who, run_id)
        async with self.svc.db.read() as conn:
            return await event_store.for_run(conn, run_id)

    # --- cancel ---------------------------------------------------------------------------

    async def cancel(self, who: Principal, run_id: str) -> dict[str, Any]:
        run = await self.get(who, run_id)
        require(who, run["space"], Role.developer)
        now = time.time()
        if run["state"] in ("pending", "queued"):
            done = await self.apply(
                [
                    {
                        "id": run_id,
                        "state": "cancelled",
                        "finished_at": now,
                        "updated_at": now,
                        "message": f"cancelled by {who.name}",
                    }
                ],
                from_states=("pending", "queued"),
            )
            run = await self.get(who, run_id)
            if done:
                return run
        if run["state"] in HELD:
            async with self.svc.db.write() as conn:
                await store.request_cancel(conn, run_id, now)
            for hook in self.svc.cancel_hooks:
                hook(run_id)
            return await self.get(who, run_id)
        raise Conflict(f"run '{run_id}' already ended ({run['state']})")

    # --- execution side ------------------------------------------------------------------

    async def claim(
        self,
        executors: Sequence[str],
        lanes: Sequence[tuple[bool | None, int]],
        worker_id: str,
    ) -> tuple[list[dict[str, Any]], float | None]:
        """Claim due runs (see store.runs.claim for lanes).

        Returns (claimed runs, when the next queued run becomes due if none is due now).
        """
        now = time.time()
        async with self.svc.db.read() as conn:
            due = await store.next_not_before(conn, executors)
        if due is None or due > now:
            return [], due
        async with self.svc.db.write() as conn:
            claimed = await store.claim(
                conn,
                executors=executors,
                lanes=lanes,
                worker_id=worker_id,
                lease_until=now + self.svc.settings.lease_s,
                now=now,
            )
            await event_store.append(conn, [ledger.event_for(r, "claimed", now) for r in claimed])
        if claimed:
            self.svc.signals.events.fire()
        return claimed, None

    async def apply(
        self,
        changes: Sequence[dict[str, Any]],
        *,
        from_states: Sequence[str],
        worker_id: str | None = None,
    ) -> list[dict[str, Any]]:
        """Write run changes with their events; release buffered runs whose turn came."""
        if not changes:
            return []
        async with self.svc.db.write() as conn:
            done = await ledger.move(conn, changes, from_states=from_states, worker_id=worker_id)
            released = await self.release_buffered(conn, done)
        self.svc.signals.events.fire()
        if released:
            self.svc.signals.runs_queued.fire()
        elif requeued := {r["executor"] for r in done if r["state"] == "queued"}:
            self.svc.signals.runs_queued.fire(requeued)
        return done

    async def release_buffered(self, conn: Any, done: Sequence[dict[str, Any]]) -> int:
        """Queue the run each `buffer_one` schedule kept pending, once its active run in `done`
        has ended (in the caller's transaction); returns how many were queued."""
        sids = sorted({r["schedule_id"] for r in done if r["schedule_id"] and r["state"] in FINAL})
        if not sids:
            return 0
        now = time.time()
        waiting = await store.buffered_to_release(conn, sids)
        moved = await ledger.move(
            conn,
            [
                {"id": r["id"], "state": "queued", "not_before": now, "updated_at": now}
                for r in waiting
            ],
            from_states=("pending",),
        )
        return len(moved)

    async def write_output(self, tails: Sequence[dict[str, Any]]) -> None:
        """Store the kept tail of live output: [{id, output, output_size}]."""
        if tails:
            async with self.svc.db.write() as conn:
                await store.write_output(conn, tails)
            self.svc.signals.events.fire()

    async def heartbeat(self, worker_id: str) -> list[str]:
        now = time.time()
        async with self.svc.db.write() as conn:
            return await store.heartbeat(conn, worker_id, now + self.svc.settings.lease_s, now)

    async def reap_expired(self, limit: int = 1000) -> int:
        """Runs whose worker stopped heartbeating become lost (or cancelled), then retry."""
        now = time.time()
        async with self.svc.db.write() as conn:
            expired = await store.expired(conn, now, limit)
            changes = [
                settle(
                    r,
                    RunState.cancelled if r["cancel_requested"] else RunState.lost,
                    retry_policy(r["retry"]),
                    now,
                    message="lease expired: the worker holding this run stopped heartbeating",
                )
                for r in expired
            ]
            done = await ledger.move(conn, changes, from_states=HELD)
            await self.release_buffered(conn, done)
        if done:
            log.warning("runs lost", count=len(done))
            self.svc.signals.events.fire()
            self.svc.signals.runs_queued.fire()
        return len(done)
