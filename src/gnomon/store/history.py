"""A job's runs by numbered page, in the order they start; the latest run of each job.

Both show a run from its slot on (`scheduled_for`, for a schedule's run; else from when it
was made): runs made ahead of their slot are not there yet."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, mappings
from gnomon.store.schema import runs

COLUMNS = (
    runs.c.id,
    runs.c.job_id,
    runs.c.space,
    runs.c.schedule_id,
    runs.c.scheduled_for,
    runs.c.state,
    runs.c.message,
    runs.c.exit_code,
    runs.c.not_before,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.finished_at,
)


def _shown_by(now: float) -> sa.ColumnElement[bool]:
    return sa.func.coalesce(runs.c.scheduled_for, runs.c.created_at) <= now


async def page(
    conn: AsyncConnection,
    *,
    job_id: str,
    schedule_id: str | None,
    offset: int,
    limit: int,
    now: float,
) -> tuple[list[dict[str, Any]], int]:
    """One page of a job's runs (of one schedule, if given) shown by `now`, ordered by start
    time — or, for runs not started yet, the time they may start — and how many there are
    in all."""
    where = [runs.c.job_id == job_id, _shown_by(now)]
    if schedule_id is not None:
        where.append(runs.c.schedule_id == schedule_id)
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(runs).where(*where))
    ).scalar_one()
    stmt = (
        sa.select(*COLUMNS)
        .where(*where)
        .order_by(sa.func.coalesce(runs.c.started_at, runs.c.not_before), runs.c.id)
        .offset(offset)
        .limit(limit)
    )
    return mappings(await conn.execute(stmt)), total


async def latest(
    conn: AsyncConnection, job_ids: Sequence[str], *, now: float
) -> dict[str, dict[str, Any]]:
    """The most recently created run shown by `now` of each job that has one."""
    out: dict[str, dict[str, Any]] = {}
    for part in chunks(list(job_ids)):
        newest = (
            sa.select(sa.func.max(runs.c.id))
            .where(runs.c.job_id.in_(part), _shown_by(now))
            .group_by(runs.c.job_id)
        )
        rows = await conn.execute(sa.select(*COLUMNS).where(runs.c.id.in_(newest)))
        out.update({r.job_id: dict(r._mapping) for r in rows})
    return out
