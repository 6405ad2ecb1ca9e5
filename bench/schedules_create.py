"""Schedule creation (`POST /v1/jobs/{id}/schedules`) under wrk, against a bare baseline.

Like submit.py, with the body `{"every":"1h"}`: every request makes a schedule (durable when
answered; concurrent creations share one commit). The baseline is the same bare Starlette app
parsing the same body. Afterwards the schedules in the database must cover every 2xx answer.

    .venv/bin/python bench/schedules_create.py [--backend sqlite|postgresql|both] [--duration 10]
"""

from __future__ import annotations

from harness import Table, backends, run, temp_dir, write_json
from submit import ensure_wrk, load_gnomon, run_baseline, wrk_parser

BODY = '{"every":"1h"}'


async def main() -> None:
    p = wrk_parser(__doc__.split("\n\n")[0], duration=5, warmup=1, connections=32)
    args = p.parse_args()
    wrk_bin = ensure_wrk()
    work = temp_dir("schedules-create")
    outcomes = [run_baseline(wrk_bin, work, args, BODY)]
    for backend in backends(args):
        route = "/v1/jobs/{job}/schedules"
        outcomes.append(await load_gnomon(backend, "schedules", route, BODY, wrk_bin, work, args))
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
