"""The spawner: local shell commands start in a small long-lived process, not by forking the
server; starts overlap; exits, errors and output come back; what it started dies with the
server however the server dies."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from gnomon.abc import Attempt, OutputSink
from gnomon.config import Settings
from gnomon.engine.executors.local import LocalExecutor
from gnomon.engine.executors.sandbox import MIN_PATH
from gnomon.engine.executors.spawner import PLACE, Spawner, SpawnError
from gnomon.vocabulary import RunState
from tests.engine.conftest import processes_marked
from tests.server import wait_for


class Sink(OutputSink):
    def __init__(self) -> None:
        self.data = bytearray()
        self.writes = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.writes += 1


async def run_one(spawner: Spawner, argv: list[str], **env: str) -> tuple[int, bytes]:
    """Start `argv` through `spawner`; its exit status and output."""
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        _, exited = await spawner.start(
            argv, {"env": {"PATH": MIN_PATH, **env}, "start_new_session": True}, w
        )
    finally:
        os.close(w)
    with os.fdopen(r, "rb") as out:
        data = await asyncio.to_thread(out.read)
    return await exited, data


async def test_a_command_starts_and_reports_its_exit() -> None:
    spawner = Spawner()
    try:
        code, out = await run_one(spawner, ["/bin/sh", "-c", 'echo "$X"; exit 3'], X="hi")
        assert (code, out) == (3, b"hi\n")
        code, _ = await run_one(spawner, ["/bin/sh", "-c", "kill -TERM $$"])
        assert code == -signal.SIGTERM
        with pytest.raises(SpawnError, match="No such file"):
            await run_one(spawner, ["/no/such/program"])
        big = "x" * 100_000  # more than one message holds: it travels in a memfd
        code, out = await run_one(spawner, ["/bin/sh", "-c", 'printf %s "$BIG" | wc -c'], BIG=big)
        assert (code, out.strip()) == (0, b"100000")
    finally:
        spawner.close()


async def test_descriptors_are_placed_where_the_command_expects_them(tmp_path: Path) -> None:
    (tmp_path / "here").write_text("found\n")
    opened = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    spawner = Spawner()
    r, w = os.pipe2(os.O_CLOEXEC)
    try:
        spawn = {
            "env": {"PATH": MIN_PATH},
            "cwd": f"/proc/self/fd/{PLACE[0]}",
            "pass_fds": (PLACE[0],),
        }
        _, exited = await spawner.start(["/bin/sh", "-c", "cat here"], spawn, w, [opened])
        os.close(w)
        with os.fdopen(r, "rb") as out:
            assert await asyncio.to_thread(out.read) == b"found\n"
        assert await exited == 0
    finally:
        os.close(opened)
        spawner.close()


async def test_a_commands_leftovers_end_with_it() -> None:
    marker = f"leftover-{uuid.uuid4().hex}"
    spawner = Spawner()
    try:
        code, _ = await run_one(
            spawner, ["/bin/sh", "-c", "sleep 60 >/dev/null 2>&1 & echo"], M=marker
        )
        assert code == 0
        await asyncio.to_thread(wait_for, lambda: not processes_marked(marker), 10)
    finally:
        spawner.close()


def executor(tmp_path: Path, sandbox: str = "none") -> LocalExecutor:
    """The attempts' directories in the system temp dir, as a server's (the run user must
    reach them)."""
    return LocalExecutor(Settings(data_dir=tmp_path / "data", sandbox=sandbox))


def attempt(command: str, timeout_s: float | None = None) -> Attempt:
    run = {"id": uuid.uuid4().hex, "job_id": "j", "attempt": 1, "space": "default"}
    action = {"type": "shell", "command": command}
    return Attempt(run=run, action=action, params={}, timeout_s=timeout_s, output=Sink())


@pytest.mark.parametrize("sandbox", ["none", "auto"])
async def test_shell_runs_overlap(tmp_path: Path, sandbox: str) -> None:
    """16 commands that each sleep 0.5 s take about 0.5 s together, not 8 s."""
    local = executor(tmp_path, sandbox)
    try:
        await local.execute(attempt("true"))  # the spawner starts
        began = time.monotonic()
        outcomes = await asyncio.gather(*(local.execute(attempt("sleep 0.5")) for _ in range(16)))
        took = time.monotonic() - began
    finally:
        await local.close()
    assert {o.state for o in outcomes} == {RunState.succeeded}
    assert took < 3, f"16 overlapping 0.5 s commands took {took:.1f}s"


async def test_output_timeout_and_cancel(tmp_path: Path) -> None:
    local = executor(tmp_path)
    try:
        one = attempt("head -c 3000000 /dev/zero; echo; echo done")
        assert (await local.execute(one)).state == RunState.succeeded
        sink = one.output
        assert isinstance(sink, Sink)
        assert len(sink.data) == 3_000_006 and sink.data.endswith(b"\ndone\n")
        assert sink.writes < 200, "output came in small pieces"
        slow = await local.execute(attempt("sleep 30", timeout_s=0.3))
        assert slow.state == RunState.timed_out
        stopped = attempt("sleep 30")
        task = asyncio.ensure_future(local.execute(stopped))
        await asyncio.sleep(0.3)
        stopped.cancelled.set()
        assert (await asyncio.wait_for(task, 10)).state == RunState.cancelled
        failed = await local.execute(attempt("exit 7"))
        assert (failed.state, failed.exit_code) == (RunState.failed, 7)
    finally:
        await local.close()


async def test_the_server_does_not_fork_for_a_run(tmp_path: Path) -> None:
    """Starting a command in the server process itself would go through `os.fork` or
    `_posixsubprocess.fork_exec`; only the spawner's own start does."""
    import _posixsubprocess

    local = executor(tmp_path)
    calls: list[object] = []
    real = _posixsubprocess.fork_exec

    def counted(*args: object) -> int:
        calls.append(args)
        return real(*args)

    try:
        await local.execute(attempt("true"))  # the spawner starts
        _posixsubprocess.fork_exec = counted
        try:
            outcomes = await asyncio.gather(*(local.execute(attempt("true")) for _ in range(8)))
        finally:
            _posixsubprocess.fork_exec = real
    finally:
        await local.close()
    assert {o.state for o in outcomes} == {RunState.succeeded}
    assert calls == []


