"""Batch submissions: `POST /v1/runs:batch` with 10,000 runs per request, repeated.

One request at a time (after one warm-up request that is not counted), job executor
`site:bench` so nothing consumes the runs. Reports runs/s = runs acknowledged / wall time, the
per-request latency, and checks the ledger holds every acknowledged run.

    .venv/bin/python bench/batch.py [--backend sqlite|postgresql|both] [--size 10000] [--repeat 10]
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from harness import Server, Table, backends, note, parser, percentile, run, write_json


async def bench_backend(backend: str, args: Any) -> dict[str, Any]:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "batch").start()
    job = await server.create_job("bench-batch", "site:bench")
    body = orjson.dumps({"job": job, "runs": [{"params": {"n": i}} for i in range(args.size)]})
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    async with server.client(timeout=300) as client:
        for i in range(args.warmup + args.repeat):
            t0 = time.perf_counter()
            r = await client.post("/v1/runs:batch", content=body, headers=headers)
            dt = time.perf_counter() - t0
            if r.status_code != 201 or len(r.json()["ids"]) != args.size:
                raise RuntimeError(f"{backend}: batch failed: {r.status_code} {r.text[:300]}")
            if i >= args.warmup:
                latencies.append(dt)
            note(f"{backend}: request {i + 1}/{args.warmup + args.repeat}: {dt:.2f}s")
    async with server.ledger() as ledger:
        in_ledger = await ledger.count_runs(job)
    server.stop()
    acked = args.size * (args.warmup + args.repeat)
    total = sum(latencies)
    return {
        "backend": backend,
        "runs_per_s": args.size * len(latencies) / total,
        "requests": len(latencies),
        "runs": args.size * len(latencies),
        "total_s": total,
        "p50_s": percentile(latencies, 50),
        "min_s": min(latencies),
        "max_s": max(latencies),
        "body_mib": len(body) / 2**20,
        "acked": acked,
        "in_ledger": in_ledger,
        "durable": in_ledger == acked,
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=10_000, help="runs per request")
    p.add_argument("--repeat", type=int, default=10, help="measured requests")
    p.add_argument("--warmup", type=int, default=1, help="requests before measuring")
    args = p.parse_args()
    results = [await bench_backend(b, args) for b in backends(args)]
    t = Table(
        f"batch submissions: POST /v1/runs:batch, {args.size:,} runs x {args.repeat} requests",
        [r["backend"] for r in results],
    )
    t.add("runs/s", [r["runs_per_s"] for r in results], 0)
    t.add("runs measured", [r["runs"] for r in results])
    t.add("wall time (s)", [r["total_s"] for r in results], 2)
    t.add("request p50 (s)", [r["p50_s"] for r in results], 3)
    t.add("request min (s)", [r["min_s"] for r in results], 3)
    t.add("request max (s)", [r["max_s"] for r in results], 3)
    t.add("request body (MiB)", [r["body_mib"] for r in results], 2)
    t.add("runs in ledger / acked", [f"{r['in_ledger']:,}/{r['acked']:,}" for r in results])
    t.add("every ack durable", [r["durable"] for r in results])
    t.print()
    write_json(args, "batch", results)
    if not all(r["durable"] for r in results):
        raise SystemExit("durability check failed")


if __name__ == "__main__":
    run(main)
