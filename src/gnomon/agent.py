"""The reference site agent: polls a site's queue, runs each run's action, reports back.

Outbound only (it opens every connection). Task actions go to Python handlers found by
`module:object` — a mapping of task names to callables, an object with a method per task
name, or one callable for every task; each is called with a `Task` and returns None or 0
(success), another int (an exit code), or raises (failed). Shell actions run as processes.

Network errors and server restarts are ridden out with exponential backoff; a run is never
started twice by one agent: a journal (in memory, and in `state_file` when given) remembers
each run it started, and a run that comes back (its lease lapsed and it was retried) is
answered from the journal instead of being run again.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

from gnomon.vocabulary import RunState

S = RunState

log = logging.getLogger("gnomon.agent")

JOURNAL_MAX = 10000
STATUS_RETRY_S = 120.0  # how long a progress report is retried before it is given up


class Refused(Exception):
    """The server answered with a client error: retrying will not help."""

    def __init__(self, status: int, text: str):
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


def _transient(exc: BaseException) -> bool:
    return isinstance(exc, httpx.TransportError | _ServerError)


class _ServerError(Exception):
    pass


@dataclass
class Result:
    state: RunState  # succeeded | failed | cancelled | timed_out
    exit_code: int | None = None
    message: str | None = None


class Task:
    """What a handler gets: the task's name and params, and ways to tell the server."""

    def __init__(self, agent: Agent, run: dict[str, Any]):
        self.agent = agent
        self.run = run
        self.id: str = run["id"]
        action = run["action"]
        self.name: str = action.get("name", action["type"])
        self.params: dict[str, Any] = {**action.get("params", {}), **(run.get("params") or {})}
        self.cancelled = threading.Event()
        self._out: list[str] = []
        self._lock = threading.Lock()

    def status(self, word: str, eta_s: float | None = None) -> None:
        """Report progress (e.g. "EXPOSING"), with an estimate of the seconds left."""
        self.agent.report(self, {"status": word, "eta_s": eta_s}, give_up_after=STATUS_RETRY_S)

    def output(self, text: str) -> None:
        """Append to the run's output (sent with the next report or heartbeat)."""
        with self._lock:
            self._out.append(text)

    def take_output(self) -> str:
        with self._lock:
            text, self._out = "".join(self._out), []
        return text

    def put_back(self, text: str) -> None:
        """Output a report could not deliver: first in line for the next one."""
        with self._lock:
            self._out.insert(0, text)

    @property
    def has_output(self) -> bool:
        with self._lock:
            return bool(self._out)


Handler = Callable[[Task], Any]


def load_handlers(ref: str) -> Callable[[str], Handler | None]:
    """`module:object` → a lookup from task name to handler."""
    module_name, _, attr = ref.partition(":")
    if not module_name or not attr:
        raise ValueError(f"handlers must be 'module:object', got {ref!r}")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    if isinstance(obj, Mapping):
        return lambda name: obj.get(name)
    if callable(obj):
        return lambda name: obj
    return lambda name: getattr(obj, name, None)


