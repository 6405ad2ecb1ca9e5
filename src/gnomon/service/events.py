"""Following the event log live, in order, across processes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store import events as store

if TYPE_CHECKING:
    from gnomon.service import Service

BATCH = 500
POLL_S = 0.5
GAP_RECHECK_S = 0.05
GAP_MAX_S = 60.0  # a transaction open this long past its event id is given up on (logged)

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class _Gap:
    """Missing ids right after `after`, first seen at `since`, below the visible id `before`.

    On PostgreSQL a transaction that took an id may commit after one that took a larger id, or
    roll back and never fill it. The gap is final once every transaction that could hold one of
    its ids has ended: those that had begun a moment after it was seen (`horizon`, the
    snapshot's xmax then) are all below the snapshot's xmin later.
    """

    after: int
    before: int
    since: float
    horizon: int | None = None


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
        """Yield events after `after` (or from now), forever, in id order, none skipped."""
        filtered = any((spaces is not None, job_id, run_id, executor))
        last = await self.last_id() if after is None else after
        gap: _Gap | None = None
        while True:
            async with self.svc.db.read() as conn:
                final = await self._gap_final(conn, gap)
                rows = await store.after(conn, last, spaces=None, limit=BATCH)
            for row in rows:
                if row["id"] != last + 1:
                    if gap is None or gap.after != last:
                        gap = _Gap(last, row["id"], time.monotonic())
                    if not (final and row["id"] <= gap.before):
                        break
                gap = None
                last = row["id"]
                if not filtered or _matches(row, spaces, job_id, run_id, executor):
                    yield row
            else:
                if len(rows) == BATCH:
                    continue
            await self.svc.signals.events.wait(GAP_RECHECK_S if gap else POLL_S)

    @staticmethod
    async def _gap_final(conn: AsyncConnection, gap: _Gap | None) -> bool:
        """Whether no transaction still running can fill `gap` (read before the rows)."""
        if gap is None:
            return False
        writers = await store.writers(conn)
        if writers is None:  # one writer, ids committed in order: a gap is a rollback
            return True
        xmin, xmax = writers
        waited = time.monotonic() - gap.since
        if gap.horizon is None:
            # Leave a moment between an id's nextval and its transaction's id being assigned.
            if waited >= GAP_RECHECK_S:
                gap.horizon = xmax
            return False
        if xmin >= gap.horizon:
            return True
        if waited >= GAP_MAX_S:
            log.warning("events.gap_skipped", after=gap.after, before=gap.before, waited_s=waited)
            return True
        return False


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
