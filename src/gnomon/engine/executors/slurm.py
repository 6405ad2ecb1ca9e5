"""The Slurm executor: `sbatch --parsable` with an argument vector, one `squeue --json` per poll
cycle for every job followed, the completion record (`sacct -c`) once a job has left the queue,
`scancel` to cancel or time out. The job's output file is streamed into the run's log."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import structlog

from gnomon.abc import Attempt, Executor, Outcome
from gnomon.config import Settings
from gnomon.domain import RunState, SlurmOptions, secret_env, shell_command, slurm_safe_env
from gnomon.engine.executors.local import inherited_env, param_env

log = structlog.get_logger(__name__)

# Slurm's final job states and what they mean for a run.
FINAL = {
    "COMPLETED": RunState.succeeded,
    "FAILED": RunState.failed,
    "OUT_OF_MEMORY": RunState.failed,
    "SPECIAL_EXIT": RunState.failed,
    "BOOT_FAIL": RunState.lost,
    "NODE_FAIL": RunState.lost,
    "PREEMPTED": RunState.lost,
    "TIMEOUT": RunState.timed_out,
    "DEADLINE": RunState.timed_out,
    "CANCELLED": RunState.cancelled,
    "REVOKED": RunState.cancelled,
}
GONE_POLLS = 20  # polls a job may be missing from both squeue and sacct before it is lost
STOP_WAIT_S = 10.0  # how long to wait for Slurm to confirm a scancel
READ_MAX = 1 << 20  # output bytes read per job per poll
JOB_NAME_RE = re.compile(r"[^A-Za-z0-9_.:-]")


def exit_code(raw: Any) -> int | None:
    """A job's exit code from squeue's `exit_code`: a raw wait status (22.05: 768 = exit 3)
    or, in newer releases, an object with `return_code` and `signal`."""
    if isinstance(raw, dict):
        signal = raw.get("signal", {}).get("id", {})
        signal = signal.get("number", 0) if isinstance(signal, dict) else signal
        code = raw.get("return_code", {})
        code = code.get("number") if isinstance(code, dict) else code
        if signal:
            return 128 + int(signal)
        return None if code is None else int(code)
    if isinstance(raw, int):
        return 128 + (raw & 0x7F) if raw & 0x7F else (raw >> 8) & 0xFF
    return None


def sacct_exit(text: str) -> int | None:
    """`3:0` (code:signal) as an exit code."""
    code, _, signal = text.partition(":")
    try:
        return 128 + int(signal) if signal and int(signal) else int(code)
    except ValueError:
        return None


def job_state(raw: Any) -> str:
    if isinstance(raw, list):  # newer releases: a list of flags, the state first
        raw = raw[0] if raw else ""
    return str(raw).split()[0] if raw else ""


@dataclass
class _Job:
    job_id: str
    path: Path
    attempt: Attempt
    done: asyncio.Future[tuple[str, int | None]]
    read: int = 0
    status: str = ""
    missing: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SlurmExecutor(Executor):
    name = "slurm"
    remote = True

    def __init__(self, settings: Settings):
        self.settings = settings
        bin_dir = settings.slurm_bin_dir
        # Found on the server's PATH, never on the one a job's environment names.
        self._bin = (lambda c: str(bin_dir / c)) if bin_dir else (lambda c: shutil.which(c) or c)
        self._env = inherited_env()
        if settings.slurm_conf:
            self._env["SLURM_CONF"] = str(settings.slurm_conf)
        self.output_dir = (settings.slurm_output_dir or settings.data_dir / "slurm").resolve()
        self._submit = asyncio.Semaphore(settings.slurm_submit_parallel)
        # sbatch calls at once, and one more thread for squeue/sacct/scancel
        self._threads = ThreadPoolExecutor(settings.slurm_submit_parallel + 2, "gnomon-slurm")
        self._jobs: dict[str, _Job] = {}
        self._poller: asyncio.Task[None] | None = None

    # --- one attempt ----------------------------------------------------------------------

    async def execute(self, attempt: Attempt) -> Outcome:
        action, run = attempt.action, attempt.run
        if action["type"] != "shell":
            return Outcome(RunState.failed, message="the slurm executor runs shell actions")
        try:
            argv, env, path = self._sbatch(attempt)
        except (KeyError, ValueError) as exc:
            return Outcome(RunState.failed, message=f"cannot submit: {exc.args[0]}")
        async with self._submit:
            code, out, err = await self._run(argv, env)
        job_id = out.strip().split(";")[0]
        if code != 0 or not job_id.isdigit():
            message = err.strip() or out.strip() or f"sbatch exited with {code}"
            attempt.output.write(f"sbatch failed ({code}): {message}\n".encode())
            return Outcome(RunState.failed, exit_code=code if code else 1, message=message)
        done: asyncio.Future[tuple[str, int | None]] = asyncio.get_running_loop().create_future()
        job = _Job(job_id, path, attempt, done)
        self._jobs[job_id] = job
        attempt.note(external_id=job_id, status="PENDING")
        self._follow()
        try:
            return await self._await(job, run)
        except asyncio.CancelledError:  # the server is stopping: the run ends lost and retries
            with contextlib.suppress(Exception):
                await asyncio.shield(self._scancel(job_id))
            raise
        finally:
            self._jobs.pop(job_id, None)

    def _sbatch(self, attempt: Attempt) -> tuple[list[str], dict[str, str], Path]:
        action, run = attempt.action, attempt.run
        options = SlurmOptions.model_validate(run.get("executor_options") or {})
        command = shell_command(action, attempt.params)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{run['id']}-{run['attempt']}.out"
        path.unlink(missing_ok=True)
        argv = [self._bin("sbatch"), "--parsable", f"--output={path}", *options.sbatch_flags()]
        if not options.job_name:
            name = JOB_NAME_RE.sub("_", str(run.get("job_name") or "gnomon"))[:100]
            argv.append(f"--job-name={name}")
        if action.get("cwd"):
            argv.append(f"--chdir={action['cwd']}")
        if isinstance(command, list):
            if command[0].startswith("-"):
                raise ValueError("the batch script (argv[0]) must not start with '-'")
            argv += command
        else:
            argv.append(f"--wrap={command}")
        job_env = {
            **action.get("env", {}),
            **param_env(attempt.params),
            **secret_env(action, self.settings.secrets_for(run.get("space"))),
        }
        env = {
            **self._env,
            **slurm_safe_env(job_env),  # refused at creation; stripped here for older jobs
            "GNOMON_RUN_ID": run["id"],
            "GNOMON_JOB_ID": run["job_id"],
            "GNOMON_ATTEMPT": str(run["attempt"]),
        }
        return argv, env, path

    async def _await(self, job: _Job, run: dict[str, Any]) -> Outcome:
        attempt = job.attempt
        cancel = asyncio.ensure_future(attempt.cancelled.wait())
        try:
            finished, _ = await asyncio.wait(
                {job.done, cancel}, timeout=attempt.timeout_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancel.cancel()
        if job.done in finished:
            state, code = job.done.result()
            return self._outcome(job, state, code)
        # Cancelled or out of time: stop the job and wait for Slurm to say it ended.
        stopped = RunState.cancelled if cancel in finished else RunState.timed_out
        await self._scancel(job.job_id)
        code = None
        with contextlib.suppress(TimeoutError):
            _, code = await asyncio.wait_for(asyncio.shield(job.done), STOP_WAIT_S)
        self._read(job)
        if stopped is RunState.cancelled:
            return Outcome(RunState.cancelled, exit_code=code, message="cancelled (scancel)")
        return Outcome(
            RunState.timed_out,
            exit_code=code,
            message=f"timed out after {attempt.timeout_s:g}s (scancel)",
        )

    def _outcome(self, job: _Job, state: str, code: int | None) -> Outcome:
        self._read(job)
        if state == "LOST":
            return Outcome(RunState.lost, message=f"Slurm has no record of job {job.job_id}")
        result = FINAL.get(state, RunState.failed)
        if result is RunState.succeeded:
            code = 0 if code is None else code
        text = f"Slurm job {job.job_id} {state}"
        if code is not None and result is not RunState.succeeded:
            text += f", exit code {code}"
        return Outcome(result, exit_code=code, message=text)

    # --- following every job with one squeue per cycle ------------------------------------

    def _follow(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_loop(), name="gnomon-slurm-poll")

    async def _poll_loop(self) -> None:
        while self._jobs:
            await asyncio.sleep(self.settings.slurm_poll_s)
            try:
                await self._poll()
            except Exception:
                log.exception("slurm poll failed")

    async def _poll(self) -> None:
        jobs = dict(self._jobs)
        if not jobs:
            return
        code, out, err = await self._run([self._bin("squeue"), "--json"], self._env)
        if code != 0:
            log.warning("squeue failed", code=code, err=err.strip()[:500])
            return
        seen: dict[str, dict[str, Any]] = {}
        for item in orjson.loads(out).get("jobs", []):
            job_id = str(item.get("job_id"))
            if job_id in jobs:
                seen[job_id] = item
        gone = []
        for job_id, job in jobs.items():
            self._read(job)
            item = seen.get(job_id)
            if item is None:
                gone.append(job_id)
                continue
            state = job_state(item.get("job_state"))
            if state in FINAL:
                self._resolve(job, state, exit_code(item.get("exit_code")))
            elif state and state != job.status:
                job.status = state
                job.attempt.note(status=state)
        if gone:
            await self._completed(jobs, gone)

    async def _completed(self, jobs: dict[str, _Job], ids: list[str]) -> None:
        """Jobs that left the queue: their completion record (jobcomp, read by sacct -c)."""
        argv = [
            self._bin("sacct"),
            "-c",
            "--noheader",
            "--parsable2",
            "--format=JobID,State,ExitCode",
            "-j",
            ",".join(ids),
        ]
        code, out, err = await self._run(argv, self._env)
        found: dict[str, tuple[str, int | None]] = {}
        if code == 0:
            for line in out.splitlines():
                parts = line.split("|")
                if len(parts) >= 3 and parts[0] in jobs:
                    found[parts[0]] = (job_state(parts[1]), sacct_exit(parts[2]))
        else:
            log.warning("sacct failed", code=code, err=err.strip()[:500])
        for job_id in ids:
            job = jobs[job_id]
            if job_id in found and found[job_id][0] in FINAL:
                self._resolve(job, *found[job_id])
                continue
            job.missing += 1
            if job.missing >= GONE_POLLS:
                self._resolve(job, "LOST", None)

    def _resolve(self, job: _Job, state: str, code: int | None) -> None:
        if not job.done.done():
            job.done.set_result((state, code))

    def _read(self, job: _Job) -> None:
        """Pass on what the job's output file gained since the last look."""
        try:
            with job.path.open("rb") as f:
                f.seek(job.read)
                while chunk := f.read(READ_MAX):
                    job.read += len(chunk)
                    job.attempt.output.write(chunk)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("cannot read job output", path=str(job.path), error=str(exc))

    # --- commands -------------------------------------------------------------------------

    async def _scancel(self, job_id: str) -> None:
        code, _, err = await self._run([self._bin("scancel"), job_id], self._env)
        if code != 0:
            log.warning("scancel failed", job_id=job_id, err=err.strip()[:500])

    async def _run(self, argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
        """Run a Slurm command (an argument vector, never a shell line) on a thread: Python's
        subprocess starts it with vfork, which costs the server's event loop nothing, where a
        fork from the loop copies the whole server's page tables each time."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, _command, argv, env)

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
        self._threads.shutdown(wait=False, cancel_futures=True)


def _command(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    try:
        done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True)
    except OSError as exc:
        return 127, "", f"cannot run {argv[0]}: {exc.strerror or exc}"
    return (
        done.returncode,
        done.stdout.decode(errors="replace"),
        done.stderr.decode(errors="replace"),
    )
