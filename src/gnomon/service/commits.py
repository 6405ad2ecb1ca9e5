"""Group commit: many concurrent writers share one transaction and one disk sync."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Callers `add` a part and return once it is durable; parts waiting together are written by
    one call of `write`. If that fails, each part is written on its own, so a bad part fails
    only its caller."""

    def __init__(self, write: Callable[[Sequence[T]], Awaitable[None]], name: str):
        self._write = write
        self._name = name
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"gnomon-commit-{self._name}")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def add(self, part: T) -> None:
        if self._task is None:  # not started (e.g. CLI use): write directly
            await self._write([part])
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((part, fut))
        self._wake.set()
        await fut

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            try:
                await self._write([part for part, _ in batch])
                for _, fut in batch:
                    if not fut.done():
                        fut.set_result(None)
            except Exception:
                for part, fut in batch:
                    try:
                        await self._write([part])
                        if not fut.done():
                            fut.set_result(None)
                    except Exception as exc:
                        if not fut.done():
                            fut.set_exception(exc)
