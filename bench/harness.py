"""Shared plumbing for the benchmarks: servers, databases, ledger queries, tables, cleanup.

Everything here talks to 127.0.0.1 only. Every resource a benchmark creates (server processes,
PostgreSQL databases, temporary directories) is registered and released on exit, on SIGTERM /
SIGINT, and — for child processes — when this process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PYTHON = sys.executable
HOST = "127.0.0.1"
PG_ADMIN_URL = os.environ.get(
    "GNOMON_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgresql")

# --- cleanup ---------------------------------------------------------------------------------

_cleanups: list[Callable[[], None]] = []


def on_exit(fn: Callable[[], None]) -> Callable[[], None]:
    """Run `fn` at exit (last registered, first run); idempotence is the caller's job."""
    _cleanups.append(fn)
    return fn


def _run_cleanups() -> None:
    while _cleanups:
        fn = _cleanups.pop()
        try:
            fn()
        except Exception as exc:  # cleanup must go on
            print(f"bench: cleanup error: {exc!r}", file=sys.stderr)


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)


atexit.register(_run_cleanups)
signal.signal(signal.SIGTERM, _terminate)
signal.signal(signal.SIGHUP, _terminate)

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the benchmark process goes away."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None, **kw: Any
) -> subprocess.Popen[bytes]:
    """A child process that dies with us; output to `log` (or discarded)."""
    out: Any = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by child
    try:
        return subprocess.Popen(
            list(argv),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
            **kw,
        )
    finally:
        if log:
            out.close()


