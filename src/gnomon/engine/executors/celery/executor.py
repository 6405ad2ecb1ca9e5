"""The Celery executor: an attempt becomes a task on a real broker (Redis, or RabbitMQ by URL);
workers started with `celery -A gnomon.engine.executors.celery.worker worker` (the `worker`
module beside this one) run it and report into Redis.

Publishing is batched (one producer, many messages, off the event loop); the reports of every
task in flight are read with one pipelined round trip per poll. A task whose worker stops
beating for `celery_lost_after_s` is lost (then retried by the job's policy as a new attempt,
a new task id); the task's own id is `<run id>-<attempt>`, so a late or duplicate report can
only ever settle the attempt it belongs to, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis.asyncio as aioredis
import structlog

from gnomon.abc import Attempt, Executor, Outcome
from gnomon.config import Settings
from gnomon.domain import CeleryOptions, RunState
from gnomon.engine.executors.celery.protocol import (
    RESULT_TTL_S,
    TASK,
    cancel_key,
    claim_key,
    done_key,
    make_app,
)

log = structlog.get_logger(__name__)

STOP_WAIT_S = 5.0  # after a cancel or timeout: how long the worker may take to confirm


@dataclass
class _Task:
    task_id: str
    attempt: Attempt
    done: asyncio.Future[dict[str, Any]]
    seq: int = -1
    heard_at: float = field(default_factory=time.monotonic)  # when the beat last changed
    worker: str | None = None
    total: int = 0


class CeleryExecutor(Executor):
    name = "celery"
    remote = True

    def __init__(self, settings: Settings):
        self.settings = settings
        url = settings.celery_report
        if not url:
            raise ValueError("the celery executor needs GNOMON_CELERY_REPORT_URL (a Redis URL)")
        self.app = make_app(settings)
        self.redis = aioredis.Redis.from_url(url)
        self._tasks: dict[str, _Task] = {}
        self._outbox: list[tuple[str, dict[str, Any], str, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def execute(self, attempt: Attempt) -> Outcome:
        run, action = attempt.run, attempt.action
        if action["type"] == "task":
            return Outcome(RunState.failed, message="a Celery worker cannot run 'task' actions")
        options = CeleryOptions.model_validate(run.get("executor_options") or {})
        task_id = f"{run['id']}-{run['attempt']}"
        payload = {
            "run": {
                "id": run["id"],
                "job_id": run["job_id"],
                "attempt": run["attempt"],
                "space": run.get("space"),  # the worker grants secrets by it
            },
            "action": action,
            "params": attempt.params,
            "timeout_s": attempt.timeout_s,
        }
        try:
            await self._publish(task_id, payload, options.queue or self.settings.celery_queue)
        except Exception as exc:  # the broker is away: nothing ran, try again later
            return Outcome(RunState.lost, message=f"could not publish to the broker: {exc}")
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        task = _Task(task_id, attempt, done)
        self._tasks[task_id] = task
        attempt.note(external_id=task_id, status="sent")
        self._follow()
        try:
            return await self._await(task)
        except asyncio.CancelledError:  # the server is stopping: stop the task, end lost
            with contextlib.suppress(Exception):
                await asyncio.shield(self._cancel(task_id))
            raise
        finally:
            self._tasks.pop(task_id, None)

    async def _await(self, task: _Task) -> Outcome:
        attempt = task.attempt
        cancel = asyncio.ensure_future(attempt.cancelled.wait())
        # The worker enforces the timeout; this is the backstop for a worker that never starts.
        limit = None if attempt.timeout_s is None else attempt.timeout_s + STOP_WAIT_S
        try:
            finished, _ = await asyncio.wait(
                {task.done, cancel}, timeout=limit, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            cancel.cancel()
        if task.done not in finished:
            await self._cancel(task.task_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task.done), STOP_WAIT_S)
            if not task.done.done():
                if cancel in finished:
                    return Outcome(RunState.cancelled, message="cancelled")
                return Outcome(RunState.timed_out, message=f"timed out after {limit:g}s")
        return self._outcome(task, task.done.result())

    def _outcome(self, task: _Task, report: dict[str, Any]) -> Outcome:
        self._output(task, report)
        state = RunState(report["state"])
        message = report.get("message")
        if report.get("worker"):
            message = f"{message or state.value} (worker {report['worker']})"
        return Outcome(state, exit_code=report.get("exit_code"), message=message)

    # --- publishing, batched --------------------------------------------------------------

    async def _publish(self, task_id: str, payload: dict[str, Any], queue: str) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((task_id, payload, queue, fut))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_loop(), name="gnomon-celery-send")
        await fut

    async def _send_loop(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await asyncio.to_thread(self._send, batch)
            except Exception as exc:
                for *_, fut in batch:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for *_, fut in batch:
                if not fut.done():
                    fut.set_result(None)

    def _send(self, batch: list[tuple[str, dict[str, Any], str, asyncio.Future[None]]]) -> None:
        with self.app.producer_or_acquire() as producer:
            for task_id, payload, queue, _ in batch:
                self.app.send_task(
                    TASK, args=[payload], task_id=task_id, queue=queue, producer=producer
                )

    # --- following every task with one round trip per poll --------------------------------

    def _follow(self) -> None:
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll_loop(), name="gnomon-celery-poll")

    async def _poll_loop(self) -> None:
        while self._tasks:
            try:
                await self._poll()
            except Exception:
                log.exception("celery poll failed")
            await asyncio.sleep(self.settings.celery_poll_s)

    async def _poll(self) -> None:
        tasks = list(self._tasks.values())
        if not tasks:
            return
        pipe = self.redis.pipeline(transaction=False)
        pipe.mget([done_key(t.task_id) for t in tasks])
        pipe.mget([claim_key(t.task_id) for t in tasks])
        dones, beats = await pipe.execute()
        now = time.monotonic()
        lost = []
        for task, done, beat in zip(tasks, dones, beats, strict=True):
            if done is not None:
                if not task.done.done():
                    task.done.set_result(orjson.loads(done))
                continue
            if beat is None:
                task.heard_at = now  # still waiting in the broker: not a worker's to lose
                continue
            info = orjson.loads(beat)
            if task.worker is None:
                task.worker = info["worker"]
                task.attempt.note(status=f"running on {task.worker}")
            if info["seq"] != task.seq:
                task.seq, task.heard_at = info["seq"], now
                self._output(task, info)
            elif now - task.heard_at > self.settings.celery_lost_after_s:
                lost.append(task)
        for task in lost:
            await self._cancel(task.task_id)  # should the worker come back, it stops
            if not task.done.done():
                silent = self.settings.celery_lost_after_s
                task.done.set_result(
                    {
                        "state": RunState.lost.value,
                        "message": f"worker {task.worker} silent for {silent:g}s",
                    }
                )

    def _output(self, task: _Task, info: dict[str, Any]) -> None:
        """Pass on the output the worker's tail has gained since the last look."""
        total, text = info.get("total") or 0, info.get("output") or ""
        if total > task.total:
            data = text.encode()
            task.attempt.output.write(data[-(total - task.total) :])
            task.total = total

    async def _cancel(self, task_id: str) -> None:
        await self.redis.set(cancel_key(task_id), b"1", ex=RESULT_TTL_S)
        if not await self.redis.exists(claim_key(task_id)):
            # Not started: it never will (the worker checks the key after claiming).
            task = self._tasks.get(task_id)
            if task is not None and not task.done.done():
                task.done.set_result({"state": RunState.cancelled.value, "message": "cancelled"})

    async def close(self) -> None:
        for part in (self._poller, self._sender):
            if part is not None:
                part.cancel()
                await asyncio.gather(part, return_exceptions=True)
        await self.redis.aclose()
