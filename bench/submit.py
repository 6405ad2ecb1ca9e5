"""Single-run HTTP submissions (`POST /v1/jobs/{id}/runs`) under wrk, against a bare baseline.

For each target — a bare Starlette app (bench/baseline_app.py, same uvicorn options as gnomon),
gnomon on SQLite, gnomon on PostgreSQL — wrk posts `{"params":{"n":1}}` over N connections for
D seconds (after a short warm-up). The job's executor is `site:bench`, so nothing consumes the
runs: this measures submission alone. Afterwards the runs in the ledger (counted in the
database) must cover every 2xx response wrk saw; the surplus can only be requests still in
flight when wrk stopped (at most one per connection).

    .venv/bin/python bench/submit.py [--backend sqlite|postgresql|both] [--duration 10]
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness import (
    BENCH_DIR,
    HOST,
    PYTHON,
    Ledger,
    Server,
    Table,
    backends,
    cpu_seconds,
    free_port,
    note,
    on_exit,
    parser,
    run,
    spawn,
    stop_process,
    temp_dir,
    write_json,
)

BODY = '{"params":{"n":1}}'

LUA = """
wrk.method = "POST"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"
%(auth)s
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"status_errors":%%d,"connect":%%d,' ..
    '"read":%%d,"write":%%d,"timeout":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass
class WrkResult:
    requests: int
    duration_us: int
    status_errors: int
    connect: int
    read: int
    write: int
    timeout: int
    p50_us: int
    p99_us: int
    max_us: int

    @property
    def ok(self) -> int:
        """2xx/3xx responses (wrk counts the rest as status errors); gnomon answers 201."""
        return self.requests - self.status_errors

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def rps(self) -> float:
        return self.ok / (self.duration_us / 1e6)


