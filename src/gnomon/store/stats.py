"""Aggregates for the dashboard: runs by executor and state, finished runs per time bucket,
recent slots not run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import is_postgres, mappings
from gnomon.store.schema import fires, runs, schedules

ENDED = ("succeeded", "failed", "timed_out", "cancelled", "lost")


async def counts(conn: AsyncConnection, spaces: list[str] | None) -> list[tuple[str, str, int]]:
    """(executor, state, runs) for the spaces (None: all)."""
    stmt = sa.select(runs.c.executor, runs.c.state, sa.func.count()).group_by(
        runs.c.executor, runs.c.state
    )
    if spaces is not None:
        stmt = stmt.where(runs.c.space.in_(spaces))
    return [(e, s, int(n)) for e, s, n in await conn.execute(stmt)]


async def finished(
    conn: AsyncConnection, spaces: list[str] | None, since: float, bucket_s: float
) -> list[tuple[int, str, int]]:
    """(bucket index from `since`, final state, runs) for runs finished at or after `since`."""
    offset = (runs.c.finished_at - since) / bucket_s
    # Truncation is the floor here: finished_at >= since.
    index = sa.func.floor(offset) if is_postgres(conn) else sa.cast(offset, sa.Integer)
    index = index.label("bucket")
    stmt = (
        sa.select(index, runs.c.state, sa.func.count())
        .where(runs.c.finished_at >= since, runs.c.state.in_(ENDED))
        .group_by(index, runs.c.state)
    )
    if spaces is not None:
        stmt = stmt.where(runs.c.space.in_(spaces))
    return [(int(b), s, int(n)) for b, s, n in await conn.execute(stmt)]


async def recent_fires(
    conn: AsyncConnection, spaces: list[str] | None, status: str, limit: int
) -> list[dict[str, Any]]:
    """The latest recorded slots of a status (newest first), with their schedule's job."""
    stmt = (
        sa.select(fires, schedules.c.job_id, schedules.c.space)
        .join(schedules, schedules.c.id == fires.c.schedule_id)
        .where(fires.c.status == status)
        .order_by(fires.c.recorded_at.desc(), fires.c.fire_at.desc())
        .limit(limit)
    )
    if spaces is not None:
        stmt = stmt.where(schedules.c.space.in_(spaces))
    return mappings(await conn.execute(stmt))


async def fire_total(conn: AsyncConnection, spaces: list[str] | None, status: str) -> int:
    stmt = (
        sa.select(sa.func.coalesce(sa.func.sum(fires.c.count), 0))
        .join(schedules, schedules.c.id == fires.c.schedule_id)
        .where(fires.c.status == status)
    )
    if spaces is not None:
        stmt = stmt.where(schedules.c.space.in_(spaces))
    return int((await conn.execute(stmt)).scalar_one())
