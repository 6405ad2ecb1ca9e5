"""The hot-path cache: one load per key however many callers wait, nothing cached on error."""

from __future__ import annotations

import asyncio
import time

import pytest

from gnomon.service.cache import TtlCache


async def test_concurrent_misses_load_once() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=60)
    loads = 0

    async def load() -> tuple[int, None]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0.01)
        return 42, None

    values = await asyncio.gather(*(cache.get("k", load) for _ in range(50)))
    assert values == [42] * 50 and loads == 1
    assert await cache.get("k", load) == 42 and loads == 1


async def test_errors_reach_every_waiter_and_are_not_cached() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=60)
    calls = 0

    async def fail() -> tuple[int, None]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        raise LookupError("no such thing")

    results = await asyncio.gather(
        *(cache.get("k", fail) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, LookupError) for r in results) and calls == 1
    with pytest.raises(LookupError):
        await cache.get("k", fail)
    assert calls == 2


async def test_entries_expire_and_can_be_forgotten() -> None:
    cache: TtlCache[str, int] = TtlCache(ttl_s=60)
    n = 0

    async def load() -> tuple[int, float]:
        nonlocal n
        n += 1
        return n, time.monotonic() + 0.05  # the loader's own, shorter, lifetime

    assert await cache.get("k", load) == 1
    assert await cache.get("k", load) == 1
    await asyncio.sleep(0.06)
    assert await cache.get("k", load) == 2
    cache.forget("k")
    assert await cache.get("k", load) == 3
