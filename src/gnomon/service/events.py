"""Following the event log live, in order, across processes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from gnomon.store import events as store

if TYPE_CHECKING:
    from gnomon.service import Service

BATCH = 500
GAP_WAIT_S = 1.0  # how long an id gap may hold later events back (a slower commit filling it)
POLL_S = 0.5


class Events:
    def __init__(self, svc: Service):
        self.svc = svc

    async def last_id(self) -> int:
        async with self.svc.db.read() as conn:
            return await store.last_id(conn)

    async def follow(
        self,
        *,
        spaces: list[str] | None,
        after: int | None,
        job_id: str | None = None,
        run_id: str | None = None,
        executor: str | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield events after `after` (or from now), forever, in id order.

        Ids come from one sequence, but on PostgreSQL a transaction that took a smaller id may
        commit after one that took a larger: an id gap holds later events back until it fills
        or GAP_WAIT_S passes (a rolled-back transaction leaves a gap that never fills).
        """
        filtered = any((spaces is not None, job_id, run_id, executor))
        last = await self.last_id() if after is None else after
        gap_since: float | None = None
        while True:
            async with self.svc.db.read() as conn:
                rows = await store.after(conn, last, spaces=None, limit=BATCH)
            for row in rows:
                if row["id"] != last + 1:
                    gap_since = gap_since or time.monotonic()
                    if time.monotonic() - gap_since < GAP_WAIT_S:
                        break
                gap_since = None
                last = row["id"]
                if not filtered or _matches(row, spaces, job_id, run_id, executor):
                    yield row
            else:
                if len(rows) == BATCH:
                    continue
            await self.svc.signals.events.wait(0.05 if gap_since else POLL_S)


def _matches(
    row: dict[str, Any],
    spaces: list[str] | None,
    job_id: str | None,
    run_id: str | None,
    executor: str | None,
) -> bool:
    return (
        (spaces is None or row["space"] in spaces)
        and (job_id is None or row["job_id"] == job_id)
        and (run_id is None or row["run_id"] == run_id)
        and (executor is None or row["executor"] == executor)
    )
