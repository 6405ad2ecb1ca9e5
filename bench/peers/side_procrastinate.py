"""Procrastinate for bench/peers.py: the app its workers run and the `defer_async()` producer.

Jobs are durable rows in PostgreSQL (PEERS_PG_DSN, a database of the benchmark's own); workers
(`procrastinate --app=side_procrastinate.app worker`, run with this folder on PYTHONPATH) learn
of new ones through LISTEN/NOTIFY. Done is Procrastinate's own record: jobs whose status is
`succeeded`. C clients are C coroutines sharing the app's connection pool.

    python side_procrastinate.py --jobs 2000 --clients 16 --out result.json
"""

from __future__ import annotations

import asyncio
import os
import time

import procrastinate
import producer

DSN = os.environ.get("PEERS_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
COUNT_DONE = "SELECT count(*) AS n FROM procrastinate_jobs WHERE status = 'succeeded'"

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=DSN, min_size=1, max_size=20)
)


@app.task(name="peers.noop")
async def noop() -> None:
    return None


async def count() -> int:
    row = await app.connector.execute_query_one_async(COUNT_DONE)
    return int(row["n"])


async def defer_all(jobs: int, clients: int) -> float:
    """`jobs` defer_async() calls from `clients` coroutines; returns the seconds it took."""

    async def client(n: int) -> None:
        for _ in range(n):
            await noop.defer_async()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(n) for n in producer.split(jobs, clients)))
    return time.perf_counter() - t0


async def wait_for(target: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (n := await count()) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {n} of {target} done after {timeout:g}s")
        await asyncio.sleep(producer.POLL_S)


async def produce() -> None:
    args = producer.parser("Procrastinate defer_async() producer").parse_args()
    async with app.open_async():
        if args.warmup:
            target = await count() + args.warmup
            await defer_all(args.warmup, 1)
            await wait_for(target, args.timeout)
        target = await count() + args.jobs
        t0 = time.perf_counter()
        submit_s = await defer_all(args.jobs, args.clients)
        await wait_for(target, args.timeout)
        producer.emit(args.out, producer.result(args, time.perf_counter() - t0, submit_s))


if __name__ == "__main__":
    asyncio.run(produce())
