"""An idle server holding 100,000 schedules: memory (RSS) and CPU.

For each backend: start a fresh server, create one `every: "24h"` schedule through the API (so
none fires during the benchmark), stop the server, insert 99,999 copies of that row straight into
the `schedules` table (batched; new ids, every other column exactly as the service wrote it),
start the server again and let it settle, then sample it for --duration seconds: VmRSS from
/proc/<pid>/status (every second) and CPU from utime+stime in /proc/<pid>/stat. On PostgreSQL
the CPU of the server's database sessions (backend processes) is reported too. The same is
measured for a server with no schedules, for comparison.

    .venv/bin/python bench/idle.py [--backend sqlite|postgresql|both] [--schedules 100000]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import (
    Server,
    Table,
    backends,
    cpu_seconds,
    note,
    parser,
    rss_kib,
    run,
    write_json,
)


async def measure(server: Server, args: Any) -> dict[str, Any]:
    """Sample an idle server for args.duration seconds."""
    await asyncio.sleep(args.settle)
    pid = server.pid
    db0 = server.db_cpu(server.db_session_pids())
    rss = [rss_kib(pid)]
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    while time.monotonic() - t0 < args.duration:
        await asyncio.sleep(1)
        rss.append(rss_kib(pid))
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    db1 = server.db_cpu(set(db0) | set(server.db_session_pids()))
    db_cpu = sum(v - db0.get(p, 0.0) for p, v in db1.items())
    return {
        "rss_start_mib": rss[0] / 1024,
        "rss_end_mib": rss[-1] / 1024,
        "rss_max_mib": max(rss) / 1024,
        "cpu_pct": 100 * cpu / elapsed,
        "cpu_s": cpu,
        "db_cpu_pct": 100 * db_cpu / elapsed if server.backend == "postgresql" else None,
        "db_sessions": len(db1) if server.backend == "postgresql" else None,
        "elapsed_s": elapsed,
    }


def gauge(metrics: str, name: str) -> float | None:
    for line in metrics.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


async def bench_backend(backend: str, n: int, args: Any) -> dict[str, Any]:
    label = f"{backend}/{n:,}"
    note(f"{label}: starting gnomon")
    server = Server(backend, "idle").start()
    job = await server.create_job("bench-idle", "site:bench")
    insert_s = 0.0
    if n:
        async with server.client() as c:
            r = await c.post(f"/v1/jobs/{job}/schedules", json={"every": "24h"})
            r.raise_for_status()
            template = r.json()["id"]
    server.stop()
    if n:
        async with server.ledger() as ledger:
            insert_s = await ledger.clone_row("schedules", template, n - 1)
        note(f"{label}: inserted {n - 1:,} schedules in {insert_s:.1f}s; restarting")
    t0 = time.monotonic()
    server.start()
    startup = time.monotonic() - t0
    note(
        f"{label}: ready in {startup:.1f}s; settling {args.settle:g}s, sampling {args.duration:g}s"
    )
    result = await measure(server, args)
    metrics = server.metrics_text()
    async with server.ledger() as ledger:
        runs = await ledger.count_runs(job)
    server.stop()
    return {
        "backend": backend,
        "schedules": n,
        "insert_s": insert_s,
        "startup_s": startup,
        "schedules_gauge": gauge(metrics, "gnomon_schedules"),
        "runs_created": runs,
        **result,
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--schedules", type=int, default=100_000)
    p.add_argument("--duration", type=float, default=30, help="seconds sampled")
    p.add_argument("--settle", type=float, default=5, help="seconds after ready before sampling")
    p.add_argument("--no-empty", action="store_true", help="skip the comparison with 0 schedules")
    args = p.parse_args()
    sizes = [args.schedules] if args.no_empty else [args.schedules, 0]
    results = [await bench_backend(b, n, args) for b in backends(args) for n in sizes]
    t = Table(
        f"idle server: RSS and CPU over {args.duration:g}s (after {args.settle:g}s settling)",
        [f"{r['backend']} / {r['schedules']:,} sched." for r in results],
    )
    t.add("schedules (gnomon_schedules gauge)", [r["schedules_gauge"] for r in results], 0)
    t.add("direct insert time (s)", [r["insert_s"] if r["schedules"] else None for r in results])
    t.add("startup to ready (s)", [r["startup_s"] for r in results], 1)
    t.add("RSS at start (MiB)", [r["rss_start_mib"] for r in results], 1)
    t.add("RSS at end (MiB)", [r["rss_end_mib"] for r in results], 1)
    t.add("RSS max (MiB)", [r["rss_max_mib"] for r in results], 1)
    t.add("server CPU (% of 1 core)", [r["cpu_pct"] for r in results], 2)
    t.add("server CPU (s)", [r["cpu_s"] for r in results], 2)
    t.add("PostgreSQL sessions", [r["db_sessions"] for r in results])
    t.add("PostgreSQL sessions CPU (%)", [r["db_cpu_pct"] for r in results], 2)
    t.add("runs created (should be 0)", [r["runs_created"] for r in results])
    t.print()
    write_json(args, "idle", results)


if __name__ == "__main__":
    run(main)
