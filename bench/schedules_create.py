"""Schedule creation (`POST /v1/jobs/{id}/schedules`) under wrk, against a bare baseline.

Like submit.py, with the body `{"every":"1h"}`: every request makes a schedule (durable when
answered; concurrent creations share one commit). The baseline is the same bare Starlette app
parsing the same body. Afterwards the schedules in the database must cover every 2xx answer.

    .venv/bin/python bench/schedules_create.py [--backend sqlite|postgresql|both] [--duration 10]
"""

from __future__ import annotations

from typing import Any

from harness import Server, Table, backends, note, parser, run, temp_dir, write_json
from submit import Outcome, durable_load, ensure_wrk, lua_script, run_baseline

BODY = '{"every":"1h"}'


async def run_gnomon(backend: str, wrk_bin: str, work: Any, args: Any) -> Outcome:
    note(f"{backend}: starting gnomon")
    server = Server(backend, "schedules_create").start()
    job = await server.create_job("bench-schedules", "site:bench")
    sql = "SELECT count(*) FROM schedules WHERE job_id = ?"

    async def count(ledger: Any) -> int:
        return int(await ledger.scalar(sql, job))

    try:
        return await durable_load(
            server,
            backend,
            f"/v1/jobs/{job}/schedules",
            lua_script(work, backend, server.token, BODY),
            count,
            wrk_bin,
            args,
        )
    finally:
        server.stop()


async def main() -> None:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=5, help="seconds of measured load")
    p.add_argument("--warmup", type=float, default=1, help="seconds of load before measuring")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores are shared)")
    args = p.parse_args()
    wrk_bin = ensure_wrk()
    work = temp_dir("schedules-create")
    outcomes = [run_baseline(wrk_bin, work, args, BODY)]
    for backend in backends(args):
        outcomes.append(await run_gnomon(backend, wrk_bin, work, args))
    base = outcomes[0].wrk.rps
    t = Table(
        f"schedule creation: POST /v1/jobs/{{id}}/schedules — wrk -t{args.threads} "
        f"-c{args.connections} -d{args.duration:g}s",
        [o.target if o.target == "baseline" else f"gnomon-{o.target}" for o in outcomes],
    )
    t.add("schedules/s (2xx)", [o.wrk.rps for o in outcomes], 0)
    t.add("ratio to baseline", [o.wrk.rps / base for o in outcomes], 3)
    t.add("non-2xx responses", [o.wrk.status_errors for o in outcomes])
    t.add("latency p50 (ms)", [o.wrk.p50_us / 1000 for o in outcomes], 2)
    t.add("latency p99 (ms)", [o.wrk.p99_us / 1000 for o in outcomes], 2)
    t.add("server CPU (% of 1 core)", [o.server_cpu_pct for o in outcomes], 0)
    t.add("schedules in database (new)", [o.ledger_new for o in outcomes])
    t.add("every 2xx durable", [o.durable for o in outcomes])
    t.print()
    write_json(args, "schedules_create", [{"target": o.target, "rps": o.wrk.rps} for o in outcomes])
    if any(o.durable is False for o in outcomes):
        raise SystemExit("durability check failed: the database lacks schedules answered 201")


if __name__ == "__main__":
    run(main)
