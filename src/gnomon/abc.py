"""Interfaces. Implementations live in folders named after them (engine/executors/)."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gnomon.domain import RunState


@dataclass
class Outcome:
    """How an attempt ended."""

    state: RunState
    exit_code: int | None = None
    message: str | None = None


@dataclass
class Attempt:
    """What an executor gets: the run, its job's action, and a place to write output."""

    run: dict[str, Any]
    action: dict[str, Any]
    params: dict[str, Any]
    timeout_s: float | None
    output: OutputSink
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    noted: Callable[[dict[str, Any]], None] = field(default=lambda _: None, repr=False)

    def note(self, **fields: Any) -> None:
        """Record facts learnt while the attempt runs (`external_id`, `status`) on the run."""
        self.noted(fields)


class OutputSink(ABC):
    @abstractmethod
    def write(self, data: bytes) -> None:
        """Append output; the service keeps the last N KiB and streams it to readers."""


class Executor(ABC):
    """Runs attempts of jobs whose `executor` matches `name`."""

    name: str
    remote: bool = False  # attempts run elsewhere: they take no local process slot

    @abstractmethod
    async def execute(self, attempt: Attempt) -> Outcome:
        """Do the work. Honour `attempt.cancelled` and `attempt.timeout_s` (kill everything
        the attempt started). Never raise for a failure of the work itself: return it."""

    def immediate(self, attempt: Attempt) -> Outcome | None:
        """The outcome, when it is known without doing anything (a no-op); else None."""
        return None

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (clients, pools)."""
