"""The dispatcher: claims due runs in batches, hands them to executors, reports back.

Transitions are buffered and written in one transaction per flush (a run that starts and ends
between two flushes is written once); leases are renewed for everything held with one
statement per heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

import structlog
from ulid import ULID

from gnomon.abc import Attempt, Executor, Outcome, OutputSink
from gnomon.config import Settings
from gnomon.domain import RunChange, clip_output, retry_policy, settle
from gnomon.service.execution import Claimed, Execution
from gnomon.service.signals import Signals
from gnomon.vocabulary import HELD_STATES, RunState

log = structlog.get_logger(__name__)

FLUSH_DELAY_S = 0.002
NOTE_FIELDS = ("external_id", "status")


class TailBuffer(OutputSink):
    """Keeps the last `limit` bytes of an attempt's output and how many were written."""

    def __init__(self, limit: int):
        self.limit = limit
        self.data = bytearray()
        self.total = 0
        self.dirty = False

    def write(self, data: bytes) -> None:
        self.data += data
        if len(self.data) > self.limit:
            del self.data[: len(self.data) - self.limit]
        self.total += len(data)
        self.dirty = True

    def text(self) -> str:
        return bytes(clip_output(self.data, self.limit)).decode("utf-8", errors="replace")


class Dispatcher:
    def __init__(
        self,
        execution: Execution,
        settings: Settings,
        signals: Signals,
        executors: Sequence[Executor],
    ):
        self.execution = execution
        self.settings = settings
        self.executors = {e.name: e for e in executors}
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{ULID()}"
        self.inflight: dict[str, tuple[Attempt, TailBuffer]] = {}
        self._changes: dict[str, RunChange] = {}
        self._flush_wake = asyncio.Event()
        self._flush_lock = asyncio.Lock()  # held while a batch of changes is being written
        self._room = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._work: set[asyncio.Task[Any]] = set()
        self._stopping = False
        execution.cancel_hooks.append(self._cancel_local)
        self._queued = signals.runs_queued.subscribe(self.executors)

    def start(self) -> None:
        for loop in (self._claim_loop, self._flush_loop, self._heartbeat_loop, self._output_loop):
            self._tasks.append(asyncio.create_task(loop(), name=f"gnomon-{loop.__name__}"))

    async def stop(self) -> None:
        """Stop claiming; end in-flight attempts as lost (they retry per policy); flush."""
        self._stopping = True
        claim = self._tasks[0] if self._tasks else None
        if claim:
            claim.cancel()
            await asyncio.gather(claim, return_exceptions=True)
        for task in list(self._work):
            task.cancel()
        await asyncio.gather(*self._work, return_exceptions=True)
        # Never cancel a flush midway: the changes it took (the lost attempts just settled)
        # would be dropped and their runs left `running` until the lease ran out.
        async with self._flush_lock:
            for task in self._tasks[1:]:
                task.cancel()
        await asyncio.gather(*self._tasks[1:], return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._flush()
        for e in self.executors.values():
            await e.close()

    # --- claiming -------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        """Claim while there is room: shell commands up to `workers` processes, light work
        (noop, http) up to `max_inflight`; sleep until the next run is due otherwise."""
        names = list(self.executors)
        while True:
            armed = self._queued.armed()  # a run queued while claiming is not missed
            try:
                claimed, asked = await self._claim(names)
            except Exception:
                log.exception("claim failed")
                await asyncio.sleep(1)
                continue
            if not asked:  # no room: wait for an attempt to end
                self._room.clear()
                await self._room.wait()
                continue
            for run in claimed.runs:
                self._start(run)
            if claimed.taken:
                continue  # more may be due
            # Nothing more claimable: wait for new work, an attempt to end (work held back by
            # a full lane), the next `not_before`, or the poll interval.
            wait = self.settings.poll_s
            if claimed.due is not None and claimed.due > time.time():
                wait = min(wait, claimed.due - time.time())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(armed.wait(), wait)

    def _lanes(self) -> tuple[list[tuple[bool | None, int]], int]:
        """How many runs to claim: shell commands up to `workers` processes, light work
        (noop, http) up to `max_inflight`; and how many in all."""
        batch = self.settings.claim_batch
        room = self.settings.max_inflight - len(self.inflight)
        if all(e.remote for e in self.executors.values()):  # no local processes
            lanes: list[tuple[bool | None, int]] = [(None, min(batch, room))]
        else:
            shells = sum(1 for a, _ in self.inflight.values() if a.action["type"] == "shell")
            lanes = [
                (True, min(batch, self.settings.workers - shells)),
                (False, min(batch, room + shells)),
            ]
        return lanes, sum(limit for _, limit in lanes if limit > 0)

    async def _claim(self, names: list[str]) -> tuple[Claimed, int]:
        """One claim with the room there is; and how many runs it asked for (0: no room,
        nothing done). Where the database has one writer (SQLite), the claim carries the
        changes waiting to be written and settles no-ops (one commit for all); elsewhere
        claims and flushes overlap on connections of their own."""
        if not self.execution.one_writer:
            lanes, asked = self._lanes()
            if not asked:
                return Claimed([], 0, None), 0
            return await self.execution.claim(names, lanes, self.worker_id), asked
        async with self._flush_lock:
            lanes, asked = self._lanes()
            if not asked:
                return Claimed([], 0, None), 0
            changes, self._changes = self._changes, {}
            try:
                claimed = await self.execution.claim(
                    names,
                    lanes,
                    self.worker_id,
                    changes=list(changes.values()),
                    settle_now=self._settle_now,
                )
            except BaseException:
                for run_id, change in changes.items():  # keep them for the next try
                    self._changes.setdefault(run_id, change)
                self._flush_wake.set()
                raise
            return claimed, asked

    def _settle_now(self, run: dict[str, Any]) -> RunChange | None:
        """The whole attempt of a run whose outcome needs no work (a no-op), as one change:
        written with its claim."""
        attempt = Attempt(
            run=run,
            action=run["action"],
            params=run["params"] or {},
            timeout_s=run["timeout_s"],
            output=TailBuffer(0),
        )
        outcome = self.executors[run["executor"]].immediate(attempt)
        if outcome is None:
            return None
        now = time.time()
        start = RunChange(run["id"], now, (RunState.running,), {"started_at": now}, run["attempt"])
        return start.then(_ended(run, outcome, now, "", 0))

    def _start(self, run: dict[str, Any]) -> None:
        tail = TailBuffer(self.settings.output_limit_bytes)
        attempt = Attempt(
            run=run,
            action=run["action"],
            params=run["params"] or {},
            timeout_s=run["timeout_s"],
            output=tail,
            noted=lambda fields, run_id=run["id"]: self._note(run_id, fields),
        )
        self.inflight[run["id"]] = (attempt, tail)
        now = time.time()
        self._changes[run["id"]] = RunChange(
            run["id"], now, (RunState.running,), {"started_at": now}, run["attempt"]
        )
        self._flush_wake.set()
        outcome = self.executors[run["executor"]].immediate(attempt)
        if outcome is not None:  # nothing to wait for (a no-op): settle it now
            self._finish(run, outcome, tail)
            return
        task = asyncio.create_task(self._execute(attempt, tail))
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    async def _execute(self, attempt: Attempt, tail: TailBuffer) -> None:
        run = attempt.run
        executor = self.executors[run["executor"]]
        try:
            outcome = await executor.execute(attempt)
        except asyncio.CancelledError:
            outcome = Outcome(RunState.lost, message="the server stopped while this ran")
        except Exception as exc:  # an executor fault, not the work's: the attempt is lost
            log.exception("executor failed", run_id=run["id"])
            outcome = Outcome(RunState.lost, message=f"executor fault: {exc!r}")
        self._finish(run, outcome, tail)

    def _finish(self, run: dict[str, Any], outcome: Outcome, tail: TailBuffer) -> None:
        self.inflight.pop(run["id"], None)
        self._room.set()
        self._queued.fire()  # room for a queued run held back by a full lane
        now = time.time()
        change = _ended(run, outcome, now, tail.text(), tail.total)
        started = self._changes.pop(run["id"], None)
        if started is not None:  # its start or notes not written yet: write them with the end
            change = started.then(change)
        self._changes[run["id"]] = change
        self._flush_wake.set()

    def _note(self, run_id: str, fields: dict[str, Any]) -> None:
        """An executor learnt something about a running attempt (its Slurm job id…)."""
        if run_id not in self.inflight:
            return
        attempt = self.inflight[run_id][0].run["attempt"]
        noted = {k: v for k, v in fields.items() if k in NOTE_FIELDS}
        change = RunChange(run_id, time.time(), (), noted, attempt, within=HELD_STATES)
        earlier = self._changes.get(run_id)
        self._changes[run_id] = change if earlier is None else earlier.then(change)
        self._flush_wake.set()

    # --- writing back ---------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_wake.wait()
            self._flush_wake.clear()
            await asyncio.sleep(FLUSH_DELAY_S)
            try:
                await self._flush()
            except Exception:
                log.exception("flush failed; retrying")
                await asyncio.sleep(0.5)
                self._flush_wake.set()

    async def _flush(self) -> None:
        async with self._flush_lock:
            changes, self._changes = self._changes, {}
            if not changes:
                return
            try:
                await self.execution.apply(list(changes.values()), worker_id=self.worker_id)
            except Exception:
                for run_id, change in changes.items():  # keep them for the next try
                    self._changes.setdefault(run_id, change)
                raise

    async def _output_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.output_flush_s)
            tails = []
            for run_id, (_, tail) in list(self.inflight.items()):
                if tail.dirty:
                    tail.dirty = False
                    tails.append({"id": run_id, "output": tail.text(), "output_size": tail.total})
            try:
                await self.execution.write_output(tails)
            except Exception:
                log.exception("output flush failed")

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_s)
            if not self.inflight:
                continue
            try:
                for run_id in await self.execution.heartbeat(self.worker_id):
                    self._cancel_local(run_id)
            except Exception:
                log.exception("heartbeat failed")

    def _cancel_local(self, run_id: str) -> None:
        held = self.inflight.get(run_id)
        if held is not None:
            held[0].cancelled.set()


def _ended(run: dict[str, Any], outcome: Outcome, now: float, output: str, size: int) -> RunChange:
    """The change that ends the attempt with `outcome`, at its attempt: an attempt settles
    once, and only itself."""
    return settle(
        run,
        outcome.state,
        retry_policy(run["retry"]),
        now,
        exit_code=outcome.exit_code,
        message=outcome.message,
        output=output,
        output_size=size,
    )
