"""Prometheus metrics: counters kept in-process, gauges read from the ledger at scrape time."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from gnomon.store import schedules as schedule_store
from gnomon.store import stats as stats_store
from gnomon.vocabulary import RunState

if TYPE_CHECKING:
    from gnomon.service.stats import Stats
    from gnomon.store.db import Database


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.fire_lateness = Histogram(
            "gnomon_fire_lateness_seconds",
            "Delay between a schedule slot and the durable creation of its run.",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60),
            registry=r,
        )
        self.slots = Counter(
            "gnomon_schedule_slots_not_run",
            "Schedule slots recorded without a run, by status (missed/coalesced/skipped), "
            "counted by this process.",
            ["status"],
            registry=r,
        )
        self.runs = Gauge(
            "gnomon_runs",
            "Runs in the ledger by executor and state.",
            ["executor", "state"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "gnomon_queue_depth", "Queued runs by executor.", ["executor"], registry=r
        )
        self.slots_total = Gauge(
            "gnomon_schedule_slots_recorded",
            "Slots recorded without a run in the ledger, by status (all processes).",
            ["status"],
            registry=r,
        )
        self.schedules = Gauge("gnomon_schedules", "Live schedules.", registry=r)

    async def render(self, db: Database, stats: Stats) -> bytes:
        await stats.fold(time.time())
        async with db.read() as conn:
            counts = await stats_store.counts(conn, None)
            totals = await schedule_store.fire_totals(conn)
            n_schedules = await schedule_store.count(conn)
        self.runs.clear()
        self.queue_depth.clear()
        for executor, state, n in counts:
            self.runs.labels(executor, state).set(n)
            if state == RunState.queued:
                self.queue_depth.labels(executor).set(n)
        for status, n in totals:
            self.slots_total.labels(status).set(n)
        self.schedules.set(n_schedules)
        return generate_latest(self.registry)
