"""gnomon beside its peers, measured the same way in one run: one table, and the ratios that
the project sets targets for, each marked "meets" or "below".

Peers: Celery + Redis, Procrastinate (PostgreSQL), RQ (SimpleWorker and the forking Worker),
APScheduler 3.x (cron bursts and idle memory) and a bare asyncio anchor for process spawns.
They are installed by this script into build/peers-venv from bench/peers/requirements.txt
(exact pins; created on first use, reused after, rebuilt when the file changes); their
producer and worker scripts are in bench/peers/. Workers run on loopback against the
machine's Redis (databases 13 and 14, flushed before and after) and PostgreSQL (a database of
their own, dropped after), each in a process group of its own that is killed on exit.

Per-call noop, end to end: N jobs submitted one call each (after --warmup untimed ones, so
workers are warm), from 1 client and from 16 clients, timed from the first call until the
system's own record shows all N done (polled every 20 ms). gnomon: `POST /v1/jobs/{id}/runs`
by wrk (one connection per thread, N/clients requests each) to a local `noop` job, and the
same to a `site:` job no agent polls (posting alone: the anchor of the first two ratios).

    .venv/bin/python bench/peers.py [--only gnomon,celery,...] [--jobs 2000] [--backend both]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import inspect
import json
import math
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

import celery_throughput
import idle
import schedules_lateness
from harness import (
    BENCH_DIR,
    PYTHON,
    ROOT,
    Ledger,
    Server,
    Table,
    backends,
    fresh_postgres,
    note,
    on_exit,
    parser,
    run,
    spawn,
    stop_process,
    temp_dir,
    write_json,
)
from submit import ensure_wrk

PEERS_DIR = BENCH_DIR / "peers"
VENV = ROOT / "build" / "peers-venv"
REQUIREMENTS = PEERS_DIR / "requirements.txt"
REDIS = os.environ.get("BENCH_PEERS_REDIS", "redis://127.0.0.1:6379").rstrip("/")
CELERY_URL, RQ_URL = f"{REDIS}/13", f"{REDIS}/14"
TARGETS = ("gnomon", "celery", "procrastinate", "rq", "apscheduler", "asyncio", "celery-executor")
VENV_TARGETS = {"celery", "procrastinate", "rq", "apscheduler"}
CLIENTS = (1, 16)
WORKERS = 2  # worker processes of each queue peer
POLL_S = 0.02  # the peers' producers poll their done-counts as often (bench/peers/producer.py)
STALL_S = 30.0
CELERY_WORKER = (
    "-A side_celery worker --pool solo --loglevel WARNING "
    "--without-gossip --without-mingle --without-heartbeat"
)
BODY = '{"params":{"n":1}}'

# --- results ---------------------------------------------------------------------------------


@dataclass
class Cell:
    """One measured value: a rate (/s), a time (s) or a size (MiB), with its raw details."""

    value: float | None
    unit: str
    detail: dict[str, Any] = field(default_factory=dict)

    def text(self) -> str:
        if self.value is None:
            return "—"
        if self.unit == "/s":
            return f"{self.value:,.0f}/s"
        if self.unit == "s":
            return f"{self.value:.2f} s"
        return f"{self.value:,.1f} {self.unit}"


def rate(result: dict[str, Any]) -> Cell:
    return Cell(result["per_s"], "/s", result)


Results = dict[str, Cell]

# --- the peers' virtualenv -------------------------------------------------------------------

_venv_error: str | None = None


def peers_python() -> Path:
    """build/peers-venv/bin/python with requirements.txt installed (once per version of it)."""
    global _venv_error
    if _venv_error:
        raise RuntimeError(_venv_error)
    python = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    note(f"installing the peers into {VENV.relative_to(ROOT)} (first use: a minute or so)")
    try:
        if not python.exists():
            subprocess.run([PYTHON, "-m", "venv", str(VENV)], check=True, timeout=300)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        _venv_error = f"could not install the peers into {VENV}: {exc}"
        raise RuntimeError(_venv_error) from exc
    stamp.write_text(digest)
    return python


def pinned_versions() -> dict[str, str]:
    """`name==version` lines of requirements.txt (extras dropped), lower-case names."""
    out = {}
    for line in REQUIREMENTS.read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            out[name.split("[")[0].strip().lower()] = version.strip()
    return out


def peer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    return {**env, "PYTHONPATH": str(PEERS_DIR), **extra}


# --- worker processes ------------------------------------------------------------------------


class Workers:
    """A peer's worker processes, each the leader of a process group of its own; stopped
    group-wide (SIGTERM, then SIGKILL) when the block ends and at exit, Ctrl-C included."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logs = temp_dir(f"peers-{name}")
        self.procs: list[subprocess.Popen[bytes]] = []
        on_exit(self.stop)

    def start(self, argv: list[str], env: dict[str, str]) -> None:
        log = self.logs / f"worker{len(self.procs)}.log"
        self.procs.append(spawn(argv, env=env, log=log, cwd=PEERS_DIR, start_new_session=True))

    def log_tail(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-1500:] for p in self.logs.glob("*.log"))

    def stop(self) -> None:
        procs, self.procs = self.procs, []
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # stragglers: forked work horses...
            proc.wait()

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def produce(
    script: str,
    argv: list[str],
    env: dict[str, str],
    logs: Path,
    timeout: float,
    python: Path | None = None,
    workers: Workers | None = None,
) -> dict[str, Any]:
    """Run a producer script of bench/peers/ to its end; returns the JSON it wrote."""
    tag = uuid.uuid4().hex[:8]
    out, log = logs / f"{tag}.json", logs / f"{tag}.log"
    argv = [str(python or peers_python()), str(PEERS_DIR / script), *argv, "--out", str(out)]
    proc = spawn(argv, env=env, log=log, cwd=PEERS_DIR)
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_process(proc)
        rc = -1
    if rc != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
        if workers:
            tail += "\n--- workers ---\n" + workers.log_tail()
        raise RuntimeError(f"{script} {' '.join(argv[2:4])} failed (exit {rc}):\n{tail}")
    return dict(json.loads(out.read_text()))


