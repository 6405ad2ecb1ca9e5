"""Job definitions. Deleting a job keeps it (and its history) with `deleted_at` set."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import mappings
from gnomon.store.schema import jobs, schedules


async def insert(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(jobs.insert().values(**row))


async def get(conn: AsyncConnection, job_id: str) -> dict[str, Any] | None:
    stmt = sa.select(jobs).where(jobs.c.id == job_id, jobs.c.deleted_at.is_(None))
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def get_by_name(
    conn: AsyncConnection, space: str, name: str, app_id: str | None = None
) -> dict[str, Any] | None:
    """A job by name: among the space's jobs without an app, or among the app's jobs."""
    stmt = sa.select(jobs).where(
        jobs.c.space == space,
        jobs.c.name == name,
        jobs.c.deleted_at.is_(None),
        jobs.c.app_id.is_(None) if app_id is None else jobs.c.app_id == app_id,
    )
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def list_(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    name: str | None,
    search: str | None,
    executor: str | None,
    cursor: str | None,
    limit: int,
) -> list[dict[str, Any]]:
    stmt = sa.select(jobs).where(jobs.c.deleted_at.is_(None)).order_by(jobs.c.id).limit(limit)
    if spaces is not None:
        stmt = stmt.where(jobs.c.space.in_(spaces))
    if name is not None:
        stmt = stmt.where(jobs.c.name == name)
    if search:
        stmt = stmt.where(jobs.c.name.contains(search, autoescape=True))
    if executor is not None:
        stmt = stmt.where(jobs.c.executor == executor)
    if cursor:
        stmt = stmt.where(jobs.c.id > cursor)
    return mappings(await conn.execute(stmt))


async def update(conn: AsyncConnection, job_id: str, values: dict[str, Any]) -> bool:
    stmt = sa.update(jobs).where(jobs.c.id == job_id, jobs.c.deleted_at.is_(None)).values(**values)
    return (await conn.execute(stmt)).rowcount > 0


async def soft_delete(conn: AsyncConnection, job_id: str, now: float) -> bool:
    """Delete a job and its schedules; their runs stay readable."""
    stmt = (
        sa.update(jobs)
        .where(jobs.c.id == job_id, jobs.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now)
    )
    if (await conn.execute(stmt)).rowcount == 0:
        return False
    await conn.execute(
        sa.update(schedules)
        .where(schedules.c.job_id == job_id, schedules.c.deleted_at.is_(None))
        .values(deleted_at=now, updated_at=now, enabled=False, next_fire_at=None, due_at=None)
    )
    return True


async def by_ids(conn: AsyncConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    if not ids:
        return {}
    rows = await conn.execute(sa.select(jobs).where(jobs.c.id.in_(ids)))
    return {r.id: dict(r._mapping) for r in rows}
