"""Following the event log live, in order, across processes.

One reader per process (the hub) polls the log and hands each new event to the open feeds,
so a thousand streams cost one query per poll, not a thousand. A feed that starts behind the
hub (resuming from an older id) or falls behind it (its client reads slower than events
come) reads the backlog itself, then goes on with the hub's events.

No feed holds a database connection while it waits, and a read a feed makes runs to its end
even when the feed's client goes away meanwhile, so the connection always goes back to the
pool (a read cut short by cancellation was dropped by the pool, still open: the descriptors
of aborted streams piled up).

Open streams are counted per token (or per client address, without one) and in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.domain import Principal
from gnomon.errors import Busy
from gnomon.service.access import readable_spaces
from gnomon.store import events as store
from gnomon.vocabulary import site_executor

if TYPE_CHECKING:
    from gnomon.config import Settings
    from gnomon.service.signals import Signals
    from gnomon.store.db import Database

T = TypeVar("T")
BATCH = 500
POLL_S = 0.5
GAP_RECHECK_S = 0.05
GAP_MAX_S = 60.0  # a transaction open this long past its event id is given up on (logged)
QUEUE_MAX = 2_000  # events a feed keeps for a slow client; past that it reads the backlog
LINGER_S = 30.0  # the hub stops this long after its last feed closed
CHECK_S = 1.0  # how often the feeds' readers are asked whether they may still read
RETRY_AFTER_S = 5

log = structlog.get_logger(__name__)
_detached: set[asyncio.Task[Any]] = set()


async def detached(work: Coroutine[Any, Any, T]) -> T:
    """Await `work` in a task of its own: cancelling the caller does not cut it short (a
    database connection it took is given back), it only stops waiting for it."""
    task = asyncio.ensure_future(work)
    _detached.add(task)
    task.add_done_callback(_settled)
    return await asyncio.shield(task)


def _settled(task: asyncio.Task[Any]) -> None:
    _detached.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: whoever waited has it, or nobody waits any more


@dataclass(slots=True)
class _Gap:
    """Missing ids right after `after`, first seen at `since`, below the visible id `before`.

    On PostgreSQL a transaction that took an id may commit after one that took a larger id, or
    roll back and never fill it. The gap is final once every transaction that could hold one of
    its ids has ended: those that had begun a moment after it was seen (`horizon`, the
    snapshot's xmax then) are all below the snapshot's xmin later.
    """

    after: int
    before: int
    since: float
    horizon: int | None = None


class _Reader:
    """The log after `last`, in id order, none skipped (see _Gap)."""

    def __init__(self, db: Database, last: int):
        self.db = db
        self.last = last
        self.gap: _Gap | None = None

    async def batch(self) -> tuple[list[dict[str, Any]], bool]:
        """The next events that are final; and whether more may follow at once."""
        async with self.db.read() as conn:
            final = await _gap_final(conn, self.gap)
            rows = await store.after(conn, self.last, spaces=None, limit=BATCH)
        out: list[dict[str, Any]] = []
        for row in rows:
            if row["id"] != self.last + 1:
                if self.gap is None or self.gap.after != self.last:
                    self.gap = _Gap(self.last, row["id"], time.monotonic())
                if not (final and row["id"] <= self.gap.before):
                    return out, False
            self.gap = None
            self.last = row["id"]
            out.append(row)
        return out, len(rows) == BATCH

    @property
    def pause_s(self) -> float:
        return GAP_RECHECK_S if self.gap else POLL_S


async def _gap_final(conn: AsyncConnection, gap: _Gap | None) -> bool:
    """Whether no transaction still running can fill `gap` (read before the rows)."""
    if gap is None:
        return False
    writers = await store.writers(conn)
    if writers is None:  # one writer, ids committed in order: a gap is a rollback
        return True
    xmin, xmax = writers
    waited = time.monotonic() - gap.since
    if gap.horizon is None:
        # Leave a moment between an id's nextval and its transaction's id being assigned.
        if waited >= GAP_RECHECK_S:
            gap.horizon = xmax
        return False
    if xmin >= gap.horizon:
        return True
    if waited >= GAP_MAX_S:
        log.warning("events.gap_skipped", after=gap.after, before=gap.before, waited_s=waited)
        return True
    return False


Match = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True, slots=True)
class Check:
    """Whether a feed's reader may still read: `ask()`, asked once a second for all the feeds
    that share its `key` (the same credential standing for the same principal)."""

    key: str
    ask: Callable[[], Awaitable[bool]]


@dataclass(slots=True, eq=False)
class _Sub:
    """A feed as the hub sees it: every matching event after `start` lands in `rows`."""

    start: int
    match: Match
    check: Check | None = None
    rows: deque[dict[str, Any]] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    ended: bool = False  # its reader may no longer read

    def push(self, row: dict[str, Any]) -> None:
        if len(self.rows) >= QUEUE_MAX:  # the client is slow: it reads the backlog instead
            self.rows.clear()
            self.start = row["id"] - 1
        self.rows.append(row)
        self.wake.set()


class Feed:
    """One follower of the log: iterate it for the events; close() it when done."""

    def __init__(self, events: Events, sub: _Sub, after: int | None):
        self._events = events
        self._sub = sub
        self.after = sub.start if after is None else after

    def close(self) -> None:
        self._events._leave(self._sub)

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        sub, db = self._sub, self._events.db
        last = self.after
        reader: _Reader | None = None
        try:
            while not sub.ended:
                if last < sub.start:  # the backlog before the hub's events
                    if reader is None or reader.last != last:
                        reader = _Reader(db, last)
                    rows, more = await detached(reader.batch())
                    for row in rows:
                        if sub.ended:
                            return
                        if sub.match(row):
                            yield row
                    last = reader.last
                    if not more and last < sub.start:
                        await asyncio.sleep(reader.pause_s)
                    continue
                reader = None
                while sub.rows and last >= sub.start and not sub.ended:
                    row = sub.rows.popleft()
                    if row["id"] > last:
                        last = row["id"]
                        yield row
                if last < sub.start or sub.rows:
                    continue
                sub.wake.clear()
                await sub.wake.wait()
        finally:
            self.close()


async def _ask(check: Check) -> bool:
    """What the check says; an error says no."""
    try:
        return await check.ask()
    except Exception:
        log.exception("events.check_failed")
        return False


class StreamLimits:
    """Open event streams, per key (a token, or a client address) and in all; 0: no limit."""

    def __init__(self, total: int, per_key: int):
        self.total = total
        self.per_key = per_key
        self.open = 0
        self.by_key: Counter[str] = Counter()

    def take(self, key: str) -> Callable[[], None]:
        """A slot for one stream (Busy when none is left); call the result to give it back."""
        if self.total and self.open >= self.total:
            raise Busy(
                f"too many event streams are open on this server ({self.total}, "
                "GNOMON_EVENTS_STREAMS_MAX); retry later",
                retry_after_s=RETRY_AFTER_S,
            )
        if self.per_key and self.by_key[key] >= self.per_key:
            who = "token" if key.startswith("token:") else "client address"
            raise Busy(
                f"too many event streams are open for this {who} ({self.per_key}, "
                "GNOMON_EVENTS_STREAMS_PER_CLIENT); close one first",
                retry_after_s=RETRY_AFTER_S,
                status=429,
            )
        self.open += 1
        self.by_key[key] += 1
        given = False

        def release() -> None:
            nonlocal given
            if given:
                return
            given = True
            self.open -= 1
            self.by_key[key] -= 1
            if self.by_key[key] <= 0:
                del self.by_key[key]

        return release


class Events:
    def __init__(self, db: Database, settings: Settings, signals: Signals):
        self.db = db
        self.signals = signals
        self.limits = StreamLimits(settings.events_streams_max, settings.events_streams_per_client)
        self._subs: set[_Sub] = set()
        self._head: int | None = None  # every event up to here was handed to the feeds
        self._task: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._checks: dict[str, tuple[Check, set[_Sub]]] = {}
        self._checker: asyncio.Task[None] | None = None

    async def last_id(self) -> int:
        if self._head is not None:
            return self._head
        return await detached(self._read_last_id())

    async def _read_last_id(self) -> int:
        async with self.db.read() as conn:
            return await store.last_id(conn)

    async def open_for(
        self,
        who: Principal,
        *,
        space: str | None,
        after: int | None,
        job_id: str | None = None,
        run_id: str | None = None,
        site: str | None = None,
        check: Check | None = None,
    ) -> Feed:
        """The run transitions `who` may read (of `space`, else of every space theirs; 403
        for a space not theirs), filtered by job, run and site; see `open`."""
        return await self.open(
            spaces=readable_spaces(who, space),
            after=after,
            job_id=job_id,
            run_id=run_id,
            executor=site_executor(site) if site else None,
            check=check,
        )

    async def open(
        self,
        *,
        spaces: list[str] | None,
        after: int | None,
        job_id: str | None = None,
        run_id: str | None = None,
        executor: str | None = None,
        check: Check | None = None,
    ) -> Feed:
        """A feed of events after `after` (or from now) in id order, none skipped, that ends
        when `check` (asked once a second) says no."""
        if self._head is None:
            async with self._starting:
                if self._head is None:
                    self._head = await self._read_last_id()
                    self._task = asyncio.create_task(self._run(self._head), name="events-hub")
        assert self._head is not None
        filtered = any((spaces is not None, job_id, run_id, executor))

        def match(row: dict[str, Any]) -> bool:
            return not filtered or _matches(row, spaces, job_id, run_id, executor)

        sub = _Sub(self._head, match, check)
        self._subs.add(sub)
        if check is not None:
            self._checks.setdefault(check.key, (check, set()))[1].add(sub)
            if self._checker is None:
                self._checker = asyncio.create_task(self._check(), name="events-checks")
        return Feed(self, sub, after)

    def _leave(self, sub: _Sub) -> None:
        self._subs.discard(sub)
        if sub.check is not None and (held := self._checks.get(sub.check.key)):
            held[1].discard(sub)
            if not held[1]:
                del self._checks[sub.check.key]

    async def _check(self) -> None:
        """Once a second, ask each check once; end the feeds whose reader may not read."""
        while self._checks:
            await asyncio.sleep(CHECK_S)
            for key, (check, subs) in list(self._checks.items()):
                if await _ask(check):
                    continue
                for sub in subs:
                    sub.ended = True
                    sub.wake.set()
                self._checks.pop(key, None)
        self._checker = None

    async def follow(
        self,
        *,
        spaces: list[str] | None,
        after: int | None,
        job_id: str | None = None,
        run_id: str | None = None,
        executor: str | None = None,
        check: Check | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """Yield events after `after` (or from now), in id order, none skipped, until
        `check` says no."""
        feed = await self.open(
            spaces=spaces, after=after, job_id=job_id, run_id=run_id, executor=executor, check=check
        )
        try:
            async for row in feed:
                yield row
        finally:
            feed.close()

    async def _run(self, head: int) -> None:
        """The hub: read the log once for every feed of this process."""
        reader = _Reader(self.db, head)
        idle_since: float | None = None
        while True:
            try:
                rows, more = await reader.batch()
            except Exception:
                log.exception("events.read_failed")
                rows, more = [], False
            for row in rows:
                for sub in self._subs:
                    if sub.match(row):
                        sub.push(row)
            self._head = reader.last
            if more:
                continue
            if self._subs:
                idle_since = None
            elif idle_since is None:
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since >= LINGER_S:
                self._head = self._task = None
                return
            await self.signals.events.wait(reader.pause_s)

    async def close(self) -> None:
        tasks = [t for t in (self._task, self._checker) if t is not None]
        self._task = self._checker = self._head = None
        self._subs.clear()
        self._checks.clear()
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _matches(
    row: dict[str, Any],
    spaces: list[str] | None,
    job_id: str | None,
    run_id: str | None,
    executor: str | None,
) -> bool:
    return (
        (spaces is None or row["space"] in spaces)
        and (job_id is None or row["job_id"] == job_id)
        and (run_id is None or row["run_id"] == run_id)
        and (executor is None or row["executor"] == executor)
    )
