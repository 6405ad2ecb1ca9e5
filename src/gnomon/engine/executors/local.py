"""The local executor: shell commands in their own session, directory, environment and (when
the server is root) user, in a bubblewrap sandbox when there is one (see sandbox.py); HTTP
calls; no-ops."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets as random
import signal
from pathlib import Path
from typing import Any

import httpx
import orjson
import structlog

from gnomon import outbound, permits
from gnomon.abc import Attempt, Executor, Outcome, OutputSink
from gnomon.config import Settings
from gnomon.credentials import redact
from gnomon.domain import RunState, secret_env, shell_command
from gnomon.engine.executors.sandbox import (
    MIN_PATH,
    Confinement,
    WorkRoot,
    confinement,
    make_workdir,
    reachable_by,
    remove_tree,
    server_home,
    server_user,
)
from gnomon.engine.executors.spawner import PLACE, Spawner

KILL_GRACE_S = 2.0
HTTP_DEFAULT_TIMEOUT_S = 60.0
REDACT_MARGIN = 8192  # response bytes read past what the log keeps

log = structlog.get_logger(__name__)


def inherited_env() -> dict[str, str]:
    """The server's environment without its settings (`GNOMON_*`: tokens, secrets, database
    URLs), for commands that pass it on to another system (sbatch)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GNOMON_")}


def base_env(user: str, home: Path, extra: dict[str, str]) -> dict[str, str]:
    """What every local shell command's environment starts from: nothing of the server's."""
    return {
        "PATH": MIN_PATH,
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "USER": user,
        "LOGNAME": user,
        "SHELL": "/bin/sh",
        **extra,
    }


def param_env(params: dict[str, Any]) -> dict[str, str]:
    """Run parameters as environment variables: PARAM_<NAME>=value (JSON for non-strings)."""
    out = {}
    for key, value in params.items():
        name = "PARAM_" + "".join(c if c.isalnum() else "_" for c in key).upper()
        out[name] = value if isinstance(value, str) else orjson.dumps(value).decode()
    return out


