"""The ledger's one door, on both backends: every state a run enters is logged exactly once,
and a change that is stale (another attempt, another worker, a state the machine does not
lead from) changes nothing and logs nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gnomon.config import Settings
from gnomon.domain import RetryPolicy, RunChange, new_run, settle
from gnomon.service import Service
from gnomon.specs import JobSpec, RunRequest
from gnomon.store import events as event_store
from gnomon.store import ledger
from gnomon.store import runs as run_store
from gnomon.vocabulary import RunState
from tests.service.conftest import ADMIN

S = RunState


@pytest.fixture(params=["sqlite", "postgresql"])
async def svc(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    if request.param == "sqlite":
        settings = Settings(data_dir=tmp_path)
    else:
        settings = Settings(data_dir=tmp_path, database_url=request.getfixturevalue("postgres_url"))
    service = await Service.open(settings)
    await service.access.bootstrap(tmp_path)
    yield service
    await service.close()


async def _job(svc: Service, **fields: Any) -> dict[str, Any]:
    spec = {"name": "j", "action": {"type": "noop"}, "retry": {"max_attempts": 2}, **fields}
    return await svc.jobs.create(ADMIN, JobSpec.model_validate(spec))


async def _log(svc: Service, run_id: str) -> list[tuple[str, int]]:
    async with svc.db.read() as conn:
        return [(e["state"], e["attempt"]) for e in await event_store.for_run(conn, run_id)]


async def _claim(svc: Service, worker: str = "w", limit: int = 10) -> list[dict[str, Any]]:
    now = time.time()
    async with svc.db.write() as conn:
        return await ledger.claim(
            conn,
            executors=["local"],
            lanes=[(None, limit)],
            worker_id=worker,
            lease_until=now + 60,
            now=now,
        )


async def _move(svc: Service, *changes: RunChange, worker: str | None = "w") -> list[str]:
    async with svc.db.write() as conn:
        return [r["id"] for r in await ledger.move(conn, changes, worker_id=worker)]


async def test_each_state_entered_is_logged_once(svc: Service) -> None:
    job = await _job(svc)
    run = (await svc.runs.submit(ADMIN, job["id"], [RunRequest()]))[0]
    (claimed,) = await _claim(svc)
    assert claimed["id"] == run["id"] and claimed["action"]["type"] == "noop"
    now = time.time()
    start = RunChange(run["id"], now, (S.running,), {"started_at": now}, 1)
    assert await _move(svc, start) == [run["id"]]
    policy = RetryPolicy(max_attempts=2, backoff_s=0, jitter=0)
    assert await _move(svc, settle(claimed, S.failed, policy, time.time())) == [run["id"]]
    (again,) = await _claim(svc)
    assert again["attempt"] == 2
    end = settle(again, S.failed, policy, time.time())
    assert end.path == (S.failed,)  # no attempts left
    assert await _move(svc, RunChange(run["id"], time.time(), (S.running,), attempt=2).then(end))
    assert await _log(svc, run["id"]) == [
        ("queued", 1),
        ("claimed", 1),
        ("running", 1),
        ("failed", 1),
        ("queued", 2),
        ("claimed", 2),
        ("running", 2),
        ("failed", 2),
    ]


async def test_stale_changes_change_nothing(svc: Service) -> None:
    job = await _job(svc)
    run = (await svc.runs.submit(ADMIN, job["id"], [RunRequest()]))[0]
    now = time.time()
    start = RunChange(run["id"], now, (S.running,), {"started_at": now}, 1)
    assert await _move(svc, start, worker=None) == []  # queued: `running` is not next
    (claimed,) = await _claim(svc, worker="w1")
    assert await _move(svc, start, worker="w2") == []  # another worker's lease
    assert await _move(svc, RunChange(run["id"], now, (S.running,), attempt=2)) == []
    policy = RetryPolicy(max_attempts=2, backoff_s=0, jitter=0)
    assert await _move(svc, settle(claimed, S.lost, policy, now), worker="w1")  # on to attempt 2
    late = settle(claimed, S.succeeded, policy, time.time())  # attempt 1 reporting late
    assert await _move(svc, late, worker=None) == []
    async with svc.db.read() as conn:
        row = await run_store.get(conn, run["id"])
    assert row is not None and (row["state"], row["attempt"]) == ("queued", 2)
    assert await _log(svc, run["id"]) == [("queued", 1), ("claimed", 1), ("lost", 1), ("queued", 2)]


async def test_a_slot_is_filled_once(svc: Service) -> None:
    job = await _job(svc)
    now = time.time()
    async with svc.db.write() as conn:
        sched = "01HSCHED000000000000000000"
        first = new_run("01HRUN0000000000000000000A", job, None, now, scheduled_for=now)
        second = new_run("01HRUN0000000000000000000B", job, None, now, scheduled_for=now)
        first["schedule_id"] = second["schedule_id"] = sched
        assert [r["id"] for r in await ledger.insert_slots(conn, [first], now)] == [first["id"]]
        assert await ledger.insert_slots(conn, [second], now) == []
    assert await _log(svc, first["id"]) == [("queued", 1)]
    assert await _log(svc, second["id"]) == []


async def test_concurrency_limit_and_take(svc: Service) -> None:
    job = await _job(svc, concurrency={"max_running": 1})
    runs = await svc.runs.submit(ADMIN, job["id"], [RunRequest()] * 3)
    (first,) = await _claim(svc)
    assert await _claim(svc) == []  # the job holds its one
    second, third = [r for r in runs if r["id"] != first["id"]]
    now = time.time()
    async with svc.db.write() as conn:
        assert await ledger.take(conn, second, worker_id="site", lease_until=now + 9, now=now)
        assert not await ledger.take(conn, second, worker_id="site", lease_until=now, now=now)
    assert await _log(svc, second["id"]) == [("queued", 1), ("claimed", 1)]
    assert await _log(svc, third["id"]) == [("queued", 1)]
