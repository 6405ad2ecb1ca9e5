"""The local executor: shell commands in their own process group, HTTP calls, no-ops."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

import httpx
import orjson

from gnomon.abc import Attempt, Executor, Outcome
from gnomon.domain import RunState, secret_env, shell_command

KILL_GRACE_S = 2.0
HTTP_DEFAULT_TIMEOUT_S = 60.0
PR_SET_PDEATHSIG = 1

try:
    _libc: Any = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _libc = None


def _child_setup() -> None:
    """In the child: a process group of its own, and die with the server (no orphans)."""
    os.setsid()
    if _libc is not None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# PR_SET_PDEATHSIG reaches the direct child only: a shell script's own children (`sleep 30`
# in `sleep 30; echo done`) would outlive a server killed with SIGKILL. The watchdog is one
# small process per executor that holds the process groups of the commands running; when
# its stdin reaches EOF (the server is gone, however it died) it kills those groups.
_WATCHDOG = """
import os, signal, sys
groups = set()
for line in sys.stdin:
    pgid = int(line[1:])
    (groups.add if line[0] == "+" else groups.discard)(pgid)
for pgid in groups:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
"""


class Watchdog:
    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    def _send(self, line: str) -> None:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE, start_new_session=True
            )
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(line.encode())
            self._proc.stdin.flush()
        except OSError:  # it died: the next command starts a new one
            self._proc = None

    def hold(self, pgid: int) -> None:
        self._send(f"+{pgid}\n")

    def release(self, pgid: int) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._send(f"-{pgid}\n")

    def close(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            self._proc = None


def inherited_env() -> dict[str, str]:
    """The server's environment, as commands inherit it: without the named secrets (a command
    gets those it asks for, by name)."""
    return {k: v for k, v in os.environ.items() if k != "GNOMON_SECRETS"}


def param_env(params: dict[str, Any]) -> dict[str, str]:
    """Run parameters as environment variables: PARAM_<NAME>=value (JSON for non-strings)."""
    out = {}
    for key, value in params.items():
        name = "PARAM_" + "".join(c if c.isalnum() else "_" for c in key).upper()
        out[name] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, secrets: dict[str, str] | None = None) -> None:
        self._http: httpx.AsyncClient | None = None
        self._watchdog = Watchdog()
        self._secrets = secrets or {}

    async def execute(self, attempt: Attempt) -> Outcome:
        kind = attempt.action["type"]
        work = {"shell": self._shell, "http": self._http_call, "noop": self._noop}.get(kind)
        if work is None:
            return Outcome(RunState.failed, message=f"the local executor cannot run '{kind}'")
        return await work(attempt)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._watchdog.close()

    # --- noop -----------------------------------------------------------------------------

    def immediate(self, attempt: Attempt) -> Outcome | None:
        action = attempt.action
        if action["type"] != "noop" or action.get("sleep_s"):
            return None
        return _noop_outcome(action)

    async def _noop(self, attempt: Attempt) -> Outcome:
        sleep_s = float(attempt.action.get("sleep_s") or 0)
        if sleep_s:
            stopped = await _wait_or_cancel(asyncio.sleep(sleep_s), attempt)
            if stopped:
                return stopped
        return _noop_outcome(attempt.action)

    # --- shell ----------------------------------------------------------------------------

    async def _shell(self, attempt: Attempt) -> Outcome:
        action, run = attempt.action, attempt.run
        try:
            command = shell_command(action, attempt.params)
            secrets = secret_env(action, self._secrets)
        except KeyError as exc:
            return Outcome(RunState.failed, message=f"cannot start: missing {exc.args[0]}")
        env = {
            **inherited_env(),
            **action.get("env", {}),
            **param_env(attempt.params),
            **secrets,
            "GNOMON_RUN_ID": run["id"],
            "GNOMON_JOB_ID": run["job_id"],
            "GNOMON_ATTEMPT": str(run["attempt"]),
        }
        spawn = dict(
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=action.get("cwd") or None,
            env=env,
            preexec_fn=_child_setup,
        )
        try:
            if isinstance(command, list):
                proc = await asyncio.create_subprocess_exec(*command, **spawn)
            else:
                proc = await asyncio.create_subprocess_shell(command, **spawn)
        except (OSError, ValueError) as exc:
            return Outcome(RunState.failed, exit_code=127, message=f"could not start: {exc}")

        async def pump() -> int:
            assert proc.stdout is not None
            while chunk := await proc.stdout.read(65536):
                attempt.output.write(chunk)
            return await proc.wait()

        self._watchdog.hold(proc.pid)
        try:
            try:
                stopped = await _wait_or_cancel(pump(), attempt)
            except asyncio.CancelledError:
                await _kill_group(proc)
                raise
            if stopped:
                await _kill_group(proc)
                return stopped
        finally:
            self._watchdog.release(proc.pid)
        code = proc.returncode
        assert code is not None
        if code == 0:
            return Outcome(RunState.succeeded, exit_code=0)
        if code < 0:
            return Outcome(
                RunState.failed,
                exit_code=128 - code,
                message=f"killed by signal {signal.Signals(-code).name}",
            )
        return Outcome(RunState.failed, exit_code=code, message=f"exit code {code}")

    # --- http -----------------------------------------------------------------------------

    async def _http_call(self, attempt: Attempt) -> Outcome:
        a = attempt.action
        if self._http is None:
            self._http = httpx.AsyncClient(follow_redirects=False)
        body = a.get("body")
        kw: dict[str, Any] = {"headers": a.get("headers") or {}}
        if isinstance(body, str):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        timeout = attempt.timeout_s or HTTP_DEFAULT_TIMEOUT_S

        async def call() -> httpx.Response:
            return await self._http.request(
                a.get("method", "POST"), a["url"], timeout=timeout, **kw
            )  # type: ignore[union-attr]

        try:
            box: list[httpx.Response] = []

            async def keep() -> None:
                box.append(await call())

            stopped = await _wait_or_cancel(keep(), attempt)
        except httpx.TimeoutException as exc:
            return Outcome(RunState.timed_out, message=f"HTTP timeout: {exc}")
        except httpx.HTTPError as exc:
            return Outcome(RunState.failed, message=f"HTTP error: {type(exc).__name__}: {exc}")
        if stopped:
            return stopped
        resp = box[0]
        attempt.output.write(f"HTTP {resp.status_code} {resp.reason_phrase}\n".encode())
        attempt.output.write(resp.content)
        ok = (
            resp.status_code in a["expect_status"]
            if a.get("expect_status")
            else (200 <= resp.status_code < 300)
        )
        if ok:
            return Outcome(RunState.succeeded, message=f"{a.get('method', 'POST')} success")
        return Outcome(
            RunState.failed, message=f"HTTP {resp.status_code} {resp.reason_phrase}".strip()
        )


def _noop_outcome(action: dict[str, Any]) -> Outcome:
    if action.get("fail"):
        return Outcome(RunState.failed, exit_code=1, message="noop asked to fail")
    return Outcome(RunState.succeeded, exit_code=0)


async def _wait_or_cancel(work: Any, attempt: Attempt) -> Outcome | None:
    """Await `work` unless the attempt is cancelled or times out first."""
    task = asyncio.ensure_future(work)
    cancel = asyncio.ensure_future(attempt.cancelled.wait())
    try:
        done, _ = await asyncio.wait(
            {task, cancel}, timeout=attempt.timeout_s, return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        cancel.cancel()
    if task in done:
        task.result()
        return None
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    if cancel in done:
        return Outcome(RunState.cancelled, message="cancelled")
    return Outcome(RunState.timed_out, message=f"timed out after {attempt.timeout_s:g}s")


async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """TERM the whole process group, then KILL whatever is left."""
    if proc.returncode is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