def producer_args(args: argparse.Namespace, clients: int, **over: Any) -> list[str]:
    """The producers' common options, from ours (`over` replaces some: jobs=, warmup=)."""
    opts = {"jobs": args.jobs, "clients": clients, "warmup": args.warmup, "timeout": args.timeout}
    return [x for k, v in {**opts, **over}.items() for x in (f"--{k}", str(v))]


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- the peers -------------------------------------------------------------------------------


def celery_peer(args: argparse.Namespace) -> Results:
    """`.delay()` of a no-op task, 2 solo-pool workers, Celery's default settings."""
    queue = f"peers-{uuid.uuid4().hex[:6]}"
    env = peer_env(PEERS_REDIS_URL=CELERY_URL, PEERS_QUEUE=queue)
    celery = str(peers_python().with_name("celery"))
    out: Results = {}
    with Workers("celery") as w:
        for i in range(WORKERS):
            argv = [celery, *CELERY_WORKER.split(), "-Q", queue, "-n", f"peers{i}-{queue}@%h"]
            w.start(argv, env)
        for c in CLIENTS:
            note(f"celery: {args.jobs:,} delay() calls from {c} client(s)")
            res = produce(
                "side_celery.py", producer_args(args, c), env, w.logs, args.timeout, workers=w
            )
            out[f"celery/{c}"] = rate(res)
    return out


def procrastinate_peer(args: argparse.Namespace) -> Results:
    """`defer_async()` of a no-op task into PostgreSQL, 2 worker processes (concurrency 1)."""
    env = peer_env(PEERS_PG_DSN=fresh_postgres("peers_procrastinate"))
    cli = [str(peers_python().with_name("procrastinate")), "--app=side_procrastinate.app"]
    apply = [*cli, "schema", "--apply"]
    schema = subprocess.run(apply, env=env, cwd=PEERS_DIR, timeout=120, capture_output=True)
    if schema.returncode != 0:
        raise RuntimeError(f"procrastinate schema --apply failed: {schema.stderr[-1500:]!r}")
    out: Results = {}
    with Workers("procrastinate") as w:
        for _ in range(WORKERS):
            w.start([*cli, "worker", "--concurrency", "1"], env)
        for c in CLIENTS:
            note(f"procrastinate: {args.jobs:,} defer_async() calls from {c} client(s)")
            argv = producer_args(args, c)
            res = produce("side_procrastinate.py", argv, env, w.logs, args.timeout, workers=w)
            out[f"procrastinate/{c}"] = rate(res)
    return out


