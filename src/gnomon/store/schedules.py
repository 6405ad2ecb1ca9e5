"""Schedules and the record of slots that did not become runs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import chunks, for_update, insert_many, mappings, upsert_insert
from gnomon.store.schema import fires, jobs, schedules

_LIVE = schedules.c.deleted_at.is_(None)


async def insert(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    await insert_many(conn, schedules, rows)


async def get(conn: AsyncConnection, schedule_id: str) -> dict[str, Any] | None:
    stmt = sa.select(schedules).where(schedules.c.id == schedule_id, _LIVE)
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def list_(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    job_id: str | None,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = sa.select(schedules).where(_LIVE).order_by(schedules.c.id).limit(limit)
    if spaces is not None:
        stmt = stmt.where(schedules.c.space.in_(spaces))
    if job_id:
        stmt = stmt.where(schedules.c.job_id == job_id)
    if cursor:
        stmt = stmt.where(schedules.c.id > cursor)
    return mappings(await conn.execute(stmt))


async def update(conn: AsyncConnection, schedule_id: str, values: dict[str, Any]) -> bool:
    stmt = sa.update(schedules).where(schedules.c.id == schedule_id, _LIVE).values(**values)
    return (await conn.execute(stmt)).rowcount > 0


async def due(conn: AsyncConnection, now: float, limit: int) -> list[dict[str, Any]]:
    """Enabled schedules whose time to fire has come, with their job; locked (SKIP LOCKED)."""
    stmt = for_update(
        conn,
        sa.select(
            schedules,
            jobs.c.executor,
            jobs.c.params.label("job_params"),
            jobs.c.retry,
            jobs.c.timeout_s,
        )
        .join(jobs, jobs.c.id == schedules.c.job_id)
        .where(schedules.c.due_at <= now, schedules.c.enabled.is_(True), _LIVE)
        .order_by(schedules.c.due_at)
        .limit(limit),
        of=schedules,
    )
    return mappings(await conn.execute(stmt))


async def next_due_at(conn: AsyncConnection) -> float | None:
    """When the scheduler next has work (disabled and deleted schedules have no due_at)."""
    stmt = sa.select(sa.func.min(schedules.c.due_at)).where(schedules.c.due_at.is_not(None))
    return (await conn.execute(stmt)).scalar_one_or_none()


async def advance(conn: AsyncConnection, moves: Sequence[dict[str, Any]]) -> None:
    """Move many schedules on: [{id, next_fire_at, due_at, last_fire_at, enabled}]."""
    if not moves:
        return
    stmt = (
        sa.update(schedules)
        .where(schedules.c.id == sa.bindparam("_id"))
        .values(
            next_fire_at=sa.bindparam("_next"),
            due_at=sa.bindparam("_due"),
            last_fire_at=sa.bindparam("_last"),
            enabled=sa.bindparam("_enabled"),
        )
    )
    params = [
        {
            "_id": m["id"],
            "_next": m["next_fire_at"],
            "_due": m["due_at"],
            "_last": m["last_fire_at"],
            "_enabled": m["enabled"],
        }
        for m in moves
    ]
    for part in chunks(params, 1000):
        await conn.execute(stmt, list(part))


async def record_fires(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Record missed/coalesced/skipped slots (idempotent on (schedule, fire_at))."""
    for part in chunks(rows, 1000):
        stmt = upsert_insert(conn, fires).on_conflict_do_nothing(
            index_elements=["schedule_id", "fire_at"]
        )
        await conn.execute(stmt, list(part))


async def list_fires(
    conn: AsyncConnection, schedule_id: str, status: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = (
        sa.select(fires)
        .where(fires.c.schedule_id == schedule_id)
        .order_by(fires.c.fire_at.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(fires.c.status == status)
    return mappings(await conn.execute(stmt))


async def fire_totals(conn: AsyncConnection) -> list[tuple[str, int]]:
    rows = await conn.execute(
        sa.select(fires.c.status, sa.func.coalesce(sa.func.sum(fires.c.count), 0)).group_by(
            fires.c.status
        )
    )
    return [(s, int(n)) for s, n in rows]


async def count(conn: AsyncConnection) -> int:
    stmt = sa.select(sa.func.count()).select_from(schedules).where(_LIVE)
    return (await conn.execute(stmt)).scalar_one()


async def ids_for_job(conn: AsyncConnection, job_id: str) -> list[str]:
    rows = await conn.execute(sa.select(schedules.c.id).where(schedules.c.job_id == job_id, _LIVE))
    return [r.id for r in rows]