class Agent:
    def __init__(
        self,
        url: str,
        token: str | None,
        site: str,
        handlers: Callable[[str], Handler | None],
        *,
        name: str = "agent",
        wait_s: float = 20.0,
        state_file: Path | None = None,
    ):
        self.url = url.rstrip("/")
        self.site = site
        self.name = name
        self.wait_s = wait_s
        self.handlers = handlers
        self.state_file = state_file
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.stopping = threading.Event()
        self.journal: dict[str, dict[str, Any]] = {}
        if state_file is not None and state_file.exists():
            self.journal = json.loads(state_file.read_text() or "{}")
        self._http = self._client()

    def _client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers, timeout=self.wait_s + 30)

    # --- talking to the server ------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any], *, client: httpx.Client | None = None) -> Any:
        resp = (client or self._http).post(path, json=body)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise _ServerError(f"HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise Refused(resp.status_code, resp.text[:300])
        return resp.json()

    def _retrying(self, give_up_after: float | None = None) -> Retrying:
        def stopped(_: Any) -> bool:
            return self.stopping.is_set()

        stop = stop_never if give_up_after is None else stop_after_delay(give_up_after)
        return Retrying(
            retry=retry_if_exception(_transient),
            wait=wait_exponential_jitter(initial=0.2, max=10.0),
            stop=stop | stopped,
            before_sleep=lambda s: log.warning(
                "server unreachable (%s); retrying", s.outcome.exception() if s.outcome else "?"
            ),
            reraise=True,
        )

    def claim(self) -> list[dict[str, Any]]:
        body = {"max": 1, "wait_s": self.wait_s, "agent": self.name}
        for attempt in self._retrying():
            with attempt:
                return self._post(f"/v1/sites/{self.site}/claim", body)["runs"]
        return []

    def report(
        self, task: Task, fields: dict[str, Any], *, give_up_after: float | None = None
    ) -> dict[str, Any] | None:
        """Send a report (with any pending output); None when the server refuses it (the
        attempt is over, or another agent holds the run)."""
        body = {k: v for k, v in fields.items() if v is not None}
        body["attempt"] = task.run["attempt"]
        if out := task.take_output():
            body["output"] = out
        try:
            for attempt in self._retrying(give_up_after):
                with attempt:
                    return self._post(f"/v1/runs/{task.id}/report", body)
        except Refused as exc:
            log.warning("report on run %s refused: %s", task.id, exc)
        except Exception as exc:  # gave up on a progress report: the work goes on
            log.warning("report on run %s not delivered: %s", task.id, exc)
            if out:
                task.put_back(out)
        return None

    # --- the loop -------------------------------------------------------------------------

    def run_forever(self) -> None:
        log.info("agent %s polling site %s at %s", self.name, self.site, self.url)
        while not self.stopping.is_set():
            try:
                runs = self.claim()
            except Refused as exc:
                log.error("claim refused: %s", exc)
                self.stopping.wait(5)
                continue
            for run in runs:
                self.handle(run)

    def stop(self) -> None:
        self.stopping.set()

    def handle(self, run: dict[str, Any]) -> None:
        task = Task(self, run)
        seen = self.journal.get(run["id"])
        if seen is not None:  # started before: never again
            result = Result(**seen["result"]) if seen.get("result") else None
            if result is None:
                result = Result(S.failed, message="the agent stopped while this ran; not rerun")
            log.warning("run %s came back (attempt %s); not run again", run["id"], run["attempt"])
        else:
            self._remember(run["id"], None)
            result = self._execute(task)
            self._remember(run["id"], result)
        final = {"state": result.state, "exit_code": result.exit_code, "message": result.message}
        self.report(task, final)

    def _remember(self, run_id: str, result: Result | None) -> None:
        self.journal[run_id] = {"result": None if result is None else result.__dict__}
        while len(self.journal) > JOURNAL_MAX:
            self.journal.pop(next(iter(self.journal)))
        if self.state_file is not None:
            tmp = self.state_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.journal))
            os.replace(tmp, self.state_file)

    def _execute(self, task: Task) -> Result:
        beat = threading.Thread(target=self._keep_lease, args=(task,), daemon=True)
        done = threading.Event()
        task._done = done  # type: ignore[attr-defined]
        self.report(task, {"state": S.running.value}, give_up_after=STATUS_RETRY_S)
        beat.start()
        try:
            kind = task.run["action"]["type"]
            if kind == "task":
                return self._run_handler(task)
            if kind == "shell":
                return self._run_shell(task)
            if kind == "noop":
                return Result(S.succeeded, 0)
            return Result(S.failed, message=f"a site agent cannot run {kind!r} actions")
        finally:
            done.set()
            beat.join(5)

    def _run_handler(self, task: Task) -> Result:
        handler = self.handlers(task.name)
        if handler is None:
            return Result(S.failed, message=f"no handler for task {task.name!r}")
        try:
            value = handler(task)
        except Exception as exc:
            log.exception("handler for %s failed", task.name)
            return Result(S.failed, 1, f"{type(exc).__name__}: {exc}")
        if task.cancelled.is_set():
            return Result(S.cancelled, message="cancelled on request")
        if value is None or value == 0:
            return Result(S.succeeded, 0)
        if isinstance(value, int) and not isinstance(value, bool):
            return Result(S.failed, value)
        return Result(S.succeeded, 0, str(value))

    def _run_shell(self, task: Task) -> Result:
        action = task.run["action"]
        command = action["command"]
        env = {**os.environ, **action.get("env", {})}
        proc = subprocess.Popen(
            command,
            shell=isinstance(command, str),
            cwd=action.get("cwd"),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        timeout = task.run.get("timeout_s")
        deadline = time.monotonic() + timeout if timeout else None
        reader = threading.Thread(target=self._pump, args=(proc, task), daemon=True)
        reader.start()
        while proc.poll() is None:
            late = deadline is not None and time.monotonic() > deadline
            if late or task.cancelled.is_set():
                with contextlib.suppress(OSError):
                    os.killpg(proc.pid, 9)
                proc.wait()
                reader.join(5)
                if late:
                    return Result(S.timed_out, message=f"timed out after {timeout}s")
                return Result(S.cancelled, message="cancelled on request")
            time.sleep(0.05)
        reader.join(5)
        code = proc.returncode
        return Result(S.succeeded if code == 0 else S.failed, code)

    @staticmethod
    def _pump(proc: subprocess.Popen[bytes], task: Task) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            task.output(line.decode("utf-8", errors="replace"))

    def _keep_lease(self, task: Task) -> None:
        """While the task runs: heartbeats (a third of the lease apart), output, cancels."""
        run = task.run
        lease = _seconds_between(run.get("claimed_at"), run.get("lease_expires_at")) or 30.0
        every = max(0.2, lease / 3)
        client = self._client()
        done: threading.Event = task._done  # type: ignore[attr-defined]
        try:
            while not done.wait(every):
                try:
                    if task.has_output:
                        self.report(task, {}, give_up_after=every)
                    beat = self._post(
                        f"/v1/sites/{self.site}/heartbeat", {"agent": self.name}, client=client
                    )
                    if task.id in beat["cancel"]:
                        task.cancelled.set()
                except (httpx.TransportError, _ServerError, Refused) as exc:
                    log.warning("heartbeat failed: %s", exc)
        finally:
            client.close()


def _seconds_between(a: str | None, b: str | None) -> float | None:
    if not a or not b:
        return None
    from datetime import datetime

    def parse(s: str) -> float:
        return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()

    return parse(b) - parse(a)
