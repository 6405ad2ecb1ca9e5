"""APScheduler 3.x for bench/peers.py (4.x exists only as pre-releases): a cron burst and an
idle process holding many jobs.

Both use an AsyncIOScheduler with the default in-memory job store (nothing durable; jobs live
in the process) and a coroutine job that does nothing but note the time it ran.

- `burst --jobs K --lead L`: K cron jobs all due at the same second T0 (≈ L s ahead); how late
  after T0 each ran (misfire grace unlimited, so none is skipped).
- `idle --jobs K --settle S --duration D`: K interval jobs (every 24 h, so none fires); RSS
  each second and CPU over D seconds, after S seconds of settling.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import resource
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import producer
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

fired: list[float] = []


async def noop() -> None:
    fired.append(time.time())


def scheduler() -> AsyncIOScheduler:
    return AsyncIOScheduler(
        timezone=UTC, job_defaults={"misfire_grace_time": None, "coalesce": False}
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))]


async def burst(args: argparse.Namespace) -> dict[str, Any]:
    sched = scheduler()
    t0 = math.ceil(time.time() + args.lead)
    at = datetime.fromtimestamp(t0, UTC)
    trigger = CronTrigger(hour=at.hour, minute=at.minute, second=at.second, timezone=UTC)
    added = time.perf_counter()
    for i in range(args.jobs):
        sched.add_job(noop, trigger, id=f"burst-{i}")
    sched.start()
    added = time.perf_counter() - added
    margin = t0 - time.time()
    deadline = t0 + args.timeout
    while len(fired) < args.jobs and time.time() < deadline:
        await asyncio.sleep(producer.POLL_S)
    sched.shutdown(wait=False)
    late = [t - t0 for t in fired]
    return {
        "jobs": args.jobs,
        "fired": len(fired),
        "add_s": added,
        "margin_s": margin,
        "first_s": min(late) if late else None,
        "p50_s": percentile(late, 50) if late else None,
        "p99_s": percentile(late, 99) if late else None,
        "all_s": max(late) if len(late) >= args.jobs else None,
    }


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def idle(args: argparse.Namespace) -> dict[str, Any]:
    sched = scheduler()
    trigger = IntervalTrigger(hours=24, timezone=UTC)
    for i in range(args.jobs):
        sched.add_job(noop, trigger, id=f"idle-{i}")
    sched.start()
    await asyncio.sleep(args.settle)
    rss = [rss_kib()]
    cpu0, t0 = cpu_s(), time.monotonic()
    while time.monotonic() - t0 < args.duration:
        await asyncio.sleep(1)
        rss.append(rss_kib())
    cpu_pct = 100 * (cpu_s() - cpu0) / (time.monotonic() - t0)
    sched.shutdown(wait=False)
    return {
        "jobs": args.jobs,
        "fired": len(fired),
        "rss_start_mib": rss[0] / 1024,
        "rss_end_mib": rss[-1] / 1024,
        "rss_max_mib": max(rss) / 1024,
        "cpu_pct": cpu_pct,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=["burst", "idle"])
    p.add_argument("--jobs", type=int, default=1000)
    p.add_argument("--lead", type=float, default=5, help="burst: T0 this far ahead (s)")
    p.add_argument("--timeout", type=float, default=50, help="burst: wait after T0 (s)")
    p.add_argument("--settle", type=float, default=2, help="idle: seconds before sampling")
    p.add_argument("--duration", type=float, default=5, help="idle: seconds sampled")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    producer.emit(args.out, asyncio.run(burst(args) if args.mode == "burst" else idle(args)))


if __name__ == "__main__":
    main()
