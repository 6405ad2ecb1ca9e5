"""A small time-bounded cache for the hot paths (tokens, job definitions).

A miss is loaded once, however many requests ask for the same key meanwhile: when an entry
expires under load, one query goes to the database, not one per waiting request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, ttl_s: float, max_entries: int = 10_000):
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Future[tuple[V, float]]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[tuple[V, float | None]]]) -> V:
        """The cached value, or `load()`'s: (value, until when it may be kept — a monotonic
        time, or None for the cache's own ttl). An exception from `load` reaches every caller
        waiting for it and caches nothing."""
        hit = self._entries.get(key)
        if hit is not None and hit[0] >= time.monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load))
            self._loading[key] = pending
        value, _ = await asyncio.shield(pending)
        return value

    async def _load(
        self, key: K, load: Callable[[], Awaitable[tuple[V, float | None]]]
    ) -> tuple[V, float]:
        try:
            value, until = await load()
            until = time.monotonic() + self.ttl_s if until is None else until
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (until, value)
            return value, until
        finally:
            self._loading.pop(key, None)

    def forget(self, key: K | None = None) -> None:
        """Drop one entry, or all of them."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
