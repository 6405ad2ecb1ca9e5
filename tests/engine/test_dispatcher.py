"""The dispatcher in-process, on a real database: a no-op's whole attempt is written with its
claim, a shell run's with a later claim or flush, and a run queued while a claim is under way
is claimed at once (not at the next poll)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gnomon.config import Settings
from gnomon.engine.dispatcher import Dispatcher
from gnomon.engine.executors.local import LocalExecutor
from gnomon.service import Service
from gnomon.specs import JobSpec, RunRequest
from gnomon.store import events as event_store
from tests.service.conftest import ADMIN


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Service]:
    """A service with its group commit and a local dispatcher; polling slowed to 30 s, so
    whatever happens fast happened because of a wake-up, not a poll."""
    svc = await Service.open(Settings(data_dir=tmp_path, poll_s=30, sandbox="none"))
    await svc.access.bootstrap(tmp_path)
    svc.start()
    dispatcher = Dispatcher(svc.execution, svc.settings, svc.signals, [LocalExecutor(svc.settings)])
    dispatcher.start()
    yield svc
    await dispatcher.stop()
    await svc.close()


async def _job(svc: Service, action: dict[str, Any]) -> str:
    spec = JobSpec.model_validate({"name": f"j{time.monotonic_ns()}", "action": action})
    return (await svc.jobs.create(ADMIN, spec))["id"]


async def _ended(svc: Service, run_id: str, within: float = 10) -> list[dict[str, Any]]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        async with svc.db.read() as conn:
            log = await event_store.for_run(conn, run_id)
        if log and log[-1]["state"] in ("succeeded", "failed"):
            return log
        await asyncio.sleep(0.01)
    raise AssertionError(f"run {run_id} did not end: {log}")


async def test_a_noop_logs_its_whole_attempt(running: Service) -> None:
    job = await _job(running, {"type": "noop"})
    (run,) = await running.runs.submit(ADMIN, job, [RunRequest()])
    log = await _ended(running, run["id"])
    assert [e["state"] for e in log] == ["queued", "claimed", "running", "succeeded"]
    failing = await _job(running, {"type": "noop", "fail": True})
    (run,) = await running.runs.submit(ADMIN, failing, [RunRequest()])
    assert [e["state"] for e in await _ended(running, run["id"])][-1] == "failed"


async def test_runs_one_after_another_are_not_left_for_the_poll(running: Service) -> None:
    job = await _job(running, {"type": "noop"})
    started = time.monotonic()
    for _ in range(50):
        (run,) = await running.runs.submit(ADMIN, job, [RunRequest()])
        await _ended(running, run["id"], within=5)
    assert time.monotonic() - started < 20  # a missed wake-up costs 30 s


async def test_a_shell_run_ends_with_the_next_claim_or_its_flush(running: Service) -> None:
    job = await _job(running, {"type": "shell", "command": "echo hi"})
    (run,) = await running.runs.submit(ADMIN, job, [RunRequest()])
    log = await _ended(running, run["id"])
    assert [e["state"] for e in log] == ["queued", "claimed", "running", "succeeded"]
    got = await running.runs.get(ADMIN, run["id"], output=True)
    assert got["output"] == "hi\n" and got["exit_code"] == 0
