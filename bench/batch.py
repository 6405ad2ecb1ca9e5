"""Batch submissions: `POST /v1/runs:batch` with 10,000 runs per request, repeated.

Job executor `site:bench`, so nothing consumes the runs. Each backend is measured twice: one
request at a time, and with several clients posting at once (as a bulk loader would; the
server's group commit then joins their inserts). One warm-up request is not counted. Reports
runs/s = runs acknowledged / wall time, the per-request latency, and checks the ledger holds
every acknowledged run.

    .venv/bin/python bench/batch.py [--backend sqlite|postgresql|both] [--size 10000]
        [--repeat 12] [--clients 4]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from harness import Server, Table, backends, note, parser, percentile, run, write_json


async def post_batches(
    client: Any, body: bytes, count: int, size: int, backend: str
) -> list[float]:
    latencies = []
    for _ in range(count):
        t0 = time.perf_counter()
        r = await client.post(
            "/v1/runs:batch", content=body, headers={"Content-Type": "application/json"}
        )
        latencies.append(time.perf_counter() - t0)
        if r.status_code != 201 or len(r.json()["ids"]) != size:
            raise RuntimeError(f"{backend}: batch failed: {r.status_code} {r.text[:300]}")
    return latencies


async def bench_backend(backend: str, clients: int, args: Any) -> dict[str, Any]:
    note(f"{backend}: starting gnomon ({clients} client(s))")
    server = Server(backend, "batch").start()
    job = await server.create_job("bench-batch", "site:bench")
    body = orjson.dumps({"job": job, "runs": [{"params": {"n": i}} for i in range(args.size)]})
    async with server.client(timeout=300) as client:
        await post_batches(client, body, args.warmup, args.size, backend)
        per_client = max(1, args.repeat // clients)
        t0 = time.perf_counter()
        parts = await asyncio.gather(
            *(post_batches(client, body, per_client, args.size, backend) for _ in range(clients))
        )
        wall = time.perf_counter() - t0
    latencies = [x for part in parts for x in part]
    note(f"{backend}: {len(latencies)} requests in {wall:.2f}s")
    async with server.ledger() as ledger:
        in_ledger = await ledger.count_runs(job)
    server.stop()
    acked = args.size * (args.warmup + len(latencies))
    return {
        "backend": backend,
        "clients": clients,
        "runs_per_s": args.size * len(latencies) / wall,
        "requests": len(latencies),
        "runs": args.size * len(latencies),
        "total_s": wall,
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
    p.add_argument("--repeat", type=int, default=12, help="measured requests")
    p.add_argument("--clients", type=int, default=4, help="concurrent clients, second pass")
    p.add_argument("--warmup", type=int, default=1, help="requests before measuring")
    args = p.parse_args()
    results = [
        await bench_backend(b, clients, args)
        for b in backends(args)
        for clients in sorted({1, args.clients})
    ]
    t = Table(
        f"batch submissions: POST /v1/runs:batch, {args.size:,} runs x {args.repeat} requests",
        [f"{r['backend']} x{r['clients']}" for r in results],
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
