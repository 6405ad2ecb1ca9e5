"""Upgrading an old ledger: a database made by the first migration, with a token, a job, a
schedule, finished runs with their output and events, and a missed slot, goes through every
migration on both backends; a server of today's code then serves all of it (its summary
included) and runs the old job again."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gnomon.store.db import Database
from tests.api.helpers import wait_state
from tests.server import Server
from tests.store.test_migrations_sites import execute, migrate

SECRET = "gn_old-ledger-token"
TOKEN = "01HOLDTOKEN000000000000000"
JOB = "01HOLDJOB00000000000000000"
SCHEDULE = "01HOLDSCHED000000000000000"
RUNS = [f"01HOLDRUN{i:017d}" for i in range(5)]
T0 = 1_700_000_000.0

ROWS: list[tuple[str, dict[str, Any]]] = [
    ("spaces", {"name": "default", "timezone": "UTC", "created_at": T0}),
    ("spaces", {"name": "lab", "timezone": "Europe/Berlin", "created_at": T0}),
    (
        "tokens",
        {
            "id": TOKEN,
            "name": "admin",
            "hash": hashlib.sha256(SECRET.encode()).hexdigest(),
            "admin": True,
            "created_at": T0,
            "revoked_at": None,
        },
    ),
    ("members", {"token_id": TOKEN, "space": "lab", "role": "manager"}),
    (
        "jobs",
        {
            "id": JOB,
            "space": "lab",
            "name": "nightly",
            "action": json.dumps({"type": "noop"}),
            "executor": "local",
            "timeout_s": 60.0,
            "retry": json.dumps({"max_attempts": 2}),
            "concurrency": json.dumps({}),
            "params": json.dumps({"who": "old"}),
            "created_at": T0,
            "updated_at": T0,
            "deleted_at": None,
        },
    ),
    (
        "schedules",
        {
            "id": SCHEDULE,
            "job_id": JOB,
            "space": "lab",
            "kind": "cron",
            "expr": "0 3 * * *",
            "timezone": "Europe/Berlin",
            "enabled": False,
            "overlap": "skip",
            "catchup_window_s": 3600,
            "catchup": "latest",
            "jitter_s": 0.0,
            "params": json.dumps({}),
            "anchor_at": T0,
            "next_fire_at": None,
            "due_at": None,
            "last_fire_at": T0 + 86_400,
            "created_at": T0,
            "updated_at": T0,
            "deleted_at": None,
        },
    ),
    (
        "fires",
        {
            "schedule_id": SCHEDULE,
            "fire_at": T0 + 3600,
            "until_at": T0 + 7200,
            "count": 2,
            "status": "missed",
            "recorded_at": T0 + 7300,
        },
    ),
    *[
        (
            "runs",
            {
                "id": run_id,
                "job_id": JOB,
                "space": "lab",
                "executor": "local",
                "schedule_id": SCHEDULE if i == 0 else None,
                "scheduled_for": T0 + 86_400 if i == 0 else None,
                "state": "succeeded" if i % 2 == 0 else "failed",
                "status": None,
                "eta_s": None,
                "attempt": 1,
                "max_attempts": 2,
                "params": json.dumps({"who": "old", "i": i}),
                "timeout_s": 60.0,
                "not_before": T0 + i,
                "exit_code": 0 if i % 2 == 0 else 3,
                "message": None if i % 2 == 0 else "exit code 3",
                "external_id": None,
                "output": f"hello from run {i}\n",
                "output_size": len(f"hello from run {i}\n"),
                "worker_id": None,
                "lease_expires_at": None,
                "cancel_requested": False,
                "created_at": T0 + i,
                "claimed_at": T0 + i + 1,
                "started_at": T0 + i + 1,
                "finished_at": T0 + i + 2,
                "updated_at": T0 + i + 2,
            },
        )
        for i, run_id in enumerate(RUNS)
    ],
    *[
        (
            "events",
            {
                "run_id": run_id,
                "job_id": JOB,
                "space": "lab",
                "executor": "local",
                "attempt": 1,
                "state": state,
                "status": None,
                "at": T0 + i + n,
            },
        )
        for i, run_id in enumerate(RUNS)
        for n, state in enumerate(("queued", "running", "succeeded" if i % 2 == 0 else "failed"))
    ],
]


async def _insert(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for table, row in ROWS:
                names = ", ".join(row)
                values = ", ".join(f":{k}" for k in row)
                await conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({values})"), row)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_first_migration_upgrades_keeping_data(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    data = tmp_path / "data"
    if backend == "sqlite":
        data.mkdir()
        raw = None
        url = f"sqlite+aiosqlite:///{data / 'gnomon.db'}"
    else:
        raw = request.getfixturevalue("postgres_url")
        url = raw.replace("postgresql://", "postgresql+asyncpg://")
    await migrate(url, "upgrade", "0001")
    await _insert(url)
    await migrate(url, "upgrade", "head")
    head = Database(url).head_revision()
    assert await execute(url, "SELECT version_num FROM alembic_version") == [(head,)]

    srv = Server(data, raw).start()
    try:
        with srv.client(SECRET) as api:
            got = api.get(f"/v1/jobs/{JOB}")
            assert got.status_code == 200, got.text
            job = got.json()
            assert (job["name"], job["space"], job["executor"]) == ("nightly", "lab", "local")
            assert job["params"] == {"who": "old"}
            page = api.get("/v1/runs", params={"job_id": JOB, "limit": 50}).json()
            assert sorted(r["id"] for r in page["items"]) == RUNS
            for i, run_id in enumerate(RUNS):
                run = api.get(f"/v1/runs/{run_id}").json()
                assert run["state"] == ("succeeded" if i % 2 == 0 else "failed")
                assert run["params"] == {"who": "old", "i": i}
                assert api.get(f"/v1/runs/{run_id}/log").text == f"hello from run {i}\n"
                events = api.get(f"/v1/runs/{run_id}/events").json()["items"]
                assert [e["state"] for e in events][:3] == ["queued", "running", run["state"]]
            schedule = api.get(f"/v1/schedules/{SCHEDULE}").json()
            assert (schedule["cron"], schedule["timezone"]) == ("0 3 * * *", "Europe/Berlin")
            fires = api.get(f"/v1/schedules/{SCHEDULE}/fires").json()["items"]
            assert [(f["status"], f["count"]) for f in fires] == [("missed", 2)]
            runs = api.get("/v1/stats", params={"space": "lab"}).json()["runs"]
            assert (runs["succeeded"], runs["failed"]) == (3, 2)  # the tallies, backfilled
            again = api.post(f"/v1/jobs/{JOB}/runs")
            assert again.status_code == 201, again.text
            assert wait_state(api, again.json()["id"])["state"] == "succeeded"
    finally:
        srv.stop()
