"""Noop runs end to end: submit N runs (executor `local`), wait until all have `succeeded`.

The server runs with default settings (only the log level is lowered). N runs are submitted
through `POST /v1/runs:batch` (chunks of --chunk); the clock starts before the first submission
and stops when a count in the database (polled every 100 ms) shows all N `succeeded`.

    .venv/bin/python bench/e2e_noop.py [--backend sqlite|postgresql|both] [--runs 20000]
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from harness import Server, Table, backends, cpu_seconds, note, parser, run, write_json


async def bench_backend(backend: str, args: Any) -> dict[str, Any]:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "e2e").start()
    job = await server.create_job("bench-e2e-noop", "local")
    chunks = [min(args.chunk, args.runs - i) for i in range(0, args.runs, args.chunk)]
    bodies = [
        orjson.dumps({"job": job, "runs": [{"params": {"n": i}} for i in range(n)]}) for n in chunks
    ]
    headers = {"Content-Type": "application/json"}
    progress: list[tuple[float, int]] = []
    async with server.client(timeout=300) as client, server.ledger() as ledger:
        cpu0 = cpu_seconds(server.pid)
        db0 = server.db_cpu(server.db_session_pids())
        t0 = time.monotonic()
        for body in bodies:
            r = await client.post("/v1/runs:batch", content=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"{backend}: batch failed: {r.status_code} {r.text[:300]}")
        submitted = time.monotonic() - t0
        note(f"{backend}: {args.runs:,} runs submitted in {submitted:.2f}s")
        done = 0
        deadline = t0 + args.timeout
        last_note = last_change = t0
        stalled = False
        while time.monotonic() < deadline:
            n = await ledger.count_runs(job, "succeeded")
            now = time.monotonic()
            if n != done:
                done, last_change = n, now
            progress.append((now - t0, done))
            if done >= args.runs:
                break
            if now - last_change > args.stall:
                stalled = True
                note(f"{backend}: no run succeeded for {args.stall:g}s: giving up")
                break
            if now - last_note >= 5:
                note(f"{backend}: {done:,}/{args.runs:,} succeeded after {now - t0:.1f}s")
                last_note = now
            await asyncio.sleep(0.1)
        elapsed = time.monotonic() - t0
        cpu = cpu_seconds(server.pid) - cpu0
        db1 = server.db_cpu(set(db0) | set(server.db_session_pids()))
        db_cpu = sum(v - db0.get(p, 0.0) for p, v in db1.items())
        states = dict(
            await ledger.rows(
                "SELECT state, count(*) FROM runs WHERE job_id = ? GROUP BY state", job
            )
        )
        first = await ledger.rows(
            "SELECT min(started_at), max(finished_at), min(created_at) FROM runs WHERE job_id = ?",
            job,
        )
    server.stop()
    errors = [ln for ln in server.log().splitlines() if "Error" in ln or "error" in ln]
    complete = done >= args.runs
    t_first_start, t_last_finish, t_first_created = first[0]
    return {
        "backend": backend,
        "runs": args.runs,
        "complete": complete,
        "elapsed_s": elapsed,
        "runs_per_s": done / elapsed,
        "submit_s": submitted,
        "first_start_s": t_first_start - t_first_created if t_first_start else None,
        "ledger_span_s": (t_last_finish - t_first_created) if t_last_finish else None,
        "half_done_s": next((t for t, n in progress if n >= args.runs / 2), None),
        "server_cpu_pct": 100 * cpu / elapsed,
        "db_cpu_pct": 100 * db_cpu / elapsed if backend == "postgresql" else None,
        "states": states,
        "stalled": stalled,
        "last_server_error": errors[-1][:300] if errors else None,
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=20_000)
    p.add_argument("--chunk", type=int, default=10_000, help="runs per runs:batch request")
    p.add_argument("--timeout", type=float, default=600, help="give up after this many seconds")
    p.add_argument("--stall", type=float, default=30, help="give up after this long w/o progress")
    args = p.parse_args()
    results = [await bench_backend(b, args) for b in backends(args)]
    t = Table(
        f"noop runs end to end: {args.runs:,} runs via runs:batch (chunks of {args.chunk:,}), "
        "executor local, default settings",
        [r["backend"] for r in results],
    )
    t.add("runs/s (submit → all succeeded)", [r["runs_per_s"] for r in results], 0)
    t.add("all succeeded", [r["complete"] for r in results])
    t.add("gave up: no progress", ["yes" if r["stalled"] else "no" for r in results])
    t.add("time to all succeeded (s)", [r["elapsed_s"] for r in results], 2)
    t.add("time to half succeeded (s)", [r["half_done_s"] for r in results], 2)
    t.add("submission time (s)", [r["submit_s"] for r in results], 2)
    t.add("first run started after (s)", [r["first_start_s"] for r in results], 3)
    t.add("ledger: first created → last finished (s)", [r["ledger_span_s"] for r in results], 2)
    t.add("server CPU (% of 1 core)", [r["server_cpu_pct"] for r in results], 0)
    t.add("PostgreSQL sessions CPU (%)", [r["db_cpu_pct"] for r in results], 0)
    t.add(
        "final states",
        [", ".join(f"{k}={v}" for k, v in sorted(r["states"].items())) for r in results],
    )
    t.print()
    for r in results:
        if r["last_server_error"] and not r["complete"]:
            print(f"{r['backend']}: last error in the server log: {r['last_server_error']}")
    write_json(args, "e2e_noop", results)
    if not all(r["complete"] for r in results):
        raise SystemExit("not every run succeeded in time")


if __name__ == "__main__":
    run(main)
