"""The Celery executor against plain Celery on the same broker (Redis) and the same workers
(two worker processes, --concurrency 4 each).

- gnomon: N noop runs of a job with executor `celery` through one `runs:batch`; the clock stops
  when the ledger shows all N `succeeded`.
- plain Celery: N `noop.delay(i)` calls; the clock stops when the result backend has all N.

    .venv/bin/python bench/celery_throughput.py [--backend sqlite|postgresql|both] [--runs 5000]
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from harness import (
    Server,
    Table,
    backends,
    note,
    parser,
    run,
    spawn,
    stop_process,
    temp_dir,
    write_json,
)

HERE = Path(__file__).resolve().parent
BROKER = os.environ.get("BENCH_CELERY_BROKER", "redis://127.0.0.1:6379/12")
CELERY = str(Path(sys.executable).with_name("celery"))


def workers(app: str, queue: str, env: dict[str, str], log_dir: Path, n: int = 2) -> list[Any]:
    procs = []
    for i in range(n):
        argv = [CELERY, "-A", app, "worker", "-Q", queue, "-n", f"b{i}-{queue}@%h",
                "--concurrency", "4", "--loglevel", "INFO", "--without-gossip",
                "--without-mingle", "--without-heartbeat"]  # fmt: skip
        procs.append(
            (spawn(argv, env=env, log=log_dir / f"w{i}.log", cwd=HERE), log_dir / f"w{i}.log")
        )
    deadline = time.monotonic() + 60
    for proc, log in procs:
        while " ready." not in (log.read_text(errors="replace") if log.exists() else ""):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"celery worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    return [p for p, _ in procs]


def plain(runs: int) -> float:
    sys.path.insert(0, str(HERE))
    from celery.result import ResultSet

    import celery_plain

    queue = f"plain-{uuid.uuid4().hex[:6]}"
    log_dir = temp_dir("celery-plain")
    env = {**os.environ, "BENCH_CELERY_BROKER": BROKER, "PYTHONPATH": str(HERE)}
    procs = workers("celery_plain", queue, env, log_dir)
    celery_plain.app.conf.task_default_queue = queue
    try:
        t0 = time.perf_counter()
        results = ResultSet([celery_plain.noop.delay(i) for i in range(runs)])
        while results.completed_count() < runs:
            time.sleep(0.05)
        return time.perf_counter() - t0
    finally:
        for p in procs:
            stop_process(p)


async def gnomon(backend: str, runs: int) -> float:
    queue = f"gnomon-{uuid.uuid4().hex[:6]}"
    env = {"GNOMON_CELERY_BROKER_URL": BROKER, "GNOMON_CELERY_QUEUE": queue}
    server = Server(backend, "celery", **env).start()
    worker_app = "gnomon.engine.executors.celery.worker"
    procs = workers(worker_app, queue, {**os.environ, **env}, server.data_dir)
    try:
        async with server.client() as c, server.ledger() as ledger:
            r = await c.post(
                "/v1/jobs", json={"name": "noop", "action": {"type": "noop"}, "executor": "celery"}
            )
            job = r.json()["id"]
            t0 = time.perf_counter()
            r = await c.post("/v1/runs:batch", json={"job": job, "runs": [{}] * runs})
            assert r.status_code == 201, r.text
            while await ledger.count_runs(job, "succeeded") < runs:
                await asyncio.sleep(0.05)
            return time.perf_counter() - t0
    finally:
        for p in procs:
            stop_process(p)
        server.stop()


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5000)
    p.set_defaults(backend="sqlite")
    args = p.parse_args()
    note(f"plain Celery: {args.runs} delay() calls")
    base = plain(args.runs)
    results = []
    for backend in backends(args):
        note(f"{backend}: gnomon, {args.runs} runs")
        took = await gnomon(backend, args.runs)
        results.append({"backend": backend, "gnomon_s": took, "plain_s": base})
    t = Table(
        f"Celery: {args.runs} no-op tasks end to end, 2 workers x concurrency 4, Redis broker",
        [r["backend"] for r in results],
    )
    t.add("plain Celery delay() → all results (tasks/s)", [args.runs / base for _ in results], 0)
    t.add(
        "gnomon runs:batch → all succeeded (runs/s)",
        [args.runs / r["gnomon_s"] for r in results],
        0,
    )
    t.add("gnomon ÷ plain Celery (throughput ratio)", [base / r["gnomon_s"] for r in results], 2)
    t.print()
    write_json(args, "celery_throughput", results)


if __name__ == "__main__":
    run(main)
