"""Reads of the run ledger (its writes go through store/ledger.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, for_update, mappings
from gnomon.store.schema import jobs, runs
from gnomon.vocabulary import ACTIVE_STATES, HELD_STATES, LIVE_STATES, RunState, values

ACTIVE = values(ACTIVE_STATES)
HELD = values(HELD_STATES)
LIVE = values(LIVE_STATES)
QUEUED = RunState.queued.value

# Columns a listing returns: everything but the (possibly large) output.
LIST_COLUMNS = [c for c in runs.c if c.name != "output"]


async def get(conn: AsyncConnection, run_id: str, *, output: bool = True) -> dict[str, Any] | None:
    cols = list(runs.c) if output else LIST_COLUMNS
    row = (await conn.execute(sa.select(*cols).where(runs.c.id == run_id))).first()
    return dict(row._mapping) if row else None


async def get_many(conn: AsyncConnection, ids: Sequence[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in chunks(ids):
        out += mappings(await conn.execute(sa.select(*LIST_COLUMNS).where(runs.c.id.in_(part))))
    return out


async def list_(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    job_id: str | None,
    schedule_id: str | None,
    states: list[str] | None,
    executor: str | None,
    since: float | None,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = sa.select(*LIST_COLUMNS).order_by(runs.c.id.desc()).limit(limit)
    if spaces is not None:
        stmt = stmt.where(runs.c.space.in_(spaces))
    if job_id:
        stmt = stmt.where(runs.c.job_id == job_id)
    if schedule_id:
        stmt = stmt.where(runs.c.schedule_id == schedule_id)
    if states:
        stmt = stmt.where(runs.c.state.in_(states))
    if executor:
        stmt = stmt.where(runs.c.executor == executor)
    if since is not None:
        stmt = stmt.where(runs.c.created_at >= since)
    if cursor:
        stmt = stmt.where(runs.c.id < cursor)
    return mappings(await conn.execute(stmt))


async def next_not_before(conn: AsyncConnection, executors: Sequence[str]) -> float | None:
    """When the earliest queued run for these executors may start (a cheap indexed read
    before taking the write lock, and the time to wake up for)."""
    stmt = sa.select(sa.func.min(runs.c.not_before)).where(
        runs.c.state == QUEUED, runs.c.executor.in_(executors)
    )
    return (await conn.execute(stmt)).scalar_one_or_none()


async def expired(conn: AsyncConnection, now: float, limit: int) -> list[dict[str, Any]]:
    """Runs whose lease ran out, with their job's retry policy, locked for this transaction."""
    stmt = for_update(
        conn,
        sa.select(*LIST_COLUMNS, jobs.c.retry)
        .join(jobs, jobs.c.id == runs.c.job_id)
        .where(runs.c.state.in_(HELD), runs.c.lease_expires_at < now)
        .order_by(runs.c.lease_expires_at)
        .limit(limit),
        of=runs,
    )
    return mappings(await conn.execute(stmt))


async def active_for_schedules(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Per schedule: how many of its runs are active and how many buffered (pending)."""
    out: dict[str, dict[str, int]] = {}
    for part in chunks(schedule_ids):
        rows = await conn.execute(
            sa.select(runs.c.schedule_id, runs.c.state, sa.func.count())
            .where(
                runs.c.schedule_id.in_(part),
                runs.c.state.in_(LIVE),
            )
            .group_by(runs.c.schedule_id, runs.c.state)
        )
        for sid, state, n in rows:
            slot = out.setdefault(sid, {"active": 0, "buffered": 0})
            slot["buffered" if state == RunState.pending else "active"] += n
    return out


async def filled_slots(
    conn: AsyncConnection, schedule_id: str, slots: Sequence[float]
) -> set[float]:
    """Which of these slots of a schedule already have a run."""
    out: set[float] = set()
    for part in chunks(slots):
        rows = await conn.execute(
            sa.select(runs.c.scheduled_for).where(
                runs.c.schedule_id == schedule_id, runs.c.scheduled_for.in_(part)
            )
        )
        out.update(r[0] for r in rows)
    return out


async def active_runs_of_schedules(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in chunks(schedule_ids):
        out += mappings(
            await conn.execute(
                sa.select(*LIST_COLUMNS).where(
                    runs.c.schedule_id.in_(part),
                    runs.c.state.in_(LIVE),
                )
            )
        )
    return out


async def buffered_to_release(
    conn: AsyncConnection, schedule_ids: Sequence[str]
) -> list[dict[str, Any]]:
    """The oldest pending run of each schedule that has no active run left."""
    active = sa.select(runs.c.schedule_id).where(
        runs.c.schedule_id.in_(list(schedule_ids)),
        runs.c.state.in_(ACTIVE),
    )
    stmt = for_update(
        conn,
        sa.select(*LIST_COLUMNS)
        .where(
            runs.c.schedule_id.in_(list(schedule_ids)),
            runs.c.state == RunState.pending.value,
            runs.c.schedule_id.not_in(active),
        )
        .order_by(runs.c.id),
    )
    seen: set[str] = set()
    out = []
    for r in mappings(await conn.execute(stmt)):
        if r["schedule_id"] not in seen:
            seen.add(r["schedule_id"])
            out.append(r)
    return out