class LocalExecutor(Executor):
    name = "local"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._http: httpx.AsyncClient | None = None
        self.confinement: Confinement = confinement(
            settings.sandbox, settings.run_user, "run_user" in settings.model_fields_set
        )
        # Starts the shell commands, as the run user, and holds their process groups.
        self._spawner = Spawner(self.confinement.ids)
        self._root: WorkRoot | None = None  # this executor's attempts' directories, once needed
        self._user = self.confinement.user.name if self.confinement.user else server_user()

    async def execute(self, attempt: Attempt) -> Outcome:
        kind = attempt.action["type"]
        work = {"shell": self._shell, "http": self._http_call, "noop": self._noop}.get(kind)
        if work is None:
            return Outcome(RunState.failed, message=f"the local executor cannot run '{kind}'")
        space = attempt.run.get("space")
        if refused := permits.local_space_refusal(self.settings, space, attempt.action):
            return Outcome(RunState.failed, message=f"cannot start: {refused}")
        return await work(attempt)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        self._spawner.close()
        if self._root is not None:
            await asyncio.to_thread(self._root.remove)
            self._root = None

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

    def hidden(self, cwd: Path | None) -> list[Path]:
        """What the sandbox hides: the data dir, the attempts' directories (of every server
        and worker here, when `cwd` holds them), the secrets file, the admin's list and, for a
        server not run as root, its user's home."""
        s = self.settings
        paths = [s.data_dir, *s.sandbox_hide]
        own = self._root.path if self._root is not None else None
        paths += [p for p in (s.work_dir or own, s.secrets_file) if p is not None]
        base = permits.work_base(s)
        if cwd is not None and (cwd == base or cwd in base.parents):
            paths += base.glob(permits.WORK_PREFIX + "*")
        if os.geteuid() != 0 and (home := server_home()) is not None:
            paths.append(home)
        return sorted({Path(os.path.realpath(p)) for p in paths} - {Path("/")})

    def _work_root(self) -> Path:
        if self._root is None:
            self._root = WorkRoot(self.settings.work_dir)
        return self._root.path

    async def _shell(self, attempt: Attempt) -> Outcome:
        action, run = attempt.action, attempt.run
        space = run.get("space")
        if refused := permits.secret_refusals(self.settings, space, action):
            names = ", ".join(refused)
            return Outcome(
                RunState.failed, message=f"cannot start: secret {names} not granted to '{space}'"
            )
        try:
            command = shell_command(action, attempt.params)
            secrets = secret_env(action, self.settings.secrets_for(space))
        except KeyError as exc:
            return Outcome(RunState.failed, message=f"cannot start: missing {exc.args[0]}")
        confined = self.confinement
        cwd: tuple[int, Path] | None = None
        if action.get("cwd"):
            try:
                cwd = self._open_cwd(action["cwd"])
            except OSError as exc:  # PermissionError: not allowed
                return Outcome(RunState.failed, message=f"cannot start: {exc}")
        if isinstance(command, str):
            command = ["/bin/sh", "-c", command]
        elif confined.bwrap is not None:  # a missing program: 127, as without the sandbox
            command = ["/bin/sh", "-c", 'exec "$0" "$@"', *command]
        name = f"{run['id']}-{run['attempt']}-{random.token_hex(4)}"
        try:
            workdir = make_workdir(self._work_root(), name, confined.user)
        except OSError as exc:
            if cwd is not None:
                os.close(cwd[0])
            return Outcome(RunState.failed, message=f"cannot start: no working directory ({exc})")
        env = base_env(self._user, workdir, self.settings.local_env)
        if confined.bwrap is None:  # the sandbox has a private /tmp; else keep temp files here
            env["TMPDIR"] = str(workdir)
        env.update(
            {
                **action.get("env", {}),
                **param_env(attempt.params),
                **secrets,
                "GNOMON_RUN_ID": run["id"],
                "GNOMON_JOB_ID": run["job_id"],
                "GNOMON_ATTEMPT": str(run["attempt"]),
            }
        )
        try:
            return await self._run(attempt, command, env, workdir, cwd)
        finally:
            if cwd is not None:
                os.close(cwd[0])
            try:
                os.rmdir(workdir)  # what most commands leave: an empty directory
            except OSError:
                await asyncio.shield(asyncio.to_thread(remove_tree, workdir))

    def _open_cwd(self, cwd: str) -> tuple[int, Path]:
        """The job's `cwd`, opened (what is checked is what the command gets, whatever is
        renamed meanwhile): a descriptor and the real path. PermissionError when the admin
        does not allow it, or the run user could not reach it by itself."""
        fd = os.open(cwd, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            real = Path(os.readlink(f"/proc/self/fd/{fd}"))
            if refused := permits.cwd_refusal(self.settings, str(real)):
                raise PermissionError(refused)
            user = self.confinement.user
            if user is not None and not reachable_by(real, user):
                raise PermissionError(f"cwd '{cwd}' is out of reach of the user {user.name}")
        except BaseException:
            os.close(fd)
            raise
        return fd, real

    async def _run(
        self,
        attempt: Attempt,
        command: list[str],
        env: dict[str, str],
        workdir: Path,
        cwd: tuple[int, Path] | None,
    ) -> Outcome:
        fd = out_w = None
        try:
            hidden = self.hidden(cwd[1] if cwd else None) if self.confinement.bwrap else []
            argv, spawn, fd = self.confinement.spawn(command, env, workdir, cwd, hidden, PLACE)
            given = [f for f in (fd, cwd[0] if cwd else None) if f is not None]
            out_r, out_w = os.pipe2(os.O_CLOEXEC)
            try:
                pid, exited = await self._spawner.start(argv, spawn, out_w, given)
            except BaseException:
                os.close(out_r)
                raise
        except (OSError, ValueError) as exc:
            return Outcome(RunState.failed, exit_code=127, message=f"could not start: {exc}")
        finally:
            for each in (fd, out_w):
                if each is not None:
                    os.close(each)
        try:
            proc = await Child.attach(pid, exited, out_r, attempt.output)
        except BaseException:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            raise

        async def pump() -> int:
            await proc.drained
            return await proc.wait()

        try:
            try:
                stopped = await _wait_or_cancel(pump(), attempt)
            except asyncio.CancelledError:
                await _kill_group(proc)
                raise
            await _kill_group(proc)  # what the command left running ends with it
            if stopped:
                return stopped
        finally:
            proc.close()
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
        """One request, to an address the outbound policy allows (checked when connecting, on
        every address the host resolves to); redirects are not followed. The run log keeps the
        status line and the first `http_log_bytes` of the body, credentials sent blotted out;
        no response headers."""
        a = attempt.action
        if self._http is None:
            self._http = outbound.client(outbound.Policy.from_settings(self.settings))
        client = self._http
        headers: dict[str, str] = a.get("headers") or {}
        body = a.get("body")
        kw: dict[str, Any] = {"headers": headers}
        if isinstance(body, str):
            kw["content"] = body
        elif body is not None:
            kw["json"] = body
        timeout = attempt.timeout_s or HTTP_DEFAULT_TIMEOUT_S
        keep_bytes = self.settings.http_log_bytes
        method = a.get("method", "POST")
        answer: list[tuple[int, str, bytes]] = []

        async def call() -> None:
            async with client.stream(method, a["url"], timeout=timeout, **kw) as resp:
                kept = bytearray()  # a margin past the limit: no credential is cut in two
                async for chunk in resp.aiter_bytes():
                    kept += chunk
                    if len(kept) > keep_bytes + REDACT_MARGIN:
                        break
                answer.append((resp.status_code, resp.reason_phrase, bytes(kept)))

        try:
            stopped = await _wait_or_cancel(call(), attempt)
        except httpx.TimeoutException as exc:
            return Outcome(RunState.timed_out, message=f"HTTP timeout: {exc}")
        except httpx.HTTPError as exc:
            if refusal := outbound.refused(exc):
                return Outcome(RunState.failed, message=str(refusal))
            return Outcome(RunState.failed, message=f"HTTP error: {type(exc).__name__}: {exc}")
        if stopped:
            return stopped
        status, reason, kept = answer[0]
        shown = redact(kept, headers)
        attempt.output.write(f"HTTP {status} {reason}\n".encode())
        attempt.output.write(shown[:keep_bytes])
        if len(shown) > keep_bytes:
            attempt.output.write(f"\n[not kept: the body past {keep_bytes} bytes]\n".encode())
        ok = status in a["expect_status"] if a.get("expect_status") else 200 <= status < 300
        if ok:
            return Outcome(RunState.succeeded, message=f"{method} success")
        return Outcome(RunState.failed, message=f"HTTP {status} {reason}".strip())


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


class Child:
    """A command the spawner started: its output goes straight to the attempt's sink (no
    buffer in between, reads as large as the pipe holds); its end comes from the spawner."""

    def __init__(self, pid: int, exited: asyncio.Future[int]) -> None:
        self.pid = pid
        self._exited = exited
        self._transport: asyncio.BaseTransport | None = None
        self.drained: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def attach(
        cls, pid: int, exited: asyncio.Future[int], out: int, sink: OutputSink
    ) -> Child:
        child = cls(pid, exited)
        loop = asyncio.get_running_loop()
        pipe = os.fdopen(out, "rb", buffering=0)
        try:
            child._transport, _ = await loop.connect_read_pipe(
                lambda: _Pump(sink, child.drained), pipe
            )
        except BaseException:
            pipe.close()
            raise
        return child

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class _Pump(asyncio.Protocol):
    """A command's output pipe, written to the attempt's sink as it comes."""

    def __init__(self, sink: OutputSink, drained: asyncio.Future[None]) -> None:
        self.sink = sink
        self.drained = drained

    def data_received(self, data: bytes) -> None:
        self.sink.write(data)

    def eof_received(self) -> bool | None:
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.drained.done():
            self.drained.set_result(None)


async def _kill_group(proc: Child) -> None:
    """TERM the whole process group, then KILL whatever is left (once the command itself
    ended, the spawner killed its group already)."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()
