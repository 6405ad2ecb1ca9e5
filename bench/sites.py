"""Site queues: how fast 16 pollers drain a site, and how soon a waiting long-poll sees a job.

Claims: N runs are queued on `site:bench` (runs:batch), then 16 concurrent pollers call
`POST /v1/sites/bench/claim` {max} until the queue is empty; jobs/s = N / wall time from the
first claim to the last, and every run must be delivered exactly once. Wake-up: a poller waits
in `claim` {wait_s: 30} on an empty site; a run is submitted; two latencies to the claim's
answer: from sending the submission (so it includes the submission and its durable commit),
and from the submission's acknowledgement (the run exists). Repeated.

    .venv/bin/python bench/sites.py [--backend sqlite|postgresql|both] [--runs 20000]
        [--pollers 16] [--max 100] [--wakeups 200]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from harness import Server, Table, backends, note, parser, percentile, run, write_json


async def queue_runs(client: httpx.AsyncClient, job: str, n: int) -> None:
    for start in range(0, n, 10_000):
        size = min(10_000, n - start)
        r = await client.post("/v1/runs:batch", json={"job": job, "runs": [{}] * size})
        r.raise_for_status()


async def drain(server: Server, site: str, pollers: int, size: int) -> tuple[list[str], float]:
    got: list[str] = []

    async def poller(n: int) -> None:
        async with server.client() as c:
            while True:
                r = await c.post(f"/v1/sites/{site}/claim", json={"max": size, "agent": f"p{n}"})
                r.raise_for_status()
                runs = r.json()["runs"]
                if not runs:
                    return
                got.extend(x["id"] for x in runs)

    t0 = time.perf_counter()
    await asyncio.gather(*(poller(i) for i in range(pollers)))
    return got, time.perf_counter() - t0


async def wakeups(
    server: Server, job: str, site: str, count: int
) -> tuple[list[float], list[float]]:
    """Per wake-up: seconds from sending the submission to the poller holding the run, and
    from the submission's acknowledgement (the run exists, durably) to the same moment."""
    from_send, from_ack = [], []
    async with server.client() as poll, server.client() as submit:
        for _ in range(count):
            waiting = asyncio.create_task(
                poll.post(f"/v1/sites/{site}/claim", json={"wait_s": 30, "agent": "waiter"})
            )
            await asyncio.sleep(0.02)  # the claim is parked in its wait
            t0 = time.perf_counter()
            await submit.post(f"/v1/jobs/{job}/runs", json={})
            t1 = time.perf_counter()
            r = await waiting
            done = time.perf_counter()
            from_send.append(done - t0)
            from_ack.append(max(0.0, done - t1))
            if len(r.json()["runs"]) != 1:
                raise RuntimeError(f"wake-up claim got {r.text[:200]}")
    return from_send, from_ack


async def bench_backend(backend: str, args: Any) -> dict[str, Any]:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "sites").start()
    job = await server.create_job("bench-claim", "site:bench")
    wake_job = await server.create_job("bench-wake", "site:wake")
    async with server.client(timeout=300) as c:
        await queue_runs(c, job, 2000)  # warm-up
    await drain(server, "bench", args.pollers, args.max)
    async with server.client(timeout=300) as c:
        await queue_runs(c, job, args.runs)
    note(f"{backend}: {args.runs} runs queued; draining with {args.pollers} pollers")
    got, wall = await drain(server, "bench", args.pollers, args.max)
    note(f"{backend}: drained in {wall:.2f}s; wake-ups")
    lat, lat_ack = await wakeups(server, wake_job, "wake", args.wakeups)
    server.stop()
    return {
        "backend": backend,
        "runs": args.runs,
        "claimed": len(got),
        "unique": len(set(got)),
        "wall_s": wall,
        "jobs_per_s": len(got) / wall,
        "wake_p50_ms": percentile(lat, 50) * 1000,
        "wake_p99_ms": percentile(lat, 99) * 1000,
        "wake_max_ms": max(lat) * 1000,
        "wake_ack_p50_ms": percentile(lat_ack, 50) * 1000,
        "wake_ack_p99_ms": percentile(lat_ack, 99) * 1000,
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20_000)
    p.add_argument("--pollers", type=int, default=16)
    p.add_argument("--max", type=int, default=100, help="runs per claim")
    p.add_argument("--wakeups", type=int, default=200)
    args = p.parse_args()
    results = [await bench_backend(b, args) for b in backends(args)]
    t = Table(
        f"site claims: {args.pollers} pollers, max {args.max} per claim; long-poll wake-ups",
        [r["backend"] for r in results],
    )
    t.add("jobs claimed/s", [r["jobs_per_s"] for r in results], 0)
    t.add("runs queued", [r["runs"] for r in results], 0)
    t.add("drain wall time (s)", [r["wall_s"] for r in results], 2)
    t.add("delivered exactly once", [r["unique"] == r["claimed"] == r["runs"] for r in results])
    t.add("wake-up from the send: p50 (ms)", [r["wake_p50_ms"] for r in results], 1)
    t.add("wake-up from the send: p99 (ms)", [r["wake_p99_ms"] for r in results], 1)
    t.add("wake-up max (ms)", [r["wake_max_ms"] for r in results], 1)
    t.add("after the ack: p50 (ms)", [r["wake_ack_p50_ms"] for r in results], 1)
    t.add("after the ack: p99 (ms)", [r["wake_ack_p99_ms"] for r in results], 1)
    t.print()
    write_json(args, "sites", results)
    if not all(r["unique"] == r["claimed"] == r["runs"] for r in results):
        raise SystemExit("a run was delivered twice or not at all")


if __name__ == "__main__":
    run(main)
