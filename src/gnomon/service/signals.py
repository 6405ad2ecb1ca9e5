"""In-process wake-ups: a waiter sleeps until something fires or its timeout passes.

Other processes are reached by polling the database; these only shorten the wait locally.
"""

from __future__ import annotations

import asyncio
import contextlib


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


class Signals:
    def __init__(self) -> None:
        self.runs_queued = Signal()  # new claimable work
        self.events = Signal()  # the event log grew (transitions, output)
        self.schedules = Signal()  # a schedule was created or changed
