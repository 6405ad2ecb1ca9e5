"""The dashboard's summary: `GET /v1/stats` on a ledger of many finished runs.

One noop run is executed, then copied in the database until the ledger holds `--runs` runs
finished within the last hour (the worst case for the throughput buckets). Reports the
latency of `GET /v1/stats` (which the web dashboard calls after each burst of run events,
at most a few times a second) beside `GET /metrics` (Prometheus gauges, the same tallies).
The first calls fold the tallies the copying appended; they are the warm-up, not measured.

    .venv/bin/python bench/stats.py [--backend sqlite|postgresql|both] [--runs 200000]
        [--calls 20]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import Server, Table, backends, note, parser, percentile, run, write_json


async def timed(client: Any, path: str, calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        r = await client.get(path)
        out.append(time.perf_counter() - t0)
        r.raise_for_status()
    return out


async def bench_backend(backend: str, args: Any) -> dict[str, Any]:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "stats").start()
    job = await server.create_job("bench-stats", "local")
    async with server.client() as client:
        run_id = (await client.post(f"/v1/jobs/{job}/runs")).json()["id"]
        for _ in range(200):
            if (await client.get(f"/v1/runs/{run_id}")).json()["state"] == "succeeded":
                break
            await asyncio.sleep(0.05)
        async with server.ledger() as ledger:
            note(f"{backend}: copying the run {args.runs - 1:,} times")
            await ledger.clone_row("runs", run_id, args.runs - 1)
            total = await ledger.count_runs(job)
        await timed(client, "/v1/stats", 2)  # warm-up
        stats = await timed(client, "/v1/stats", args.calls)
        metrics = await timed(client, "/metrics", args.calls)
        body = (await client.get("/v1/stats")).json()
    server.stop()
    assert body["runs"]["succeeded"] == total, body["runs"]
    return {
        "backend": backend,
        "runs": total,
        "finished_last_hour": body["finished"],
        "stats_p50_ms": percentile(stats, 50) * 1000,
        "stats_max_ms": max(stats) * 1000,
        "metrics_p50_ms": percentile(metrics, 50) * 1000,
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=200_000, help="runs in the ledger")
    p.add_argument("--calls", type=int, default=20, help="measured calls per endpoint")
    args = p.parse_args()
    results = [await bench_backend(b, args) for b in backends(args)]
    t = Table(
        f"dashboard summary: GET /v1/stats, {args.runs:,} runs", [r["backend"] for r in results]
    )
    t.add("runs in ledger", [f"{r['runs']:,}" for r in results])
    t.add("finished in the last hour", [f"{r['finished_last_hour']:,}" for r in results])
    t.add("GET /v1/stats p50 (ms)", [r["stats_p50_ms"] for r in results])
    t.add("GET /v1/stats max (ms)", [r["stats_max_ms"] for r in results])
    t.add("GET /metrics p50 (ms)", [r["metrics_p50_ms"] for r in results])
    t.print()
    write_json(args, "stats", results)


if __name__ == "__main__":
    run(main)
