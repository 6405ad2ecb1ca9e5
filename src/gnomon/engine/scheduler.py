"""The scheduler: sleeps until the next slot is due, fires due schedules in batches, turns
runs whose lease expired into lost ones, and folds the run tallies /v1/stats reads."""

from __future__ import annotations

import asyncio
import time

import structlog

from gnomon.service import Service

log = structlog.get_logger(__name__)


class Scheduler:
    def __init__(self, svc: Service):
        self.svc = svc
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="gnomon-scheduler")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _loop(self) -> None:
        settings = self.svc.settings
        reap_every = max(0.2, min(settings.lease_s / 4, 5.0))
        last_reap = 0.0
        while True:
            try:
                # A read first: a wake-up with nothing due (a schedule was created, say) must
                # not take the write lock.
                nxt = await self.svc.schedules.next_due_at()
                if nxt is not None and nxt <= time.time():
                    handled, _ = await self.svc.schedules.fire_due()
                    if handled >= settings.scheduler_batch:
                        continue  # more are due: no sleep
                    nxt = await self.svc.schedules.next_due_at()
                now = time.time()
                if now - last_reap >= reap_every:
                    last_reap = now
                    await self.svc.execution.reap_expired()
                    await self.svc.stats.fold(now)  # leaves a summary few deltas to sum
                now = time.time()
                delay = settings.scheduler_max_sleep_s
                if nxt is not None:
                    delay = min(delay, max(0.0, nxt - now))
                delay = min(delay, max(0.0, last_reap + reap_every - now))
                if delay > 0:
                    await self.svc.signals.schedules.wait(delay)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
                await asyncio.sleep(1)
