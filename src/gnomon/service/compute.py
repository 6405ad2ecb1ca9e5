"""CPU-heavy work of requests (slot enumeration, plan generation) off the event loop.

A few threads of their own run it; a bounded number of calls may wait for one. Past that a
call is refused at once (503 with Retry-After) instead of queueing without end, so one
client's burst of expensive requests cannot hold the server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from gnomon.errors import Busy

T = TypeVar("T")


class Compute:
    """At most `workers` calls run at once and `queue` more wait; others get Busy."""

    def __init__(self, workers: int, queue: int):
        self.workers = max(1, workers)
        self.limit = self.workers + max(0, queue)
        self.held = 0
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="gnomon-compute")
        return self._pool

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a compute thread. A call counts against the limit until its work
        has ended, even when the caller stopped waiting for it."""
        if self.held >= self.limit:
            raise Busy(
                f"the server is busy with {self.held} expensive requests (at most "
                f"{self.limit} at once: GNOMON_COMPUTE_WORKERS + GNOMON_COMPUTE_QUEUE); "
                "retry shortly",
                retry_after_s=1,
            )
        loop = asyncio.get_running_loop()
        self.held += 1
        try:
            work: Future[T] = self._executor().submit(fn, *args)
        except BaseException:
            self.held -= 1
            raise
        work.add_done_callback(lambda _: self._release(loop))
        return await asyncio.wrap_future(work)

    def _release(self, loop: asyncio.AbstractEventLoop) -> None:
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to count
            loop.call_soon_threadsafe(self._released)

    def _released(self) -> None:
        self.held -= 1

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