@dataclass
class Outcome:
    target: str
    wrk: WrkResult
    server_cpu_pct: float
    ledger_new: int | None = None
    durable: bool | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    note("wrk not found: installing it from Debian (apt-get install -y wrk)")
    env_cmd = ["env", "DEBIAN_FRONTEND=noninteractive"]
    res = subprocess.run([*env_cmd, "apt-get", "install", "-y", "-qq", "wrk"], capture_output=True)
    if res.returncode != 0:
        subprocess.run([*env_cmd, "apt-get", "update", "-qq"], capture_output=True, check=False)
        subprocess.run([*env_cmd, "apt-get", "install", "-y", "-qq", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is not installed and could not be installed")
    return found


def lua_script(work: Path, name: str, token: str | None, body: str = BODY) -> Path:
    auth = f'wrk.headers["Authorization"] = "Bearer {token}"' if token else ""
    path = work / f"{name}.lua"
    path.write_text(LUA % {"body": body, "auth": auth})
    return path


def wrk(
    wrk_bin: str, url: str, script: Path, *, threads: int, connections: int, duration: float
) -> WrkResult:
    cmd = [
        wrk_bin,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60)
    for line in res.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            return WrkResult(**json.loads(line[len("WRK_JSON ") :]))
    raise RuntimeError(f"wrk gave no summary (rc={res.returncode}):\n{res.stdout}\n{res.stderr}")


def load(wrk_bin: str, url: str, script: Path, pid: int, args: Any) -> tuple[WrkResult, float]:
    """Warm up, then the measured run; returns wrk's result and the server's CPU% of a core."""
    if args.warmup > 0:
        wrk(
            wrk_bin,
            url,
            script,
            threads=args.threads,
            connections=args.connections,
            duration=args.warmup,
        )
    cpu0, t0 = cpu_seconds(pid), time.monotonic()
    result = wrk(
        wrk_bin,
        url,
        script,
        threads=args.threads,
        connections=args.connections,
        duration=args.duration,
    )
    cpu_pct = 100 * (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
    return result, cpu_pct


def run_baseline(wrk_bin: str, work: Path, args: Any, body: str = BODY) -> Outcome:
    port = free_port()
    proc = spawn(
        [PYTHON, str(BENCH_DIR / "baseline_app.py"), "--port", str(port)], log=work / "baseline.log"
    )
    on_exit(lambda: stop_process(proc))
    base = f"http://{HOST}:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("baseline app did not start") from None
            time.sleep(0.1)
    note("baseline: wrk")
    result, cpu = load(
        wrk_bin,
        base + "/v1/jobs/bench/runs",
        lua_script(work, "baseline", None, body),
        proc.pid,
        args,
    )
    stop_process(proc)
    return Outcome("baseline", result, cpu)


async def load_gnomon(
    backend: str, table: str, route: str, body: str, wrk_bin: str, work: Path, args: Any
) -> Outcome:
    """Start gnomon with a job on `site:bench`, wrk `POST route` (`{job}` in it) with `body`
    (after a warm-up), and check that `table` gained a row for every 2xx answer."""
    note(f"{backend}: starting gnomon")
    server = Server(backend, f"wrk_{table}").start()
    try:
        job = await server.create_job(f"bench-{table}", "site:bench")
        script = lua_script(work, f"{backend}-{table}", server.token, body)
        sql = f"SELECT count(*) FROM {table} WHERE job_id = ?"

        async def count(ledger: Ledger) -> int:
            return int(await ledger.scalar(sql, job))

        return await durable_load(
            server, backend, route.format(job=job), script, count, wrk_bin, args
        )
    finally:
        server.stop()


def wrk_parser(description: str, *, duration: float, warmup: float, connections: int) -> Any:
    p = parser(description)
    p.add_argument("--duration", type=float, default=duration, help="seconds of measured load")
    p.add_argument("--warmup", type=float, default=warmup, help="seconds of load before measuring")
    p.add_argument("--connections", type=int, default=connections)
    p.add_argument("--threads", type=int, default=1, help="wrk threads (2 cores are shared)")
    return p


async def durable_load(
    server: Server,
    target: str,
    path: str,
    script: Path,
    count: Callable[[Ledger], Awaitable[int]],
    wrk_bin: str,
    args: Any,
) -> Outcome:
    """wrk against `path` (after a warm-up); `count` reads how many rows the requests made,
    before and after, to check every 2xx answer is in the database."""
    url = f"{server.url}{path}"
    async with server.ledger() as ledger:
        note(f"{target}: wrk")
        if args.warmup > 0:
            wrk(
                wrk_bin,
                url,
                script,
                threads=args.threads,
                connections=args.connections,
                duration=args.warmup,
            )
        await asyncio.sleep(0.5)
        before = await count(ledger)
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        result = wrk(
            wrk_bin,
            url,
            script,
            threads=args.threads,
            connections=args.connections,
            duration=args.duration,
        )
        cpu = 100 * (cpu_seconds(server.pid) - cpu0) / (time.monotonic() - t0)
        # let requests still in flight when wrk stopped finish, then count
        after, stable_since = -1, time.monotonic()
        while time.monotonic() - stable_since < 1.0:
            await asyncio.sleep(0.25)
            now = await count(ledger)
            if now != after:
                after, stable_since = now, time.monotonic()
    new = after - before
    slack = args.connections * args.threads + result.socket_errors
    durable = result.ok <= new <= result.ok + slack
    return Outcome(
        target,
        result,
        cpu,
        ledger_new=new,
        durable=durable,
        extra={"in_flight_at_stop": new - result.ok},
    )


async def compare(name: str, title: str, route: str, table: str, body: str, args: Any) -> None:
    """The baseline, then gnomon on each backend, under the same wrk load on `route` (`{job}`
    in it) with `body`; prints the table, keeps the JSON, and fails if `table` lacks a row for
    some 2xx answer."""
    wrk_bin = ensure_wrk()
    work = temp_dir(name)
    outcomes = [run_baseline(wrk_bin, work, args, body)]
    for backend in backends(args):
        outcomes.append(await load_gnomon(backend, table, route, body, wrk_bin, work, args))

    base = outcomes[0].wrk.rps
    t = Table(
        f"{title} — wrk -t{args.threads} -c{args.connections} -d{args.duration:g}s",
        [o.target if o.target == "baseline" else f"gnomon-{o.target}" for o in outcomes],
    )
    t.add("requests/s (2xx)", [o.wrk.rps for o in outcomes], 0)
    t.add("ratio to baseline", [o.wrk.rps / base for o in outcomes], 3)
    t.add("2xx responses", [o.wrk.ok for o in outcomes])
    t.add("non-2xx responses", [o.wrk.status_errors for o in outcomes])
    t.add("socket errors", [o.wrk.socket_errors for o in outcomes])
    t.add("latency p50 (ms)", [o.wrk.p50_us / 1000 for o in outcomes], 2)
    t.add("latency p99 (ms)", [o.wrk.p99_us / 1000 for o in outcomes], 2)
    t.add("latency max (ms)", [o.wrk.max_us / 1000 for o in outcomes], 1)
    t.add("server CPU (% of 1 core)", [o.server_cpu_pct for o in outcomes], 0)
    t.add(f"{table} in database (new)", [o.ledger_new for o in outcomes])
    t.add("in flight at wrk stop", [o.extra.get("in_flight_at_stop") for o in outcomes])
    t.add("every 2xx durable", [o.durable for o in outcomes])
    t.print()
    write_json(
        args,
        name,
        [{**asdict(o), "rps": o.wrk.rps, "ratio": o.wrk.rps / base} for o in outcomes],
    )
    if any(o.durable is False for o in outcomes):
        raise SystemExit(f"durability check failed: {table} do not match the 2xx responses")


async def main() -> None:
    p = wrk_parser(__doc__.split("\n\n")[0], duration=10, warmup=2, connections=64)
    title = "single-run submissions: POST /v1/jobs/{id}/runs"
    await compare("submit", title, "/v1/jobs/{job}/runs", "runs", BODY, p.parse_args())


if __name__ == "__main__":
    run(main)