def stop_process(proc: subprocess.Popen[bytes] | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def temp_dir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=f"gnomon-bench-{prefix}-"))
    on_exit(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# --- PostgreSQL ------------------------------------------------------------------------------


def _psql(sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
        capture_output=True,
        text=True,
        timeout=60,
    )


def fresh_postgres(tag: str) -> str:
    """A new empty database, dropped at exit; returns its postgresql:// URL."""
    name = f"gnomon_bench_{tag}_{uuid.uuid4().hex[:8]}"
    res = _psql(f"CREATE DATABASE {name}")
    if res.returncode != 0:
        raise RuntimeError(f"cannot create database {name}: {res.stderr.strip()}")
    on_exit(lambda: drop_postgres(name))
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


def drop_postgres(name: str) -> None:
    _psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def postgres_available() -> bool:
    return _psql("SELECT 1").returncode == 0


# --- gnomon servers --------------------------------------------------------------------------


class Server:
    """One `gnomon serve` process on a fresh SQLite data dir or a fresh PostgreSQL database."""

    def __init__(self, backend: str, tag: str, **env: str) -> None:
        assert backend in BACKENDS, backend
        self.backend = backend
        self.data_dir = temp_dir(f"{tag}-{backend}")
        self.database_url = fresh_postgres(tag) if backend == "postgresql" else None
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.env = {
            **os.environ,
            "GNOMON_LOG_LEVEL": "warning",
            **env,
            "GNOMON_HOST": HOST,
            "GNOMON_DATA_DIR": str(self.data_dir),
            "GNOMON_PORT": str(self.port),
        }
        self.env.pop("GNOMON_DATABASE_URL", None)
        if self.database_url:
            self.env["GNOMON_DATABASE_URL"] = self.database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"
        on_exit(self.stop)

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "gnomon.db"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 90) -> Server:
        self.proc = spawn(
            [PYTHON, "-m", "gnomon", "serve"], env=self.env, log=self.log_path, cwd=self.data_dir
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gnomon serve exited:\n{self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gnomon serve not ready in {timeout}s:\n{self.log()}")

    def stop(self) -> None:
        stop_process(self.proc)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def client(self, timeout: float = 120, **kw: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout, **kw)

    async def create_job(self, name: str, executor: str, **extra: Any) -> str:
        async with self.client() as c:
            r = await c.post(
                "/v1/jobs",
                json={"name": name, "action": {"type": "noop"}, "executor": executor, **extra},
            )
            r.raise_for_status()
            return r.json()["id"]

    def db_session_pids(self) -> list[int]:
        """PostgreSQL: pids of the backend processes serving this server's database."""
        if self.database_url is None:
            return []
        name = self.database_url.rsplit("/", 1)[1]
        res = _psql(
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        return [int(x) for x in res.stdout.split()]

    def db_cpu(self, pids: Iterable[int]) -> dict[int, float]:
        """CPU seconds so far of the given (PostgreSQL backend) processes still alive."""
        out: dict[int, float] = {}
        for pid in pids:
            with contextlib.suppress(OSError):  # the session may have ended
                out[pid] = cpu_seconds(pid)
        return out

    def ledger(self) -> Ledger:
        return Ledger(self)

    def metrics_text(self) -> str:
        return httpx.get(self.url + "/metrics", headers=self.headers, timeout=30).text


class Ledger:
    """Direct read access to a server's database (faster than paging the API)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self._sqlite: sqlite3.Connection | None = None
        self._pg: Any = None

    async def __aenter__(self) -> Ledger:
        if self.server.backend == "sqlite":
            self._sqlite = sqlite3.connect(self.server.sqlite_path, timeout=30)
        else:
            import asyncpg

            self._pg = await asyncpg.connect(self.server.database_url, timeout=30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()

    @staticmethod
    def _pg_sql(sql: str) -> str:
        parts = sql.split("?")
        return parts[0] + "".join(f"${i}{p}" for i, p in enumerate(parts[1:], 1))

    async def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """`sql` uses `?` placeholders on both backends."""
        if self._sqlite is not None:
            return list(self._sqlite.execute(sql, params).fetchall())
        return [tuple(r) for r in await self._pg.fetch(self._pg_sql(sql), *params)]

    async def scalar(self, sql: str, *params: Any) -> Any:
        rows = await self.rows(sql, *params)
        return rows[0][0] if rows else None

    async def clone_row(self, table: str, template_id: str, n: int, chunk: int = 5000) -> float:
        """Insert n copies of row `template_id` of `table` (new ULID ids, all other columns as
        the service wrote them), in batched transactions; returns the seconds it took."""
        from ulid import ULID

        t0 = time.perf_counter()
        if self._sqlite is not None:
            cur = self._sqlite.execute(f"SELECT * FROM {table} WHERE id = ?", (template_id,))
            cols = [d[0] for d in cur.description]
            row = cur.fetchone()
            assert row is not None, f"{table} {template_id} not found"
            k = cols.index("id")
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for start in range(0, n, chunk):
                batch = []
                for _ in range(min(chunk, n - start)):
                    copy = list(row)
                    copy[k] = str(ULID())
                    batch.append(copy)
                with self._sqlite:  # one transaction per chunk
                    self._sqlite.executemany(sql, batch)
        else:
            rec = await self._pg.fetchrow(f"SELECT * FROM {table} WHERE id = $1", template_id)
            assert rec is not None, f"{table} {template_id} not found"
            cols = list(rec.keys())
            k = cols.index("id")
            for start in range(0, n, chunk):
                batch = []
                for _ in range(min(chunk, n - start)):
                    copy = list(rec.values())
                    copy[k] = str(ULID())
                    batch.append(tuple(copy))
                await self._pg.copy_records_to_table(table, records=batch, columns=cols)
        return time.perf_counter() - t0

    async def count_runs(self, job_id: str, state: str | None = None) -> int:
        if state is None:
            return int(await self.scalar("SELECT count(*) FROM runs WHERE job_id = ?", job_id))
        return int(
            await self.scalar(
                "SELECT count(*) FROM runs WHERE job_id = ? AND state = ?", job_id, state
            )
        )


# --- /proc sampling --------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --- statistics and tables -------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != value:
            return "—"
        return f"{value:,.{digits}f}"
    return str(value)


@dataclass
class Table:
    """Metrics as rows, one column per measured target (backends side by side)."""

    title: str
    columns: list[str]
    rows: list[tuple[str, list[str]]] = field(default_factory=list)

    def add(self, label: str, values: Iterable[Any], digits: int = 1) -> None:
        self.rows.append((label, [fmt(v, digits) for v in values]))

    def render(self) -> str:
        widths = [max([len("metric")] + [len(r[0]) for r in self.rows])]
        for i, col in enumerate(self.columns):
            widths.append(max([len(col)] + [len(r[1][i]) for r in self.rows]))
        head = (
            "| "
            + " | ".join(
                ["metric".ljust(widths[0])]
                + [c.rjust(w) for c, w in zip(self.columns, widths[1:], strict=True)]
            )
            + " |"
        )
        sep = "|" + "|".join(["-" * (widths[0] + 2)] + ["-" * (w + 1) + ":" for w in widths[1:]])
        sep += "|"
        body = [
            "| "
            + " | ".join(
                [label.ljust(widths[0])]
                + [v.rjust(w) for v, w in zip(vals, widths[1:], strict=True)]
            )
            + " |"
            for label, vals in self.rows
        ]
        return "\n".join([f"\n## {self.title}\n", head, sep, *body, ""])

    def print(self) -> None:
        print(self.render(), flush=True)


# --- command line ----------------------------------------------------------------------------


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    p.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    return p


def backends(args: argparse.Namespace) -> list[str]:
    chosen = list(BACKENDS) if args.backend == "both" else [args.backend]
    if "postgresql" in chosen and not postgres_available():
        raise SystemExit(
            f"PostgreSQL is not reachable at {PG_ADMIN_URL} (run `make services`, or pass "
            "--backend sqlite)"
        )
    return chosen


def write_json(args: argparse.Namespace, name: str, results: Any) -> None:
    if args.json:
        args.json.write_text(json.dumps({"benchmark": name, "results": results}, indent=2))


def note(message: str) -> None:
    """Progress on stderr, so stdout holds only the tables."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def run(main: Callable[[], Any]) -> None:
    """Run an async main; cleanups happen at exit whatever happens."""
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    finally:
        _run_cleanups()
