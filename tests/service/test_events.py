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
from gnomon.store import events as event_store
from gnomon.store.schema import events

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


async def _append(svc: Service, states: list[str], space: str = "default") -> None:
    row = {"run_id": "r", "job_id": "j", "space": space, "executor": "local", "attempt": 1}
    async with svc.db.write() as conn:
        await conn.execute(
            events.insert(), [{**row, "state": s, "status": None, "at": 0.0} for s in states]
        )
    svc.signals.events.fire()


async def test_feeds_share_one_reader(svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    after = event_store.after

    async def counted(*args: Any, **kw: Any) -> list[dict[str, Any]]:
        nonlocal reads
        reads += 1
        return await after(*args, **kw)

    monkeypatch.setattr(event_store, "after", counted)
    feeds = [await svc.events.open(spaces=None, after=None) for _ in range(300)]
    iters = [aiter(f) for f in feeds]
    waiting = [asyncio.ensure_future(anext(i)) for i in iters]
    await asyncio.sleep(0.2)
    reads = 0
    await asyncio.sleep(1.0)
    await _append(svc, ["queued"])
    got = await asyncio.wait_for(asyncio.gather(*waiting), 5)
    assert {g["state"] for g in got} == {"queued"}
    assert reads < 10, reads  # one poll loop for all, not one per feed
    for f in feeds:
        f.close()
    assert not svc.events._subs


async def test_a_slow_feed_loses_nothing(svc: Service, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events_module, "QUEUE_MAX", 5)
    feed = await svc.events.open(spaces=None, after=None)
    other = await svc.events.open(spaces=["elsewhere"], after=None)
    states = [f"s{i}" for i in range(40)]
    for part in range(0, 40, 8):
        await _append(svc, states[part : part + 8])
        await asyncio.sleep(0.05)
    await _append(svc, ["x"], space="elsewhere")
    it = aiter(feed)
    got = [(await asyncio.wait_for(anext(it), 5))["state"] for _ in range(41)]
    assert got == [*states, "x"]
    ids = []
    async for row in other:
        ids.append(row["state"])
        break
    assert ids == ["x"]


async def test_a_feed_resumes_from_an_older_id_then_goes_on_live(svc: Service) -> None:
    start = await svc.events.last_id()
    await _append(svc, ["a", "b"])
    live = await svc.events.open(spaces=None, after=None)  # starts the reader past a and b
    feed = await svc.events.open(spaces=None, after=start)
    await _append(svc, ["c"])
    it = aiter(feed)
    assert [(await asyncio.wait_for(anext(it), 5))["state"] for _ in range(3)] == ["a", "b", "c"]
    assert (await asyncio.wait_for(anext(aiter(live)), 5))["state"] == "c"


async def test_a_feed_ends_when_its_reader_may_no_longer_read(
    svc: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "CHECK_S", 0.1)
    allowed = True

    async def alive() -> bool:
        return allowed

    feed = await svc.events.open(spaces=None, after=None, check=events_module.Check("k", alive))
    it = aiter(feed)
    await _append(svc, ["a"])
    assert (await asyncio.wait_for(anext(it), 5))["state"] == "a"
    allowed = False
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(it), 5)
    assert not svc.events._subs
