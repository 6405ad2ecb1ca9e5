"""Following the event log: in id order, none skipped, even when commits land out of order."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gnomon.config import Settings
from gnomon.service import Service
from gnomon.service import events as events_module

COLUMNS = "run_id, job_id, space, executor, attempt, state, status, at"
INSERT = f"INSERT INTO events ({COLUMNS}) VALUES ('r', 'j', 'default', 'local', 1, $1, NULL, 0)"


@pytest.fixture
async def pg_svc(postgres_url: str) -> AsyncIterator[Service]:
    service = await Service.open(Settings(database_url=postgres_url))
    yield service
    await service.close()


async def _next(feed: AsyncIterator[dict[str, Any]], timeout: float = 5) -> str:
    return (await asyncio.wait_for(anext(feed), timeout))["state"]


async def test_a_commit_slower_than_a_later_one_is_waited_for(
    pg_svc: Service, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The old rule passed over a gap after a fixed wait; this one waits for the transaction.
    monkeypatch.setattr(events_module, "GAP_MAX_S", 30.0)
    feed = pg_svc.events.follow(spaces=None, after=await pg_svc.events.last_id())
    slow, fast = await asyncpg.connect(postgres_url), await asyncpg.connect(postgres_url)
    try:
        tx = slow.transaction()
        await tx.start()
        await slow.execute(INSERT, "slow")  # takes the smaller id, commits last
        await fast.execute(INSERT, "fast")
        first = asyncio.ensure_future(_next(feed, timeout=30))
        await asyncio.sleep(2.0)
        assert not first.done(), "the later event was yielded while the earlier one was open"
        await tx.commit()
        assert await first == "slow"
        assert await _next(feed) == "fast"
    finally:
        await slow.close()
        await fast.close()


async def test_a_rolled_back_id_is_passed_over_promptly(pg_svc: Service, postgres_url: str) -> None:
    feed = pg_svc.events.follow(spaces=None, after=await pg_svc.events.last_id())
    con = await asyncpg.connect(postgres_url)
    try:
        tx = con.transaction()
        await tx.start()
        await con.execute(INSERT, "never")
        await tx.rollback()
        await con.execute(INSERT, "after")
        t0 = time.monotonic()
        assert await _next(feed) == "after"
        assert time.monotonic() - t0 < 1.5
    finally:
        await con.close()


async def test_sqlite_gaps_are_final(tmp_path: Path) -> None:
    svc = await Service.open(Settings(data_dir=tmp_path))
    try:
        start = await svc.events.last_id()
        feed = svc.events.follow(spaces=None, after=start)
        with sqlite3.connect(tmp_path / "gnomon.db") as db:
            sql = (
                INSERT.replace("$1", "?")
                .replace("(run_id", "(id, run_id")
                .replace("VALUES (", "VALUES (?, ")
            )
            db.execute(sql, (start + 3, "after-gap"))
        assert await _next(feed) == "after-gap"
    finally:
        await svc.close()
