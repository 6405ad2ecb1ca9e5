"""Apps (execution contexts) and the jobs bound to them."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gnomon.store._sql import mappings
from gnomon.store.schema import apps, jobs

_LIVE = apps.c.deleted_at.is_(None)


async def insert(conn: AsyncConnection, row: dict[str, Any]) -> None:
    await conn.execute(apps.insert().values(**row))


async def get(conn: AsyncConnection, app_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(sa.select(apps).where(apps.c.id == app_id, _LIVE))).first()
    return dict(row._mapping) if row else None


async def id_taken(conn: AsyncConnection, app_id: str) -> bool:
    """Whether any app, deleted or not, ever had this id."""
    stmt = sa.select(sa.func.count()).select_from(apps).where(apps.c.id == app_id)
    return (await conn.execute(stmt)).scalar_one() > 0


async def get_by_name(conn: AsyncConnection, space: str, name: str) -> dict[str, Any] | None:
    stmt = sa.select(apps).where(apps.c.space == space, apps.c.name == name, _LIVE)
    row = (await conn.execute(stmt)).first()
    return dict(row._mapping) if row else None


async def list_(
    conn: AsyncConnection, *, spaces: list[str] | None, cursor: str | None, limit: int
) -> list[dict[str, Any]]:
    stmt = sa.select(apps).where(_LIVE).order_by(apps.c.id).limit(limit)
    if spaces is not None:
        stmt = stmt.where(apps.c.space.in_(spaces))
    if cursor:
        stmt = stmt.where(apps.c.id > cursor)
    return mappings(await conn.execute(stmt))


async def by_ids(conn: AsyncConnection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """Apps by id, deleted ones included (a job keeps naming its app)."""
    if not ids:
        return {}
    rows = await conn.execute(sa.select(apps).where(apps.c.id.in_(ids)))
    return {r.id: dict(r._mapping) for r in rows}


async def soft_delete(conn: AsyncConnection, app_id: str, now: float) -> bool:
    stmt = sa.update(apps).where(apps.c.id == app_id, _LIVE).values(deleted_at=now, updated_at=now)
    return (await conn.execute(stmt)).rowcount > 0


async def count_jobs(conn: AsyncConnection, app_id: str) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(jobs)
        .where(jobs.c.app_id == app_id, jobs.c.deleted_at.is_(None))
    )
    return (await conn.execute(stmt)).scalar_one()


async def bound_jobs(
    conn: AsyncConnection,
    *,
    spaces: list[str] | None,
    action_type: str,
    offset: int,
    limit: int,
) -> tuple[list[dict[str, Any]], int]:
    """One page of the live jobs bound to an app whose action is `action_type`, by name;
    and how many there are in all."""
    where = [
        jobs.c.deleted_at.is_(None),
        jobs.c.app_id.is_not(None),
        jobs.c.action["type"].as_string() == action_type,
    ]
    if spaces is not None:
        where.append(jobs.c.space.in_(spaces))
    total = (
        await conn.execute(sa.select(sa.func.count()).select_from(jobs).where(*where))
    ).scalar_one()
    stmt = (
        sa.select(jobs).where(*where).order_by(jobs.c.name, jobs.c.id).offset(offset).limit(limit)
    )
    return mappings(await conn.execute(stmt)), total