KILLED_SERVER = """
import asyncio, os, sys
from gnomon.engine.executors.spawner import Spawner

async def main():
    spawner = Spawner()
    r, w = os.pipe()
    env = {"PATH": "/usr/bin:/bin", "M": sys.argv[1]}
    await spawner.start(["/bin/sh", "-c", "sleep 60 & sleep 60; echo"], {"env": env,
        "start_new_session": True}, w)
    print(spawner.pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def gone(pid: int) -> bool:
    """No such process, or only a zombie of it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_what_the_spawner_started_dies_with_a_server_killed_hard(tmp_path: Path) -> None:
    marker = f"killed-{uuid.uuid4().hex}"
    server = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED_SERVER), marker],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        spawner_pid = int(server.stdout.readline())
        wait_for(lambda: len(processes_marked(marker)) >= 3, timeout=10)  # sh and two sleeps
        server.send_signal(signal.SIGKILL)
        server.wait()
        wait_for(lambda: not processes_marked(marker), timeout=10)
        wait_for(lambda: gone(spawner_pid), timeout=10)
    finally:
        server.kill()
        server.wait()


async def test_a_spawner_that_dies_ends_its_runs_and_comes_back(tmp_path: Path) -> None:
    marker = f"orphan-{uuid.uuid4().hex}"
    local = executor(tmp_path)
    try:
        held = attempt(f"sleep 30 & M={marker} sleep 30; echo")
        task = asyncio.ensure_future(local.execute(held))
        await asyncio.to_thread(wait_for, lambda: len(processes_marked(marker)) >= 1, 10)
        spawner = local._spawner.pid
        assert spawner is not None
        os.kill(spawner, signal.SIGKILL)
        outcome = await asyncio.wait_for(task, 10)
        assert outcome.state == RunState.failed and "SIGKILL" in (outcome.message or "")
        await asyncio.to_thread(wait_for, lambda: not processes_marked(marker), 10)
        assert (await local.execute(attempt("true"))).state == RunState.succeeded
        assert local._spawner.pid not in (None, spawner)
    finally:
        await local.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="the spawner switches users only for root")
async def test_the_spawner_becomes_the_run_user(tmp_path: Path) -> None:
    """Commands start without a user switch; the server's secrets of other runs it holds are
    out of the commands' reach (changed from root, it is not dumpable)."""
    local = executor(tmp_path)
    try:
        one = attempt("id -u")
        assert (await local.execute(one)).state == RunState.succeeded
        user = local.confinement.user
        assert user is not None and isinstance(one.output, Sink)
        assert one.output.data == f"{user.uid}\n".encode()
        status = Path(f"/proc/{local._spawner.pid}/status").read_text()
        uids = next(line for line in status.splitlines() if line.startswith("Uid:"))
        assert uids.split()[1:] == [str(user.uid)] * 4
        assert Path(f"/proc/{local._spawner.pid}/environ").stat().st_uid == 0  # not dumpable
    finally:
        await local.close()
