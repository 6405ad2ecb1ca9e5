"""In-process wake-ups: a waiter sleeps until something fires or its timeout passes.

Other processes are reached by polling the database; these only shorten the wait locally.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable


class Signal:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def armed(self) -> asyncio.Event:
        """The event the next fire sets: take it before looking, wait on it after, and a
        fire in between is not missed."""
        return self._event


class Queued:
    """Wake-ups for newly claimable work, by executor: a dispatcher for `local` is not woken
    by runs queued for a site."""

    def __init__(self) -> None:
        self._by_executor: dict[str, list[Signal]] = defaultdict(list)

    def subscribe(self, executors: Iterable[str]) -> Signal:
        signal = Signal()
        for executor in executors:
            self._by_executor[executor].append(signal)
        return signal

    def fire(self, executors: Iterable[str] | None = None) -> None:
        """Wake the subscribers of these executors (of all, when None)."""
        if executors is None:
            targets = {s for signals in self._by_executor.values() for s in signals}
        else:
            targets = {s for e in set(executors) for s in self._by_executor.get(e, ())}
        for signal in targets:
            signal.fire()


class Signals:
    def __init__(self) -> None:
        self.runs_queued = Queued()  # new claimable work
        self.events = Signal()  # the event log grew (transitions, output)
        self.schedules = Signal()  # a schedule was created or changed
