"""Execution: how runs are claimed, kept, stopped and settled — the side executors and the
scheduler drive. Every change goes through the store's ledger; this module adds the rules
around it (a buffered run's turn, lost leases, who hears a cancel) and wakes who waits."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import structlog

from gnomon.config import Settings
from gnomon.domain import RunChange, cancel, retry_policy, settle
from gnomon.service.signals import Signals
from gnomon.store import ledger
from gnomon.store import runs as store
from gnomon.store.db import Database
from gnomon.vocabulary import FINAL_STATES, RunState

log = structlog.get_logger(__name__)

FINAL = frozenset(s.value for s in FINAL_STATES)
BUFFERED = (RunState.pending,)
QUEUED = (RunState.queued,)
LEASE_EXPIRED = "lease expired: the worker holding this run stopped heartbeating"
WITHDRAWN = "cancelled: its schedule changed before the slot came"


SettleNow = Callable[[dict[str, Any]], RunChange | None]


class Claimed(NamedTuple):
    runs: list[dict[str, Any]]  # to execute (those settled at once left out)
    taken: int  # runs claimed, those settled at once included
    due: float | None  # when nothing was due: when the next queued run becomes due


class Execution:
    def __init__(self, db: Database, settings: Settings, signals: Signals):
        self.db = db
        self.settings = settings
        self.signals = signals
        # Executors holding runs in this process: told at once when one of theirs is to stop.
        self.cancel_hooks: list[Callable[[str], None]] = []

    @property
    def one_writer(self) -> bool:
        """Whether the database takes one writer at a time (SQLite): then fewer, larger
        transactions win; with many (PostgreSQL), transactions that overlap do."""
        return self.db.is_sqlite

    async def claim(
        self,
        executors: Sequence[str],
        lanes: Sequence[ledger.Lane],
        worker_id: str,
        *,
        changes: Sequence[RunChange] = (),
        settle_now: SettleNow | None = None,
    ) -> Claimed:
        """Claim due runs (see store.ledger.claim for lanes) in one transaction with the
        worker's pending `changes` (its settlements ride along with its claims). Claimed runs
        whose outcome `settle_now` knows without work (a no-op) are settled in the same
        transaction: claimed, running and ended in one commit.
        """
        if not changes:
            async with self.db.read() as conn:
                due = await store.next_not_before(conn, executors)
            if due is None or due > time.time():
                return Claimed([], 0, due)
        settled: list[RunChange] = []
        async with self.db.write() as conn:
            now = time.time()
            done = await ledger.move(conn, changes, worker_id=worker_id)
            claimed = await ledger.claim(
                conn,
                executors=executors,
                lanes=lanes,
                worker_id=worker_id,
                lease_until=now + self.settings.lease_s,
                now=now,
            )
            if settle_now is not None:
                settled = [c for r in claimed if (c := settle_now(r)) is not None]
                done += await ledger.move(conn, settled, worker_id=worker_id)
            released = await self.release_buffered(conn, done)
        self._wake(done, released, claimed)
        if claimed or not changes:
            ended = {c.run_id for c in settled}
            return Claimed([r for r in claimed if r["id"] not in ended], len(claimed), None)
        async with self.db.read() as conn:
            return Claimed([], 0, await store.next_not_before(conn, executors))

    async def apply(
        self, changes: Sequence[RunChange], *, worker_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Write run changes with their events; release buffered runs whose turn came."""
        if not changes:
            return []
        async with self.db.write() as conn:
            done = await ledger.move(conn, changes, worker_id=worker_id)
            released = await self.release_buffered(conn, done)
        self._wake(done, released)
        return done

    def _wake(
        self,
        done: Sequence[dict[str, Any]],
        released: int,
        claimed: Sequence[dict[str, Any]] = (),
    ) -> None:
        """Tell the event streams, and the executors of runs queued again (a retry, a
        buffered run's turn)."""
        if done or claimed:
            self.signals.events.fire()
        if released:
            self.signals.runs_queued.fire()
        elif requeued := {r["executor"] for r in done if r["state"] == RunState.queued}:
            self.signals.runs_queued.fire(requeued)

    async def release_buffered(self, conn: Any, done: Sequence[dict[str, Any]]) -> int:
        """Queue the run each `buffer_one` schedule kept pending, once its active run in `done`
        has ended (in the caller's transaction); returns how many were queued."""
        sids = sorted({r["schedule_id"] for r in done if r["schedule_id"] and r["state"] in FINAL})
        if not sids:
            return 0
        now = time.time()
        waiting = await store.buffered_to_release(conn, sids)
        turn = [
            RunChange(r["id"], now, (RunState.queued,), {"not_before": now}, within=BUFFERED)
            for r in waiting
        ]
        return len(await ledger.move(conn, turn))

    async def request_cancel(self, conn: Any, run_ids: Sequence[str], now: float) -> None:
        """Ask the workers holding these runs to stop them (in the caller's transaction): the
        executors of this process at once, others at their next heartbeat."""
        for run_id in run_ids:
            await ledger.request_cancel(conn, run_id, now)
            for hook in self.cancel_hooks:
                hook(run_id)

    async def withdraw_early(self, schedule_ids: Sequence[str], now: float) -> None:
        """Cancel runs created ahead of a slot that has not come yet (the schedule changed)."""
        if not schedule_ids:
            return
        async with self.db.read() as conn:
            waiting = await store.active_runs_of_schedules(conn, schedule_ids)
        early = [r for r in waiting if r["state"] == RunState.queued and r["scheduled_for"] > now]
        await self.apply([cancel(r["id"], now, WITHDRAWN, within=QUEUED) for r in early])

    async def write_output(self, tails: Sequence[dict[str, Any]]) -> None:
        """Store the kept tail of live output: [{id, output, output_size}]."""
        if tails:
            async with self.db.write() as conn:
                await ledger.write_output(conn, tails)
            self.signals.events.fire()

    async def heartbeat(self, worker_id: str) -> list[str]:
        now = time.time()
        async with self.db.write() as conn:
            return await ledger.heartbeat(conn, worker_id, now + self.settings.lease_s, now)

    async def reap_expired(self, limit: int = 1000) -> int:
        """Runs whose worker stopped heartbeating become lost (or cancelled), then retry."""
        now = time.time()
        async with self.db.write() as conn:
            expired = await store.expired(conn, now, limit)
            changes = [
                settle(
                    r,
                    RunState.cancelled if r["cancel_requested"] else RunState.lost,
                    retry_policy(r["retry"]),
                    now,
                    message=LEASE_EXPIRED,
                )
                for r in expired
            ]
            done = await ledger.move(conn, changes)
            await self.release_buffered(conn, done)
        if done:
            log.warning("runs lost", count=len(done))
            self.signals.events.fire()
            self.signals.runs_queued.fire()
        return len(done)