def rq_peer(args: argparse.Namespace) -> Results:
    """`enqueue()` of a no-op job, 2 SimpleWorkers, then 2 forking Workers; the forking ones
    also take --shell-jobs jobs enqueued at once (a process per job, like shell runs)."""
    rq = str(peers_python().with_name("rq"))
    env = peer_env()
    out: Results = {}
    for kind, cls in (("simple", "rq.worker.SimpleWorker"), ("fork", "rq.worker.Worker")):
        queue = f"peers-{kind}-{uuid.uuid4().hex[:6]}"
        with Workers(f"rq-{kind}") as w:
            for _ in range(WORKERS):
                w.start([rq, "worker", "--url", RQ_URL, "-w", cls, "--quiet", queue], env)
            base = ["--url", RQ_URL, "--queue", queue]
            for c in CLIENTS:
                note(f"rq-{kind}: {args.jobs:,} enqueue() calls from {c} client(s)")
                argv = [*base, *producer_args(args, c)]
                res = produce("side_rq.py", argv, env, w.logs, args.timeout, workers=w)
                out[f"rq-{kind}/{c}"] = rate(res)
            if kind == "fork":
                note(f"rq-fork: {args.shell_jobs:,} jobs enqueued at once")
                argv = [*base, "--bulk", *producer_args(args, 1, jobs=args.shell_jobs, warmup=0)]
                res = produce("side_rq.py", argv, env, w.logs, args.timeout, workers=w)
                out["rq-fork/bulk"] = rate(res)
    return out


def apscheduler_peer(args: argparse.Namespace) -> Results:
    logs = temp_dir("peers-apscheduler")
    env = peer_env()
    note(f"apscheduler: {args.cron_jobs:,} cron jobs due the same second")
    argv = ["burst", "--jobs", str(args.cron_jobs), "--lead", str(args.cron_lead)]
    burst = produce("side_apscheduler.py", argv, env, logs, args.cron_lead + 120)
    note(f"apscheduler: idle with {args.idle_jobs:,} jobs")
    argv = ["idle", "--jobs", str(args.idle_jobs), "--settle", str(args.idle_settle)]
    argv += ["--duration", str(args.idle_duration)]
    rest = produce("side_apscheduler.py", argv, env, logs, args.idle_duration + 120)
    return {
        "apscheduler/cron": Cell(burst["all_s"], "s", burst),
        "apscheduler/idle": Cell(rest["rss_max_mib"], "MiB", rest),
    }


def asyncio_anchor(args: argparse.Namespace) -> Results:
    note(f"asyncio: {args.shell_jobs:,} spawns of `sh -c true`, 16 at a time")
    argv = ["--jobs", str(args.shell_jobs), "--parallel", "16"]
    logs = temp_dir("peers-asyncio")
    res = produce("asyncio_spawn.py", argv, dict(os.environ), logs, args.timeout, Path(PYTHON))
    return {"asyncio/shell": rate(res)}


def celery_twin(args: argparse.Namespace) -> Results:
    """Plain Celery configured like gnomon's Celery executor, on workers started exactly as
    bench/celery_throughput.py starts gnomon's (2 x prefork 4, same Celery install)."""
    queue = f"twin-{uuid.uuid4().hex[:6]}"
    env = peer_env(PEERS_REDIS_URL=CELERY_URL, PEERS_QUEUE=queue, PEERS_CELERY_PROFILE="executor")
    logs = temp_dir("peers-twin")
    procs = celery_throughput.workers("side_celery", queue, env, logs)
    try:
        note(f"plain Celery (executor twin): {args.jobs:,} delay() calls")
        argv = producer_args(args, 1, warmup=0)  # cold, as gnomon's side below
        res = produce("side_celery.py", argv, env, logs, args.timeout, python=Path(PYTHON))
    finally:
        for proc in procs:
            stop_process(proc)
    return {"celery-executor/plain": rate(res)}


