"""The worker half of the `celery` executor:
`celery -A gnomon.engine.executors.celery.worker worker -Q gnomon`.

A worker runs the attempt it is handed (shell, http or noop, with the local executor's rules)
and reports into Redis (the report store): a claim-and-beat key while it runs, a result key
when it ends. gnomon's executor reads those for every task in flight in one round trip and
writes the ledger. Messages are acknowledged late and rejected when a worker dies; a delivery
of a task that another delivery already claimed is refused, so a duplicate never runs an
attempt twice — a worker killed mid-run stops beating, gnomon records the attempt `lost` and
retries it as a new attempt (a new task).

Settings come from the same GNOMON_* variables as the server: GNOMON_CELERY_BROKER_URL,
GNOMON_CELERY_REPORT_URL (a Redis; default: the broker when it is a Redis), GNOMON_SECRETS.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from typing import Any

import orjson
import redis

from gnomon.abc import Attempt, OutputSink
from gnomon.config import Settings
from gnomon.domain import RunState
from gnomon.engine.executors.celery.protocol import (
    RESULT_TTL_S,
    TASK,
    cancel_key,
    claim_key,
    done_key,
    make_app,
)

BEAT_S = 0.5
TAIL_BYTES = 256 * 1024


class _Tail(OutputSink):
    def __init__(self) -> None:
        self.data = bytearray()
        self.total = 0

    def write(self, data: bytes) -> None:
        self.data += data
        self.total += len(data)
        if len(self.data) > TAIL_BYTES:
            del self.data[: len(self.data) - TAIL_BYTES]

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", errors="replace")


settings = Settings()
app = make_app(settings)
_report: redis.Redis | None = None
_loop: asyncio.AbstractEventLoop | None = None
_executor: Any = None  # this worker process's LocalExecutor, made on its first task


def _process_loop() -> asyncio.AbstractEventLoop:
    """This worker process's one event loop: its local executor (and the spawner that starts
    its shell commands) lives across tasks instead of starting anew for each."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop


def report() -> redis.Redis:
    global _report
    if _report is None:
        url = settings.celery_report
        if not url:
            raise RuntimeError("set GNOMON_CELERY_REPORT_URL to a Redis URL")
        _report = redis.Redis.from_url(url)
    return _report


def me() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@app.task(name=TASK, bind=True)
def run_attempt(self: Any, payload: dict[str, Any]) -> None:
    """Run one attempt of a gnomon run, at most once per task id."""
    task_id = self.request.id
    r = report()
    beat = {"worker": me(), "seq": 0, "total": 0, "output": ""}
    pipe = r.pipeline(transaction=False)
    pipe.set(claim_key(task_id), orjson.dumps(beat), nx=True, ex=RESULT_TTL_S)
    pipe.exists(cancel_key(task_id))
    claimed, cancelled = pipe.execute()
    if not claimed:
        return  # another delivery has (or had) it: gnomon settles that one, never two
    action = payload["action"]
    if cancelled:
        outcome: dict[str, Any] = {
            "state": RunState.cancelled.value,
            "message": "cancelled before it ran",
        }
    elif action["type"] == "noop" and not action.get("sleep_s"):
        failed = bool(action.get("fail"))
        outcome = {
            "state": (RunState.failed if failed else RunState.succeeded).value,
            "exit_code": 1 if failed else 0,
            "message": "noop asked to fail" if failed else None,
            "worker": beat["worker"],
        }
    else:
        outcome = _process_loop().run_until_complete(_execute(task_id, payload, r, beat))
    r.set(done_key(task_id), orjson.dumps(outcome), nx=True, ex=RESULT_TTL_S)


async def _execute(
    task_id: str, payload: dict[str, Any], r: redis.Redis, beat: dict[str, Any]
) -> dict[str, Any]:
    from gnomon.engine.executors.local import LocalExecutor  # the worker's only heavy import

    action = payload["action"]
    tail = _Tail()
    attempt = Attempt(
        run=payload["run"],
        action=action,
        params=payload.get("params") or {},
        timeout_s=payload.get("timeout_s"),
        output=tail,
    )
    global _executor
    if _executor is None:  # one per worker process: its spawner lives across tasks
        _executor = LocalExecutor(settings)
    executor = _executor
    if (now := executor.immediate(attempt)) is not None:
        outcome = now
    elif action["type"] not in ("shell", "http", "noop"):
        cannot = f"a Celery worker cannot run '{action['type']}'"
        return {"state": RunState.failed.value, "message": cannot}
    else:
        work = asyncio.ensure_future(executor.execute(attempt))
        while not work.done():
            await asyncio.wait({work}, timeout=BEAT_S)
            beat.update(seq=beat["seq"] + 1, total=tail.total, output=tail.text())
            pipe = r.pipeline(transaction=False)
            pipe.set(claim_key(task_id), orjson.dumps(beat), ex=RESULT_TTL_S)
            pipe.exists(cancel_key(task_id))
            if pipe.execute()[1]:
                attempt.cancelled.set()
        outcome = work.result()
    return {
        "state": RunState(outcome.state).value,
        "exit_code": outcome.exit_code,
        "message": outcome.message,
        "output": tail.text(),
        "total": tail.total,
        "worker": beat["worker"],
        "at": time.time(),
    }
