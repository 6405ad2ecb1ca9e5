"""The tallies /v1/stats reads (migration 0008) agree with the runs table on both backends:
backfilled on upgrade, kept by the triggers through inserts, state changes and deletes of
one or many runs, unchanged by a fold, gone on downgrade."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from gnomon.store import stats
from tests.store.test_migrations_dispatches import _url
from tests.store.test_migrations_sites import execute, migrate, tables

NOW = time.time()
JOB = "01HJOB00000000000000000000"
ENDED = "('succeeded', 'failed', 'timed_out', 'cancelled', 'lost')"


def _runs(first: int, n: int, state: str, executor: str = "local", space: str = "s") -> str:
    finished = f"{NOW - 120}" if state in ("succeeded", "failed") else "NULL"
    values = ", ".join(
        f"('01HRUN{first + i:020d}', '{JOB}', '{space}', '{executor}', '{state}', 1, 1, '{{}}', "
        f"0, {NOW}, {finished}, {NOW})"
        for i in range(n)
    )
    return (
        "INSERT INTO runs (id, job_id, space, executor, state, attempt, max_attempts, params, "
        f"not_before, created_at, finished_at, updated_at) VALUES {values}"
    )


async def _check(url: str) -> None:
    """counts() and finished() say what a scan of the runs table says."""
    truth = await execute(
        url, "SELECT executor, state, count(*) FROM runs GROUP BY executor, state"
    )
    since = NOW - 3600
    done = await execute(
        url,
        f"SELECT state, count(*) FROM runs WHERE state IN {ENDED} AND finished_at >= {since} "
        "GROUP BY state",
    )
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            got = await stats.counts(conn, None)
            buckets = await stats.finished(conn, None, since, 300)
            assert await stats.counts(conn, ["elsewhere"]) == []
    finally:
        await engine.dispose()
    assert sorted(got) == sorted((e, s, int(n)) for e, s, n in truth)
    summed: dict[str, int] = {}
    for _, state, n in buckets:
        summed[state] = summed.get(state, 0) + n
    assert summed == {s: int(n) for s, n in done}


async def _fold(url: str) -> None:
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            await stats.fold(conn, NOW - 86400)
            assert not await stats.unfolded(conn)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_tallies_follow_the_runs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = _url(backend, tmp_path, request)
    await migrate(url, "upgrade", "0007")
    await execute(url, "INSERT INTO spaces (name, timezone, created_at) VALUES ('s', 'UTC', 0)")
    await execute(url, "INSERT INTO spaces (name, timezone, created_at) VALUES ('t', 'UTC', 0)")
    await execute(
        url,
        "INSERT INTO jobs (id, space, name, action, executor, retry, concurrency, params, "
        f"created_at, updated_at) VALUES ('{JOB}', 's', 'j', '{{}}', 'local', '{{}}', '{{}}', "
        "'{}', 0, 0)",
    )
    await execute(url, _runs(0, 5, "succeeded"))
    await execute(url, _runs(10, 3, "queued", "slurm"))

    await migrate(url, "upgrade", "0008")  # backfilled
    await _check(url)

    await execute(url, _runs(20, 4, "queued"))
    await execute(url, _runs(30, 2, "failed", space="t"))
    await execute(url, f"UPDATE runs SET state = 'running' WHERE id <= '01HRUN{21:020d}'")
    await execute(
        url,
        f"UPDATE runs SET state = 'failed', finished_at = {NOW - 30} WHERE id = '01HRUN{20:020d}'",
    )
    before = await execute(url, "SELECT count(*) FROM run_tally_deltas")
    assert before != [(0,)]
    await execute(url, "UPDATE runs SET output = 'more', lease_expires_at = 1")  # no change
    assert await execute(url, "SELECT count(*) FROM run_tally_deltas") == before
    await _check(url)
    await execute(url, f"DELETE FROM runs WHERE id IN ('01HRUN{0:020d}', '01HRUN{10:020d}')")
    await _check(url)

    await _fold(url)
    await _check(url)
    await _fold(url)  # nothing new: the same
    await _check(url)
    keys = await execute(url, "SELECT count(DISTINCT space || executor || state) FROM runs")
    assert await execute(url, "SELECT count(*) FROM run_tallies") == keys
    for deltas in ("run_tally_deltas", "run_finish_deltas"):
        assert await execute(url, f"SELECT count(*) FROM {deltas}") == [(0,)]
    await execute(url, _runs(40, 1, "queued"))  # still kept after a fold
    await _check(url)

    await migrate(url, "downgrade", "0007")
    tallies = {"run_tallies", "run_finishes", "run_tally_deltas", "run_finish_deltas"}
    assert not tallies & await tables(url)
    await execute(url, _runs(50, 1, "queued"))  # no trigger left behind
    await execute(url, "UPDATE runs SET state = 'lost'")
    await execute(url, "DELETE FROM runs")
