"""Migration 0007 up and down, with data: a plan's dispatches move from the JSON list on the
plan to the table keyed by (plan, target), earlier repeats to one target becoming one row,
and back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.store.test_migrations_sites import columns, execute, migrate, tables

PLAN = "01HPLAN0000000000000000000"
SITE_JOB = "01HJOBSITE0000000000000000"
JOB = "01HJOB00000000000000000000"
BEFORE = [
    {"at": 10.0, "site": "dome", "job_id": SITE_JOB, "run_ids": ["r1", "r2"]},
    {"at": 20.0, "site": None, "job_id": JOB, "run_ids": ["r3"]},
    {"at": 30.0, "site": "dome", "job_id": SITE_JOB, "run_ids": ["r4", "r5"]},  # a repeat
]


def _url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    url = request.getfixturevalue("postgres_url")
    return url.replace("postgresql://", "postgresql+asyncpg://")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_0007_up_and_down(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(backend, tmp_path, request)
    await migrate(url, "upgrade", "0006")
    await execute(url, "INSERT INTO spaces (name, timezone, created_at) VALUES ('s', 'UTC', 0)")
    for plan_id, dispatches in ((PLAN, BEFORE), ("01HPLANNEVER00000000000000", [])):
        await execute(
            url,
            "INSERT INTO plans (id, space, policy, config, t0, t1, revision, blocks, commands, "
            "verification, verified, dispatches, created_at) VALUES "
            f"('{plan_id}', 's', 'dummy', '{{}}', 0, 1, 1, '[]', '', '{{}}', true, "
            f"'{json.dumps(dispatches)}', 0)",
        )

    await migrate(url, "upgrade", "0007")
    assert "dispatches" not in await columns(url, "plans")
    rows = await execute(
        url,
        "SELECT plan_id, target, site, job_id, run_ids, at FROM plan_dispatches ORDER BY at",
    )
    got = [(*r[:4], r[4] if isinstance(r[4], list) else json.loads(r[4]), r[5]) for r in rows]
    assert got == [
        (PLAN, "site:dome", "dome", SITE_JOB, ["r1", "r2", "r4", "r5"], 10.0),
        (PLAN, f"job:{JOB}", None, JOB, ["r3"], 20.0),
    ]

    await migrate(url, "downgrade", "0006")
    assert "plan_dispatches" not in await tables(url)
    back = dict(await execute(url, "SELECT id, dispatches FROM plans"))
    restored = {k: v if isinstance(v, list) else json.loads(v) for k, v in back.items()}
    assert restored == {
        PLAN: [
            {"at": 10.0, "site": "dome", "job_id": SITE_JOB, "run_ids": ["r1", "r2", "r4", "r5"]},
            {"at": 20.0, "site": None, "job_id": JOB, "run_ids": ["r3"]},
        ],
        "01HPLANNEVER00000000000000": [],
    }
