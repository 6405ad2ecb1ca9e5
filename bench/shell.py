"""Shell runs end to end: N `shell: true` runs (executor `local`), beside a bare asyncio anchor.

A server with 16 workers (`GNOMON_WORKERS`) runs a job whose action is `{"type": "shell",
"command": "true"}`; N runs are submitted through `POST /v1/runs:batch`. The clock starts
before the first submission and stops when a count in the database (polled every 50 ms) shows
all N ended. From the ledger's rows: claimed → running, claimed → ended and running → ended,
p50/p99. In the same run, the anchor: this Python spawning `sh -c true` with
`asyncio.create_subprocess_exec`, 16 at a time (no server, no sandbox).

    .venv/bin/python bench/shell.py [--backend sqlite|postgresql|both] [--runs 1000]
        [--sandbox auto|bwrap|none[,...]]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from harness import Server, Table, backends, cpu_seconds, note, parser, percentile, run, write_json

ENDED = ("succeeded", "failed", "timed_out", "cancelled", "lost")


async def anchor(n: int, width: int) -> float:
    """Bare asyncio: `sh -c true`, `width` at a time; processes per second."""
    gate = asyncio.Semaphore(width)

    async def one() -> None:
        async with gate:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                "true",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            await proc.communicate()

    await asyncio.gather(*(one() for _ in range(min(n, 50))))  # warm-up
    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - t0)


async def bench_server(backend: str, sandbox: str, args: Any) -> dict[str, Any]:
    note(f"{backend}/{sandbox}: starting gnomon")
    extra = {"GNOMON_POLL_S": str(args.poll_s)} if args.poll_s else {}
    server = Server(
        backend, "shell", GNOMON_WORKERS=str(args.workers), GNOMON_SANDBOX=sandbox, **extra
    ).start()
    async with server.client(timeout=300) as client:
        r = await client.post(
            "/v1/jobs",
            json={
                "name": "bench-shell",
                "executor": "local",
                "action": {"type": "shell", "command": "true"},
            },
        )
        r.raise_for_status()
        job = r.json()["id"]
        headers = {"Content-Type": "application/json"}
        warm = orjson.dumps({"job": job, "runs": [{} for _ in range(args.warmup)]})
        body = orjson.dumps({"job": job, "runs": [{"params": {"n": i}} for i in range(args.runs)]})
        async with server.ledger() as ledger:
            if args.warmup:
                r = await client.post("/v1/runs:batch", content=warm, headers=headers)
                r.raise_for_status()
                await wait_ended(ledger, job, args.warmup, args.timeout)
            cpu0 = cpu_seconds(server.pid)
            t0 = time.monotonic()
            r = await client.post("/v1/runs:batch", content=body, headers=headers)
            r.raise_for_status()
            ids = set(r.json()["ids"])
            done = await wait_ended(ledger, job, args.warmup + args.runs, args.timeout, t0)
            elapsed = time.monotonic() - t0
            cpu = cpu_seconds(server.pid) - cpu0
            rows = await ledger.rows(
                "SELECT id, state, claimed_at, started_at, finished_at FROM runs WHERE job_id = ?",
                job,
            )
    server.stop()
    rows = [row for row in rows if row[0] in ids]
    states: dict[str, int] = {}
    for row in rows:
        states[row[1]] = states.get(row[1], 0) + 1
    timed = [row for row in rows if None not in row[2:]]
    to_running = [(s - c) * 1000 for _, _, c, s, _ in timed]
    to_end = [(f - c) * 1000 for _, _, c, _, f in timed]
    running = [(f - s) * 1000 for _, _, _, s, f in timed]
    claims = len({c for _, _, c, _, _ in timed})
    return {
        "backend": backend,
        "runs_per_claim": len(timed) / claims if claims else None,
        "in_flight": sum(to_end) / 1000 / elapsed,
        "sandbox": sandbox,
        "runs": args.runs,
        "ended": done - args.warmup,
        "runs_per_s": (done - args.warmup) / elapsed,
        "elapsed_s": elapsed,
        "claimed_running_p50_ms": percentile(to_running, 50),
        "claimed_running_p99_ms": percentile(to_running, 99),
        "claimed_ended_p50_ms": percentile(to_end, 50),
        "claimed_ended_p99_ms": percentile(to_end, 99),
        "running_ended_p50_ms": percentile(running, 50),
        "running_ended_p99_ms": percentile(running, 99),
        "server_cpu_pct": 100 * cpu / elapsed,
        "states": states,
    }


async def wait_ended(ledger: Any, job: str, n: int, timeout: float, t0: float | None = None) -> int:
    """Poll until `n` runs of `job` ended (or `timeout`); how many did."""
    t0 = time.monotonic() if t0 is None else t0
    marks = ", ".join(f"'{s}'" for s in ENDED)
    sql = f"SELECT count(*) FROM runs WHERE job_id = ? AND state IN ({marks})"
    done = 0
    while time.monotonic() - t0 < timeout:
        done = int(await ledger.scalar(sql, job))
        if done >= n:
            break
        await asyncio.sleep(0.05)
    return done


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1000)
    p.add_argument("--workers", type=int, default=16, help="GNOMON_WORKERS, and anchor width")
    p.add_argument("--warmup", type=int, default=32, help="runs before measuring")
    p.add_argument("--sandbox", default="auto", help="GNOMON_SANDBOX values, comma-separated")
    p.add_argument("--poll-s", type=float, help="GNOMON_POLL_S (default: the server's)")
    p.add_argument("--timeout", type=float, default=300, help="give up after this many seconds")
    args = p.parse_args()
    note(f"anchor: {args.runs} x sh -c true, {args.workers} at a time")
    bare = await anchor(args.runs, args.workers)
    results = [
        await bench_server(b, s, args) for b in backends(args) for s in args.sandbox.split(",")
    ]
    bare_after = await anchor(args.runs, args.workers)
    t = Table(
        f"shell runs end to end: {args.runs:,} `shell: true` runs via runs:batch, "
        f"{args.workers} workers" + (f", GNOMON_POLL_S={args.poll_s:g}" if args.poll_s else ""),
        [f"{r['backend']} sandbox={r['sandbox']}" for r in results],
    )
    t.add("runs/s (submit → all ended)", [r["runs_per_s"] for r in results], 0)
    t.add("anchor: bare asyncio `sh -c true` /s", [(bare + bare_after) / 2 for _ in results], 0)
    t.add("ratio to the anchor", [r["runs_per_s"] / ((bare + bare_after) / 2) for r in results], 2)
    t.add("claimed → running p50 (ms)", [r["claimed_running_p50_ms"] for r in results], 1)
    t.add("claimed → running p99 (ms)", [r["claimed_running_p99_ms"] for r in results], 1)
    t.add("claimed → ended p50 (ms)", [r["claimed_ended_p50_ms"] for r in results], 1)
    t.add("claimed → ended p99 (ms)", [r["claimed_ended_p99_ms"] for r in results], 1)
    t.add("running → ended p50 (ms)", [r["running_ended_p50_ms"] for r in results], 1)
    t.add("running → ended p99 (ms)", [r["running_ended_p99_ms"] for r in results], 1)
    t.add("runs in flight, mean (claimed → ended)", [r["in_flight"] for r in results], 1)
    t.add("runs per claim, mean", [r["runs_per_claim"] for r in results], 1)
    t.add("server CPU (% of 1 core)", [r["server_cpu_pct"] for r in results], 0)
    t.add(
        "final states",
        [", ".join(f"{k}={v}" for k, v in sorted(r["states"].items())) for r in results],
    )
    t.print()
    print(f"anchor before / after the servers: {bare:,.0f} / {bare_after:,.0f} per s")
    write_json(args, "shell", {"anchor_per_s": [bare, bare_after], "servers": results})
    if not all(r["states"].get("succeeded") == r["runs"] for r in results):
        raise SystemExit("not every run succeeded")


if __name__ == "__main__":
    run(main)
