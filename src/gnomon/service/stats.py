"""What the dashboard shows: the ledger summed up for the spaces a caller may read."""

from __future__ import annotations

import time
from typing import Any

from gnomon.config import Settings
from gnomon.domain import Principal, RunState
from gnomon.service.access import readable_spaces
from gnomon.service.executors import switched_off
from gnomon.store import stats as store
from gnomon.store.db import Database
from gnomon.store.faults import StorageFault
from gnomon.vocabulary import HELD_STATES, RETRYABLE_STATES, SITE_PREFIX, WAITING_STATES

SITE = SITE_PREFIX
FOLD_EVERY_S = 2.0  # a read sums the rows appended since: a few seconds' worth at most
KEEP_MINUTES_S = 7 * 86400 + 60  # the widest window a summary may ask for


class Stats:
    def __init__(self, db: Database, settings: Settings):
        self.db = db
        self.settings = settings
        self._folded = 0.0

    async def fold(self, now: float) -> None:
        """Fold the tallies' appended rows, at most once per FOLD_EVERY_S in this process
        (the scheduler's loop and the summaries call it); no write when none are waiting."""
        if now - self._folded < FOLD_EVERY_S:
            return
        self._folded = now
        async with self.db.read() as conn:
            if not await store.unfolded(conn):
                return
        try:
            async with self.db.write() as conn:
                await store.fold(conn, now - KEEP_MINUTES_S)
        except StorageFault:
            pass  # the deltas still count as they are; the next fold takes them

    async def summary(
        self,
        who: Principal,
        *,
        space: str | None = None,
        window_s: int = 3600,
        buckets: int = 12,
        missed: int = 10,
    ) -> dict[str, Any]:
        """Runs by state now; queue depth per executor (with why it is `off` on this server,
        if it is) and per site; finished runs per bucket over the last `window_s`, with the
        failure rate; the latest missed slots."""
        spaces = readable_spaces(who, space)
        now = time.time()
        bucket_s = window_s / buckets
        since = now - window_s
        await self.fold(now)
        async with self.db.read() as conn:
            counts = await store.counts(conn, spaces)
            done = await store.finished(conn, spaces, since, bucket_s)
            latest = await store.recent_fires(conn, spaces, "missed", missed)
            missed_total = await store.fire_total(conn, spaces, "missed")
        by_state = {s.value: 0 for s in RunState}
        executors: dict[str, dict[str, int]] = {}
        for executor, state, n in counts:
            by_state[state] = by_state.get(state, 0) + n
            row = executors.setdefault(executor, {"queued": 0, "active": 0})
            if state in WAITING_STATES:
                row["queued"] += n
            elif state in HELD_STATES:
                row["active"] += n
        series = [
            {"start": since + i * bucket_s, "succeeded": 0, "failed": 0, "other": 0}
            for i in range(buckets)
        ]
        for index, state, n in done:
            slot = series[min(max(index, 0), buckets - 1)]
            key = (
                "succeeded"
                if state == RunState.succeeded
                else "failed"
                if state in RETRYABLE_STATES
                else "other"
            )
            slot[key] += n
        finished = sum(b["succeeded"] + b["failed"] + b["other"] for b in series)
        failed = sum(b["failed"] for b in series)
        queues = [
            {"executor": e, **c, "off": switched_off(self.settings, e)}
            for e, c in sorted(executors.items())
            if c["queued"] or c["active"]
        ]
        return {
            "at": now,
            "runs": by_state,
            "queues": [q for q in queues if not q["executor"].startswith(SITE)],
            "sites": [
                {"site": q["executor"][len(SITE) :], "queued": q["queued"], "active": q["active"]}
                for q in queues
                if q["executor"].startswith(SITE)
            ],
            "window_s": window_s,
            "bucket_s": bucket_s,
            "throughput": series,
            "finished": finished,
            "failed": failed,
            "failure_rate": failed / finished if finished else 0.0,
            "missed_total": missed_total,
            "missed": latest,
        }
