"""The Slurm executor on the one-node cluster of scripts/slurm.sh.

1. Submission overhead: N runs through gnomon (one `runs:batch`, until every run carries its
   Slurm job id) against a bare loop of N `sbatch --parsable` calls of the same script.
2. Completion latency: jobs whose last act is to print the time; how long after that the run
   shows `succeeded` in gnomon (default settings: one squeue per 0.5 s).

    .venv/bin/python bench/slurm.py [--backend sqlite|postgresql|both] [--jobs 200]
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from harness import Server, Table, backends, note, parser, run, temp_dir, write_json

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """#!/bin/sh
echo "job $1"
date +%s.%N
"""


def cluster() -> dict[str, str]:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "slurm.sh")], capture_output=True, text=True, check=True
    ).stdout
    conf = [ln for ln in out.splitlines() if ln.startswith("SLURM_CONF=")][-1].split("=", 1)[1]
    return {**os.environ, "SLURM_CONF": conf}


def drain(env: dict[str, str], timeout: float = 300) -> None:
    """Wait until the cluster has no pending or running job."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-t", "PD,R,CG"], env=env, capture_output=True)
        if not out.stdout.strip():
            return
        time.sleep(0.2)
    raise RuntimeError("the cluster did not drain")


def bare_loop(env: dict[str, str], script: Path, out_dir: Path, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        subprocess.run(
            ["sbatch", "--parsable", f"--output={out_dir}/bare-{i}.out", str(script), str(i)],
            env=env,
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - t0


async def bench_backend(backend: str, args: Any, env: dict[str, str], script: Path) -> dict:
    out_dir = temp_dir("slurm-out")
    drain(env)
    bare = statistics.median(bare_loop(env, script, out_dir, args.jobs) for _ in range(args.rounds))
    note(f"{backend}: bare sbatch loop of {args.jobs}: {bare:.2f}s")
    server = Server(
        backend, "slurm", GNOMON_SLURM_ENABLED="true", GNOMON_SLURM_CONF=env["SLURM_CONF"]
    ).start()
    action = {"type": "shell", "command": [str(script), "{n}"], "argv_params": True}
    times = []
    async with server.client() as c, server.ledger() as ledger:
        r = await c.post("/v1/jobs", json={"name": "bench", "action": action, "executor": "slurm"})
        job = r.json()["id"]
        for _ in range(args.rounds):
            drain(env)
            body = {"job": job, "runs": [{"params": {"n": i}} for i in range(args.jobs)]}
            t0 = time.perf_counter()
            r = await c.post("/v1/runs:batch", json=body)
            ids = r.json()["ids"]
            while True:
                n = await ledger.scalar(
                    "SELECT count(*) FROM runs WHERE job_id = ? AND (external_id IS NOT NULL "
                    "OR state IN ('failed', 'lost')) AND id >= ?",
                    job,
                    min(ids),
                )
                if n >= args.jobs:
                    break
                await asyncio.sleep(0.01)
            times.append(time.perf_counter() - t0)
        gnomon = statistics.median(times)
        note(f"{backend}: gnomon submitted {args.jobs} in {gnomon:.2f}s")
        # Completion latency: one job at a time, its last line is the time it ended.
        drain(env)
        lags = []
        for i in range(args.latency_jobs):
            r = await c.post(f"/v1/jobs/{job}/runs", json={"params": {"n": f"lat{i}"}})
            run_id = r.json()["id"]
            while True:
                got = await c.get(f"/v1/runs/{run_id}")
                if got.json()["state"] in ("succeeded", "failed", "lost", "timed_out"):
                    break
                await asyncio.sleep(0.02)
            row = await ledger.rows("SELECT finished_at, output FROM runs WHERE id = ?", run_id)
            finished_at, output = row[0]
            ended = float(output.strip().splitlines()[-1])
            lags.append(finished_at - ended)
    server.stop()
    return {
        "backend": backend,
        "jobs": args.jobs,
        "bare_s": bare,
        "gnomon_s": gnomon,
        "overhead_pct": 100 * (gnomon / bare - 1),
        "lag_median_s": statistics.median(lags),
        "lag_max_s": max(lags),
    }


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--jobs", type=int, default=200)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--latency-jobs", type=int, default=10)
    p.set_defaults(backend="sqlite")
    args = p.parse_args()
    env = cluster()
    script = temp_dir("slurm-script") / "job.sh"
    script.write_text(SCRIPT)
    script.chmod(0o755)
    results = [await bench_backend(b, args, env, script) for b in backends(args)]
    t = Table(
        f"Slurm executor: {args.jobs} jobs submitted (median of {args.rounds}), one-node cluster",
        [r["backend"] for r in results],
    )
    t.add(f"bare sbatch loop, {args.jobs} jobs (s)", [r["bare_s"] for r in results], 2)
    t.add("gnomon runs:batch → all have a Slurm job id (s)", [r["gnomon_s"] for r in results], 2)
    t.add("gnomon overhead over the bare loop (%)", [r["overhead_pct"] for r in results], 1)
    t.add("job ended → run succeeded, median (s)", [r["lag_median_s"] for r in results], 2)
    t.add("job ended → run succeeded, max (s)", [r["lag_max_s"] for r in results], 2)
    t.print()
    write_json(args, "slurm", results)


if __name__ == "__main__":
    run(main)