async def gnomon_celery_executor(backend: str, args: argparse.Namespace) -> Results:
    note(f"gnomon-{backend}: Celery executor, {args.jobs:,} runs")
    seconds = await celery_throughput.gnomon(backend, args.jobs)
    res = {"jobs": args.jobs, "seconds": seconds, "per_s": args.jobs / seconds}
    return {f"gnomon-{backend}/celery-executor": rate(res)}


# --- gnomon ----------------------------------------------------------------------------------

WRK_LUA = """
wrk.method = "POST"
wrk.body = '%(body)s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(token)s"
local limit, answered = %(limit)d, 0
function response(status, headers, body)
  answered = answered + 1
  if answered >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  io.write(string.format('WRK_JSON {"requests":%%d,"status_errors":%%d,"socket_errors":%%d,' ..
    '"p50_us":%%d,"p99_us":%%d}\\n', summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class Jobs:
    site: str
    noop: str
    shell: str
    cron: str


class Gnomon:
    """The measurements on one running server."""

    def __init__(self, server: Server, ledger: Ledger, wrk: str, args: argparse.Namespace):
        self.server, self.ledger, self.wrk, self.args = server, ledger, wrk, args
        self.key = f"gnomon-{server.backend}"
        self.work = temp_dir(f"peers-wrk-{server.backend}")

    async def create_jobs(self) -> Jobs:
        s = self.server
        async with s.client() as c:
            action = {"type": "shell", "command": "true"}
            spec = {"name": "peers-shell", "executor": "local", "action": action}
            r = await c.post("/v1/jobs", json=spec)
            r.raise_for_status()
            shell = r.json()["id"]
        return Jobs(
            site=await s.create_job("peers-site", "site:peers"),
            noop=await s.create_job("peers-noop", "local"),
            shell=shell,
            cron=await s.create_job("peers-cron", "local"),
        )

    async def count(self, job: str, state: str | None, slot: int | None = None) -> int:
        sql, params = "SELECT count(*) FROM runs WHERE job_id = ?", [job]
        if state:
            sql, params = sql + " AND state = ?", [*params, state]
        if slot is not None:
            sql, params = sql + " AND scheduled_for = ?", [*params, slot]
        return int(await self.ledger.scalar(sql, *params))

    async def wait_count(
        self,
        job: str,
        state: str | None,
        target: int,
        slot: int | None = None,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """Poll until `target` runs of `job` (in `state`) exist; fail on a stall or timeout."""
        deadline = time.monotonic() + self.args.timeout
        last, since = -1, time.monotonic()
        while (n := await self.count(job, state, slot)) < target:
            now = time.monotonic()
            if n != last:
                last, since = n, now
            if now > deadline or now - since > STALL_S or not alive():
                states = await self.ledger.rows(
                    "SELECT state, count(*) FROM runs WHERE job_id = ? GROUP BY state", job
                )
                raise RuntimeError(
                    f"{self.key}: {n} of {target} after {now - since:.0f}s "
                    f"without progress; states {dict(states)}"
                )
            await asyncio.sleep(POLL_S)

    async def post_until_done(self, job: str, state: str | None, clients: int, per: int) -> Cell:
        """wrk: `clients` connections (a thread each) post `per` runs each, one at a time;
        timed until the ledger holds all of them (in `state`)."""
        n = clients * per
        target = await self.count(job, state) + n
        script = self.work / f"{uuid.uuid4().hex[:8]}.lua"
        script.write_text(WRK_LUA % {"body": BODY, "token": self.server.token, "limit": per})
        log = script.with_suffix(".log")
        url = f"{self.server.url}/v1/jobs/{job}/runs"
        limit = f"-d{int(self.args.timeout) + 60}s"  # never reached: SIGINT below
        argv = [self.wrk, f"-t{clients}", f"-c{clients}", limit, "--timeout", "10s"]
        argv += ["-s", str(script), url]
        t0 = time.perf_counter()
        proc = spawn(argv, log=log)
        try:
            await self.wait_count(job, state, target, alive=lambda: proc.poll() is None)
            seconds = time.perf_counter() - t0
        finally:
            proc.send_signal(signal.SIGINT)  # every wrk thread has stopped by now: report
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(30)
            stop_process(proc)
        summary = wrk_summary(log)
        if summary["status_errors"] or summary["socket_errors"] or summary["requests"] != n:
            raise RuntimeError(f"{self.key}: wrk saw errors or a wrong count: {summary}")
        return Cell(
            n / seconds, "/s", {"runs": n, "clients": clients, "seconds": seconds, **summary}
        )

    async def post(self, job: str, state: str | None, clients: int) -> Cell:
        """Warm up (one connection, --warmup runs, untimed), then N runs from `clients`."""
        if self.args.warmup:
            await self.post_until_done(job, state, 1, self.args.warmup)
        return await self.post_until_done(job, state, clients, self.args.jobs // clients)

    async def batch(self, job: str, n: int) -> Cell:
        """n runs in one `POST /v1/runs:batch`, timed until all have succeeded."""
        target = await self.count(job, "succeeded") + n
        body = orjson.dumps({"job": job, "runs": [{}] * n})
        headers = {"Content-Type": "application/json"}
        async with self.server.client(timeout=self.args.timeout) as c:
            t0 = time.perf_counter()
            r = await c.post("/v1/runs:batch", content=body, headers=headers)
            if r.status_code != 201:
                raise RuntimeError(f"{self.key}: runs:batch {r.status_code} {r.text[:300]}")
            submit_s = time.perf_counter() - t0
            await self.wait_count(job, "succeeded", target)
        seconds = time.perf_counter() - t0
        return Cell(n / seconds, "/s", {"runs": n, "seconds": seconds, "submit_s": submit_s})

    async def cron_burst(self, job: str, n: int) -> Cell:
        """n cron schedules all due at the same second T0 (a few through the API, the rest
        copies in the database, as bench/schedules_lateness.py does); timed from T0 until
        every run of slot T0 has finished."""
        t0 = math.ceil(time.time() + self.args.cron_lead)
        spec = {"cron": f"{t0 % 60} * * * * *"}
        n_api = min(n, 100)
        ids, _ = await schedules_lateness.create_schedules(self.server, job, spec, n_api, 8)
        await self.ledger.clone_row("schedules", ids[0], n - n_api)
        margin = t0 - time.time()
        await asyncio.sleep(max(0.0, margin))
        await self.wait_count(job, "succeeded", n, slot=t0)
        rows = await self.ledger.rows(
            "SELECT started_at - scheduled_for, finished_at - scheduled_for, "
            "created_at - scheduled_for FROM runs WHERE job_id = ? AND scheduled_for = ?",
            job,
            t0,
        )
        started = sorted(float(r[0]) for r in rows)
        detail = {
            "schedules": n,
            "margin_s": margin,
            "runs": len(rows),
            "start_p50_s": started[len(started) // 2],
            "start_max_s": started[-1],
            "created_max_s": max(float(r[2]) for r in rows),
        }
        return Cell(max(float(r[1]) for r in rows), "s", detail)


def wrk_summary(log: Path) -> dict[str, Any]:
    text = log.read_text(errors="replace") if log.exists() else ""
    for line in text.splitlines():
        if line.startswith("WRK_JSON "):
            return dict(json.loads(line[len("WRK_JSON ") :]))
    raise RuntimeError(f"wrk gave no summary:\n{text[-1500:]}")


async def gnomon_rows(backend: str, args: argparse.Namespace, wrk: str) -> Results:
    """Per-call noop and posting (1 and 16 clients), runs:batch, shell and a cron burst, all on
    one server with default settings."""
    note(f"gnomon-{backend}: starting")
    server = Server(backend, "peers").start()
    out: Results = {}
    try:
        async with server.ledger() as ledger:
            g = Gnomon(server, ledger, wrk, args)
            jobs = await g.create_jobs()
            for c in CLIENTS:
                note(f"{g.key}: {args.jobs:,} posts from {c} client(s), unconsumed then noop")
                out[f"{g.key}/site/{c}"] = await g.post(jobs.site, None, c)
                out[f"{g.key}/noop/{c}"] = await g.post(jobs.noop, "succeeded", c)
            note(f"{g.key}: runs:batch of {args.jobs * 10:,} noop runs")
            out[f"{g.key}/batch"] = await g.batch(jobs.noop, args.jobs * 10)
            note(f"{g.key}: runs:batch of {args.shell_jobs:,} `shell: true` runs")
            out[f"{g.key}/shell"] = await g.batch(jobs.shell, args.shell_jobs)
            note(f"{g.key}: {args.cron_jobs:,} cron schedules due the same second")
            out[f"{g.key}/cron"] = await g.cron_burst(jobs.cron, args.cron_jobs)
    finally:
        server.stop()
    return out


async def gnomon_idle(backend: str, args: argparse.Namespace) -> Results:
    ns = argparse.Namespace(settle=args.idle_settle, duration=args.idle_duration)
    res = await idle.bench_backend(backend, args.idle_jobs, ns)
    return {f"gnomon-{backend}/idle": Cell(res["rss_max_mib"], "MiB", res)}


# --- the table -------------------------------------------------------------------------------


# The table: "key | label" rows in order; "#" starts a section heading, "@" a row repeated per
# backend ({b}: its key, {B}: its name); {v[..]} are the pinned versions, {a.x} the options.
ROWS = """
# per-call noop end to end: {a.jobs:,} jobs, one call each, workers warm (jobs/s)
celery/1 | Celery {v[celery]} + Redis, `.delay()`, 2 solo workers — 1 client
celery/16 | Celery, the same — 16 clients
procrastinate/1 | Procrastinate {v[procrastinate]}, `defer()` (durable), 2 workers — 1 client
procrastinate/16 | Procrastinate, the same — 16 clients
rq-simple/1 | RQ {v[rq]} SimpleWorker, `enqueue()`, 2 workers — 1 client
rq-simple/16 | RQ SimpleWorker, the same — 16 clients
rq-fork/1 | RQ {v[rq]} forking Worker, `enqueue()`, 2 workers — 1 client
rq-fork/16 | RQ forking Worker, the same — 16 clients
@gnomon-{b}/noop/1 | gnomon {B}, POST per run, local `noop` — 1 client
@gnomon-{b}/site/1 | gnomon {B}, POST per run, `site:` job nothing consumes — 1 client
@gnomon-{b}/noop/16 | gnomon {B}, POST per run, local `noop` — 16 clients
@gnomon-{b}/site/16 | gnomon {B}, POST per run, `site:` job nothing consumes — 16 clients
# bulk, and a process per job (jobs/s)
@gnomon-{b}/batch | gnomon {B}, `runs:batch` of {n_batch:,} noop runs in one request
@gnomon-{b}/shell | gnomon {B}, {a.shell_jobs:,} `shell: true` runs (`true`), one `runs:batch`
rq-fork/bulk | RQ forking Worker, {a.shell_jobs:,} noop jobs queued at once (`enqueue_many`)
asyncio/shell | bare asyncio spawning `sh -c true`, {a.shell_jobs:,}, 16 at a time
# Celery executor: {a.jobs:,} no-op tasks, 2 workers x prefork 4, Redis broker (jobs/s)
celery-executor/plain | plain Celery {v[celery]}, `.delay()`, configured like gnomon's app
@gnomon-{b}/celery-executor | gnomon {B}, Celery executor, one `runs:batch`
# cron burst: {a.cron_jobs:,} jobs due the same second (slot → last one executed)
apscheduler/cron | APScheduler {v[apscheduler]} AsyncIOScheduler, memory job store
@gnomon-{b}/cron | gnomon {B}, cron schedules of a local `noop` job
# idle with {a.idle_jobs:,} schedules: RSS (max over {a.idle_duration:g} s)
apscheduler/idle | APScheduler {v[apscheduler]}, interval jobs (every 24 h)
@gnomon-{b}/idle | gnomon {B}, `every: 24h` schedules (as bench/idle.py)
"""

# The ratios the project sets targets for: numerator, denominator, floor, label ({b}: backend).
FLOORS = """
gnomon-{b}/noop/1 gnomon-{b}/site/1 0.5 1 client: run-and-execute ÷ posting to an unconsumed job
gnomon-{b}/noop/16 gnomon-{b}/site/16 0.7 16 clients: run-and-execute ÷ posting, the same
gnomon-{b}/shell asyncio/shell 0.5 `shell: true` ÷ bare asyncio spawn
gnomon-{b}/shell rq-fork/bulk 5 `shell: true` ÷ RQ forking Worker (queued at once)
gnomon-{b}/noop/1 celery/1 1 per-call noop, 1 client ÷ Celery
gnomon-{b}/noop/1 procrastinate/1 2 per-call noop, 1 client ÷ Procrastinate
gnomon-{b}/noop/16 celery/16 3 per-call noop, 16 clients ÷ Celery
gnomon-{b}/celery-executor celery-executor/plain 0.8 Celery executor ÷ plain Celery, same workers
"""

NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def target_of(key: str) -> str:
    """Which --only target measures the row `key`."""
    head, _, rest = key.partition("/")
    if head.startswith("gnomon-"):
        return "celery-executor" if rest == "celery-executor" else "gnomon"
    return "rq" if head.startswith("rq-") else head


def rows(args: argparse.Namespace, chosen: list[str]) -> list[tuple[str, str]]:
    """(key, label) in order; a heading has the key "". Consecutive "@" lines repeat as a
    block, one backend after the other."""
    fields = {"a": args, "v": pinned_versions(), "n_batch": args.jobs * 10}
    out: list[tuple[str, str]] = []
    block: list[tuple[str, str]] = []

    def flush() -> None:
        for b in chosen:
            out.extend((k.format(b=b), label.format(B=NAMES[b], **fields)) for k, label in block)
        block.clear()

    for line in ROWS.strip().splitlines():
        if line.startswith("@"):
            key, label = (x.strip() for x in line[1:].split("|"))
            block.append((key, label))
            continue
        flush()
        if line.startswith("# "):
            out.append(("", line[2:].format(**fields)))
        else:
            key, label = (x.strip() for x in line.split("|"))
            out.append((key, label.format(**fields)))
    flush()
    return out


def cell_text(key: str, results: Results, failures: dict[str, str]) -> str:
    if key in results:
        return results[key].text()
    return "failed" if target_of(key) in failures else "—"


def build_table(
    args: argparse.Namespace,
    chosen: list[str],
    targets: list[str],
    results: Results,
    failures: dict[str, str],
) -> tuple[Table, list[dict[str, Any]]]:
    title = "gnomon and its peers: one machine, one run, one method"
    t = Table(title, ["value", "target", "verdict"])
    shown = [(k, label) for k, label in rows(args, chosen) if not k or target_of(k) in targets]
    for i, (key, label) in enumerate(shown):
        if key:
            t.add(label, [cell_text(key, results, failures), "", ""])
        elif i + 1 < len(shown) and shown[i + 1][0]:  # a heading with rows under it
            t.add(f"**{label}**", ["", "", ""])
    ratios = ratio_rows(chosen, targets, results)
    if ratios:
        t.add("**ratios in this run, against their targets**", ["", "", ""])
    for r in ratios:
        value = "—" if r["ratio"] is None else f"{r['ratio']:.2f}x"
        t.add(f"{NAMES[r['backend']]}: {r['label']}", [value, f"≥ {r['floor']:g}x", r["verdict"]])
    return t, ratios


def ratio_rows(chosen: list[str], targets: list[str], results: Results) -> list[dict[str, Any]]:
    out = []
    for b in chosen:
        for line in FLOORS.strip().splitlines():
            num, den, floor_text, label = line.split(maxsplit=3)
            num, den, floor = num.format(b=b), den.format(b=b), float(floor_text)
            if not {target_of(num), target_of(den)} <= set(targets):
                continue
            a, z = results.get(num), results.get(den)
            ratio = a.value / z.value if a and z and a.value is not None and z.value else None
            verdict = "not measured" if ratio is None else "meets" if ratio >= floor else "below"
            out.append(dict(backend=b, label=label, floor=floor, ratio=ratio, verdict=verdict))
    return out


# --- main ------------------------------------------------------------------------------------

Step = tuple[str, str, Callable[[], Results | Awaitable[Results]]]


def plan(args: argparse.Namespace, chosen: list[str], targets: list[str], wrk: str) -> list[Step]:
    """(target, description, measurement) in the order they run."""
    steps: list[Step] = [
        ("asyncio", "asyncio anchor", lambda: asyncio_anchor(args)),
        ("celery", "Celery", lambda: celery_peer(args)),
        ("procrastinate", "Procrastinate", lambda: procrastinate_peer(args)),
        ("rq", "RQ", lambda: rq_peer(args)),
        ("apscheduler", "APScheduler", lambda: apscheduler_peer(args)),
        ("celery-executor", "plain Celery twin", lambda: celery_twin(args)),
    ]
    for b in chosen:
        steps += [
            ("gnomon", f"gnomon {b}", lambda b=b: gnomon_rows(b, args, wrk)),
            ("gnomon", f"gnomon {b} idle", lambda b=b: gnomon_idle(b, args)),
            ("celery-executor", f"gnomon {b} Celery", lambda b=b: gnomon_celery_executor(b, args)),
        ]
    return [s for s in steps if s[0] in targets]


async def measure_all(steps: list[Step]) -> tuple[Results, dict[str, str]]:
    results: Results = {}
    failures: dict[str, str] = {}
    for target, what, step in steps:
        t0 = time.monotonic()
        try:
            got = step()
            results.update(await got if inspect.isawaitable(got) else got)
        except Exception as exc:  # one peer failing must not hide the others
            failures[target] = f"{what}: {type(exc).__name__}: {exc}"
            note(f"FAILED {failures[target][:2000]}")
        note(f"{what}: {time.monotonic() - t0:.0f}s")
    return results, failures


def parse_args() -> argparse.Namespace:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--only", default=",".join(TARGETS), help=",".join(TARGETS))
    p.add_argument(
        "--jobs", type=int, default=2000, help="N of each per-call row (a multiple of 16)"
    )
    p.add_argument("--warmup", type=int, default=100, help="untimed jobs before each row")
    p.add_argument("--shell-jobs", type=int, default=500, help="shell / spawn / RQ-bulk rows")
    p.add_argument("--cron-jobs", type=int, default=1000)
    p.add_argument("--cron-lead", type=float, default=6, help="seconds from creation to T0")
    p.add_argument("--idle-jobs", type=int, default=10_000)
    p.add_argument("--idle-settle", type=float, default=3)
    p.add_argument("--idle-duration", type=float, default=5)
    p.add_argument("--timeout", type=float, default=180, help="limit of each measurement (s)")
    args = p.parse_args()
    args.jobs = max(16, math.ceil(args.jobs / 16) * 16)  # N/16 per connection: a multiple
    return args


async def main() -> None:
    # asyncio.run turns Ctrl-C into a cancellation seen at the next await, and the peers' steps
    # block without awaiting for minutes: let it raise KeyboardInterrupt where it lands.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    args = parse_args()
    targets = [t for t in args.only.split(",") if t]
    if bad := [t for t in targets if t not in TARGETS]:
        raise SystemExit(f"unknown --only {bad}; choose from {','.join(TARGETS)}")
    needs_gnomon = {"gnomon", "celery-executor"} & set(targets)
    chosen = backends(args) if needs_gnomon else []
    wrk = ensure_wrk() if "gnomon" in targets else ""
    started = time.monotonic()
    if VENV_TARGETS & set(targets):
        with contextlib.suppress(RuntimeError):  # reported per peer
            peers_python()
    if {"celery", "rq", "celery-executor"} & set(targets):
        for url in (CELERY_URL, RQ_URL):
            try:
                flush_redis(url)
            except Exception as exc:
                raise SystemExit(f"Redis is not reachable at {url} (make services): {exc}") from exc
            on_exit(lambda url=url: flush_redis(url))
    results, failures = await measure_all(plan(args, chosen, targets, wrk))
    table, ratios = build_table(args, chosen, targets, results, failures)
    table.print()
    elapsed = time.monotonic() - started
    print(f"whole run: {elapsed:.0f} s")
    for target, why in failures.items():
        print(f"failed: {target}: {why.splitlines()[0][:300]}")
    raw = {k: asdict(c) for k, c in results.items()}
    extra = {"failures": failures, "elapsed_s": elapsed, "versions": pinned_versions()}
    write_json(args, "peers", {"results": raw, "ratios": ratios, **extra})
    if failures:
        raise SystemExit("some measurements failed")


if __name__ == "__main__":
    run(main)
