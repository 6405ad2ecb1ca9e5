"""Start real `gnomon serve` processes for tests, on SQLite or a fresh PostgreSQL database."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

PG_ADMIN_URL = os.environ.get(
    "GNOMON_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)

FAST = {
    "GNOMON_LEASE_S": "3",
    "GNOMON_HEARTBEAT_S": "0.5",
    "GNOMON_POLL_S": "0.1",
    "GNOMON_OUTPUT_FLUSH_S": "0.1",
    "GNOMON_TOKEN_CACHE_S": "0.2",
    "GNOMON_LOG_LEVEL": "warning",
}

# Local jobs may name a `cwd` in /tmp (see the `shared_dir` fixture); else none.
SHARED_CWD = {"GNOMON_LOCAL_CWD_ROOTS": "/tmp"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _psql(sql: str) -> None:
    subprocess.run(["psql", PG_ADMIN_URL, "-qc", sql], check=True, capture_output=True)


def fresh_postgres() -> str:
    """A new empty database on the test server; returns its URL."""
    name = f"gnomon_t_{uuid.uuid4().hex[:12]}"
    _psql(f"CREATE DATABASE {name}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def drop_postgres(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    subprocess.run(
        ["psql", PG_ADMIN_URL, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
        capture_output=True,
    )


class Server:
    """One `gnomon serve` process."""

    def __init__(
        self,
        data_dir: Path,
        database_url: str | None = None,
        *,
        wrap: tuple[str, ...] = (),
        **env: str,
    ):
        self.data_dir = data_dir
        self.wrap = wrap  # a command that runs the server (e.g. setpriv, as another user)
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            **FAST,
            **env,
            "GNOMON_DATA_DIR": str(data_dir),
            "GNOMON_PORT": str(self.port),
        }
        if database_url:
            self.env["GNOMON_DATABASE_URL"] = database_url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / f"server-{self.port}.log"

    def start(self, timeout: float = 30) -> Server:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            [*self.wrap, sys.executable, "-m", "gnomon", "serve"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gnomon serve exited: {self.log()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gnomon serve not ready in {timeout}s: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    @property
    def token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    def client(self, token: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kw)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()


def wait_for(predicate: Any, timeout: float = 20, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met in {timeout}s (last: {last!r})")
