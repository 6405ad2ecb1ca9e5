"""Fire lateness: 10,000 schedules due in the same second.

For each variant, on a fresh server whose job has executor `site:bench` (runs are created, never
executed), N schedules all due at one instant T0 (--lead seconds after the start of the creation)
are created: the first --api of them through the API (`POST /v1/jobs/{id}/schedules`, C requests
in flight — this also measures the API's creation rate), the rest as copies of the first one's
row inserted straight into the `schedules` table (batched; new ids, every other column exactly
as the service wrote it), which is far faster than the API. The scheduler finds them on its next
look at the table (it sleeps at most `scheduler_max_sleep_s`, 1 s). Variants:

* `at`     — `{"at": T0}`: a one-shot slot;
* `cron`   — `{"cron": "<T0's second> * * * * *"}`: a recurring slot every minute (seconds-first
  6-field cron), all schedules aligned on the same second. (`every: "60s"` would not do: an
  interval is anchored at each schedule's creation instant, so the slots would spread over the
  creation time.)

After T0 the benchmark waits until the N runs of slot T0 exist, then reads `scheduled_for` and
`created_at` of each run from the database: lateness = created_at - scheduled_for. It also reads
the server's histogram `gnomon_fire_lateness_seconds` (measured after the commit, so it includes
the write) from /metrics.

    .venv/bin/python bench/schedules_lateness.py [--backend ...] [--schedules 10000] [--lead 40]
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from datetime import UTC, datetime
from typing import Any

import httpx

from harness import Server, Table, backends, note, parser, percentile, run, write_json

VARIANTS = ("at", "cron", "cron-skip")
BUCKET = re.compile(r'^gnomon_fire_lateness_seconds_bucket\{le="([^"]+)"\} ([0-9.e+]+)$')


def histogram(text: str) -> dict[str, Any]:
    """Cumulative buckets, count and sum of gnomon_fire_lateness_seconds."""
    buckets: list[tuple[float, float]] = []
    total = count = 0.0
    for line in text.splitlines():
        if m := BUCKET.match(line):
            buckets.append((float(m.group(1)), float(m.group(2))))
        elif line.startswith("gnomon_fire_lateness_seconds_count "):
            count = float(line.split()[1])
        elif line.startswith("gnomon_fire_lateness_seconds_sum "):
            total = float(line.split()[1])
    return {"buckets": buckets, "count": int(count), "sum": total}


def bucket_quantile(hist: dict[str, Any], q: float) -> float | None:
    """The upper bound of the bucket holding quantile q (like a `le` answer: lateness ≤ x)."""
    if not hist["count"]:
        return None
    rank = q * hist["count"]
    for le, cum in hist["buckets"]:
        if cum >= rank:
            return le
    return math.inf


async def create_schedules(
    server: Server, job: str, spec: dict[str, Any], n: int, concurrency: int
) -> tuple[list[str], float]:
    """Create n identical schedules with `concurrency` requests in flight: (ids, seconds)."""
    todo = iter(range(n))
    ids: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker(client: httpx.AsyncClient) -> None:
        for _ in todo:
            r = await client.post(f"/v1/jobs/{job}/schedules", json=spec)
            if r.status_code != 201:
                raise RuntimeError(f"schedule create failed: {r.status_code} {r.text[:300]}")
            ids.append(r.json()["id"])

    t0 = time.monotonic()
    async with server.client(limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(min(concurrency, n))))
    return ids, time.monotonic() - t0


async def bench_variant(backend: str, variant: str, args: Any) -> dict[str, Any]:
    note(f"{backend}/{variant}: starting gnomon")
    server = Server(backend, f"late{variant.replace('-', '_')}").start()
    job = await server.create_job(f"bench-lateness-{variant}", args.executor)
    start = time.time()
    t0 = math.ceil(start + args.lead)
    t0_dt = datetime.fromtimestamp(t0, UTC)
    if variant == "at":
        spec: dict[str, Any] = {"at": t0_dt.isoformat().replace("+00:00", "Z")}
    else:
        spec = {"cron": f"{t0_dt.second} * * * * *"}
    if variant == "cron-skip":  # a rule that depends on what is active at the slot
        spec["overlap"] = "skip"
    note(f"{backend}/{variant}: creating {args.schedules:,} x {spec} (T0 in {t0 - start:.0f}s)")
    n_api = max(1, min(args.api, args.schedules))
    ids, api_s = await create_schedules(server, job, spec, n_api, args.concurrency)
    async with server.ledger() as ledger:
        insert_s = await ledger.clone_row("schedules", ids[0], args.schedules - n_api)
        margin = t0 - time.time()
        note(
            f"{backend}/{variant}: {n_api:,} via API in {api_s:.1f}s, "
            f"{args.schedules - n_api:,} inserted in {insert_s:.1f}s; {margin:.1f}s before T0"
        )
        deadline = t0 + args.timeout
        made = 0
        while time.time() < deadline:
            made = int(
                await ledger.scalar(
                    "SELECT count(*) FROM runs WHERE job_id = ? AND scheduled_for = ?", job, t0
                )
            )
            if made >= args.schedules:
                break
            await asyncio.sleep(0.1 if time.time() > t0 - 1 else 0.5)
        rows = await ledger.rows(
            "SELECT created_at - scheduled_for FROM runs WHERE job_id = ? AND scheduled_for = ?",
            job,
            t0,
        )
        batches = await ledger.scalar(
            "SELECT count(DISTINCT created_at) FROM runs WHERE job_id = ? AND scheduled_for = ?",
            job,
            t0,
        )
        early = await ledger.scalar(
            "SELECT count(*) FROM runs WHERE job_id = ? AND scheduled_for < ?", job, t0
        )
        started: list[tuple[Any, ...]] = []
        if not args.executor.startswith("site:"):  # executed: wait for each run to start
            sql = "FROM runs WHERE job_id = ? AND scheduled_for = ? AND started_at IS NOT NULL"
            while time.time() < deadline:
                if int(await ledger.scalar(f"SELECT count(*) {sql}", job, t0)) >= made:
                    break
                await asyncio.sleep(0.1)
            started = await ledger.rows(f"SELECT started_at - scheduled_for {sql}", job, t0)
        slots_missed = await ledger.scalar(
            "SELECT coalesce(sum(count), 0) FROM fires f JOIN schedules s ON s.id = f.schedule_id "
            "WHERE s.job_id = ?",
            job,
        )
    hist = histogram(server.metrics_text())
    server.stop()
    late = [float(r[0]) for r in rows]
    start_late = [float(r[0]) for r in started]
    return {
        "backend": backend,
        "variant": variant,
        "schedules": args.schedules,
        "api_created": n_api,
        "api_per_s": n_api / api_s,
        "inserted": args.schedules - n_api,
        "insert_per_s": (args.schedules - n_api) / insert_s if insert_s else None,
        "margin_s": margin,
        "valid": margin > 0.5 and not early,
        "runs": len(late),
        "early_runs": int(early or 0),
        "fire_batches": int(batches or 0),
        "slots_not_run": int(slots_missed or 0),
        "p50": percentile(late, 50),
        "p95": percentile(late, 95),
        "p99": percentile(late, 99),
        "max": max(late) if late else None,
        "started": len(start_late),
        "start_p50": percentile(start_late, 50) if start_late else None,
        "start_p99": percentile(start_late, 99) if start_late else None,
        "metric_count": hist["count"],
        "metric_mean": hist["sum"] / hist["count"] if hist["count"] else None,
        "metric_p50_le": bucket_quantile(hist, 0.50),
        "metric_p99_le": bucket_quantile(hist, 0.99),
        "metric_buckets": hist["buckets"],
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--schedules", type=int, default=10_000)
    p.add_argument(
        "--api",
        type=int,
        default=1_000,
        help="schedules created through the API; the rest are copies inserted in the database",
    )
    p.add_argument("--concurrency", type=int, default=8, help="API requests in flight")
    p.add_argument(
        "--lead", type=float, default=20, help="T0 = start of creation + lead (< 59 for cron)"
    )
    p.add_argument("--variants", default=",".join(VARIANTS), help=",".join(VARIANTS))
    p.add_argument("--timeout", type=float, default=120, help="max wait after T0 for the runs")
    p.add_argument(
        "--executor",
        default="site:bench",
        help="the job's executor; `local` (noop) also measures slot → started",
    )
    args = p.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    if bad := [v for v in variants if v not in VARIANTS]:
        raise SystemExit(f"unknown variant(s) {bad}; choose from {VARIANTS}")
    if "cron" in variants and args.lead >= 59:
        raise SystemExit("--lead must be under 59 s for the cron variant (one slot a minute)")
    results = [await bench_variant(b, v, args) for v in variants for b in backends(args)]
    t = Table(
        f"fire lateness: {args.schedules:,} schedules due in the same second "
        "(lateness = run.created_at - scheduled_for, seconds)",
        [f"{r['variant']}/{r['backend']}" for r in results],
    )
    t.add("schedules created via API", [r["api_created"] for r in results])
    t.add("  API creation rate (/s)", [r["api_per_s"] for r in results], 0)
    t.add("schedules inserted in DB", [r["inserted"] for r in results])
    t.add("  insert rate (/s)", [r["insert_per_s"] for r in results], 0)
    t.add("creation done before T0 (s)", [r["margin_s"] for r in results], 1)
    t.add("runs created for T0", [r["runs"] for r in results])
    t.add("scheduler batches (distinct created_at)", [r["fire_batches"] for r in results])
    t.add("lateness p50", [r["p50"] for r in results], 3)
    t.add("lateness p95", [r["p95"] for r in results], 3)
    t.add("lateness p99", [r["p99"] for r in results], 3)
    t.add("lateness max", [r["max"] for r in results], 3)
    if not args.executor.startswith("site:"):
        t.add(f"runs started ({args.executor})", [r["started"] for r in results])
        t.add("start lateness p50", [r["start_p50"] for r in results], 3)
        t.add("start lateness p99", [r["start_p99"] for r in results], 3)
    t.add("/metrics: observations", [r["metric_count"] for r in results])
    t.add("/metrics: mean (incl. commit)", [r["metric_mean"] for r in results], 3)
    t.add("/metrics: p50 ≤ (bucket)", [r["metric_p50_le"] for r in results], 3)
    t.add("/metrics: p99 ≤ (bucket)", [r["metric_p99_le"] for r in results], 3)
    t.add("slots not run (fires table)", [r["slots_not_run"] for r in results])
    t.add("valid (created before T0)", [r["valid"] for r in results])
    t.print()
    write_json(args, "schedules_lateness", results)
    if not all(r["runs"] == r["schedules"] for r in results):
        raise SystemExit("not every schedule fired in time")


if __name__ == "__main__":
    run(main)
