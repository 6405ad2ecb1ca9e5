"""Fixtures for the engine tests: real `gnomon serve` processes, their ledger, their children."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gnomon.domain import RunState, can_transition
from tests.server import Server, drop_postgres, fresh_postgres


class Ledger:
    """Direct, read-only SQL on a server's database (SQLite file or PostgreSQL)."""

    def __init__(self, data_dir: Path, url: str | None):
        self.data_dir = data_dir
        self.url = url

    @property
    def backend(self) -> str:
        return "postgresql" if self.url else "sqlite"

    def query(self, sql: str) -> list[dict[str, Any]]:
        if self.url:
            return asyncio.run(self._pg(sql))
        con = sqlite3.connect(self.data_dir / "gnomon.db", timeout=30)
        con.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in con.execute(sql)]
        finally:
            con.close()

    async def _pg(self, sql: str) -> list[dict[str, Any]]:
        con = await asyncpg.connect(self.url)
        try:
            return [dict(r) for r in await con.fetch(sql)]
        finally:
            await con.close()


class Cluster:
    """Servers started by one test on one database; all of them end with the test."""

    def __init__(self, data_dir: Path, url: str | None):
        self.data_dir = data_dir
        self.url = url
        self.ledger = Ledger(data_dir, url)
        self.servers: list[Server] = []
        self.markers: list[str] = []  # processes carrying one are the test's, to end

    def server(self, data_dir: Path | None = None, **env: str) -> Server:
        srv = Server(data_dir or self.data_dir, self.url, **env)
        self.servers.append(srv)
        return srv.start()

    def close(self) -> None:
        for srv in self.servers:
            if srv.proc is not None and srv.proc.poll() is None:
                srv.proc.kill()
                srv.proc.wait()
        for marker in self.markers:
            for proc in processes_marked(marker):
                with contextlib.suppress(OSError):
                    os.kill(int(proc.split(":")[0]), signal.SIGKILL)


def _cluster(tmp_path: Path, url: str | None) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path / "data", url)
    try:
        yield cluster
    finally:
        cluster.close()
        if url:
            drop_postgres(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Servers on a fresh database of each backend."""
    yield from _cluster(tmp_path, fresh_postgres() if request.param == "postgresql" else None)


@pytest.fixture
def pg_cluster(tmp_path: Path) -> Iterator[Cluster]:
    """Servers on a fresh PostgreSQL database."""
    yield from _cluster(tmp_path, fresh_postgres())


# --- processes ----------------------------------------------------------------------------


def processes_marked(marker: str) -> list[str]:
    """Live processes whose command line or environment carries `marker` (zombies excluded)."""
    found = []
    needle = marker.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if not cmdline:  # a zombie or a kernel thread: nothing left to kill
                continue
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            continue
        if needle in cmdline or needle in environ:
            command = cmdline.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"{pid}: {command}")
    return found


# --- the event log ------------------------------------------------------------------------

RETRYABLE = {RunState.failed, RunState.timed_out, RunState.lost}


def check_history(events: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Assert a run's events follow the state machine; return [(state, attempt), …]."""
    assert events, "a run without events"
    steps = [(RunState(e["state"]), e["attempt"]) for e in events]
    first, attempt = steps[0]
    assert first in (RunState.pending, RunState.queued) and attempt == 1, steps
    for (a, n), (b, m) in pairwise(steps):
        assert can_transition(a, b), f"{a}→{b} is not a transition: {steps}"
        retry = a in RETRYABLE and b == RunState.queued
        assert m == (n + 1 if retry else n), f"attempt {n}→{m} on {a}→{b}: {steps}"
    return [(s.value, n) for s, n in steps]
